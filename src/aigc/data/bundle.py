"""What every dataset loader returns: a `DatasetBundle` of in-memory splits that the loop batches.

The loop never sees files: a split is anything with `len()`, `get_batch(indices) -> dict of tensors` and a
`fingerprint` (sha256 of exactly the data the model sees, stored in every checkpoint). Keeping the data in
memory and sampling indices ourselves makes exact resume and DDP sharding a few lines (training/sampler.py).
It is a module of its own, apart from `aigc/data/__init__.py`, so that the loaders can import it while the package
imports them (to register them) without a loop.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch


class BatchSource(Protocol):
    fingerprint: str

    def __len__(self) -> int: ...

    def get_batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]: ...


def fingerprint_of(*parts: torch.Tensor | bytes | str) -> str:
    """The sha256 of `parts` in order: a tensor's bytes as stored (contiguous), bytes as they are, a str as UTF-8.
    A split's fingerprint is this over exactly what decides the batches it gives."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            part = part.contiguous().numpy().reshape(-1).data
        elif isinstance(part, str):
            part = part.encode("utf-8")
        digest.update(part)
    return digest.hexdigest()


class LabelledTensors:
    """Labelled examples in memory, the part image and audio splits share: `examples` of one integer dtype
    [N, ...] (named `name` in messages) and `labels` int64 [N].

    `fingerprint` is the sha256 of the example bytes, then the label bytes, then `extra` (what else decides
    what the model sees, e.g. a sample rate), so any changed value changes it; checkpoints store it to tell
    which data a model saw. Treat the tensors as read-only: the fingerprint is computed once, here.
    """

    def __init__(self, name: str, examples: torch.Tensor, labels: torch.Tensor, *, dtype: torch.dtype, axes: str, extra: bytes = b""):
        expected = f"{str(dtype).removeprefix('torch.')} [{axes}]"
        if examples.dtype != dtype or examples.ndim != len(axes.split(",")):
            raise ValueError(f"{name} must be {expected}, got {examples.dtype} {tuple(examples.shape)}")
        if labels.dtype != torch.int64 or labels.shape != (examples.shape[0],):
            raise ValueError(f"labels must be int64 [{examples.shape[0]}], got {labels.dtype} {tuple(labels.shape)}")
        self.examples, self.labels = examples.contiguous(), labels.contiguous()
        self.fingerprint = fingerprint_of(self.examples, self.labels, extra)

    def __len__(self) -> int:
        return self.examples.shape[0]


@dataclass
class DatasetBundle:
    train: BatchSource
    val: BatchSource | None
    test: BatchSource | None
    num_classes: int | None = None
    class_names: list[str] = field(default_factory=list)
    source: str = ""  # where it was read from, for `aigc data show` and the checkpoint sidecar
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) of counted skips
    model_settings: dict[str, Any] = field(default_factory=dict)  # more settings the data decides (a vocabulary, say)

    def model_fields(self) -> dict[str, Any]:
        """Model config fields that the data decides; the loop fills those the family leaves as None."""
        # One class (a flat image folder) is no labelling at all: nothing for a conditional model to use.
        classes = self.num_classes if self.num_classes is not None and self.num_classes >= 2 else None
        return {"num_classes": classes, **self.model_settings}

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "train": len(self.train),
            "val": len(self.val) if self.val is not None else 0,
            "test": len(self.test) if self.test is not None else 0,
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "skipped": len(self.skipped),
            "fingerprint": self.train.fingerprint,
        }


def split_indices(count: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A deterministic train/val split: a seeded permutation, the first `val_fraction` for validation."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    val_count = int(round(count * val_fraction))
    if val_fraction > 0 and val_count == 0 and count > 1:
        val_count = 1
    return order[val_count:].sort().values, order[:val_count].sort().values

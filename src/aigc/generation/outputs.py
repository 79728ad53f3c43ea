"""Typed artifacts returned by `generate`. Images are uint8 NHWC with their provenance attached.

Every PNG written here carries text chunks `model`, `seed`, `label`, `parameters` (the AUTOMATIC1111-style
text that generation UIs read) and `aigc` (all of it as JSON), written by `generation/metadata.py` as the
studio writes them, and holds no timestamp, so the same seed gives byte-identical files.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from aigc.files import atomic_write_bytes
from aigc.generation.metadata import a1111_parameters, png_bytes


@dataclass(frozen=True)
class ImageBatch:
    images: np.ndarray  # uint8 [N, H, W, C], C = 1 or 3
    seeds: list[int]  # seed of each image (request seed + index)
    labels: list[int] | None  # class of each image, for conditional models
    model: str  # family name, plus checkpoint when loaded from one
    parameters: dict[str, Any] = field(default_factory=dict)  # everything else needed to make them again

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[-1] not in (1, 3):
            raise ValueError(f"ImageBatch.images must be uint8 [N, H, W, 1|3], got {self.images.dtype} {self.images.shape}")

    def __len__(self) -> int:
        return len(self.images)

    def image(self, index: int) -> Image.Image:
        array = self.images[index]
        return Image.fromarray(array[..., 0], "L") if array.shape[-1] == 1 else Image.fromarray(array, "RGB")

    def grid(self, columns: int | None = None, padding: int = 2) -> Image.Image:
        count, height, width, channels = self.images.shape
        if columns is None and self.labels is not None and 1 < len(set(self.labels)) <= 16:
            columns = len(set(self.labels))  # labels cycle 0..K-1, so each column is one class
        columns = columns or math.ceil(math.sqrt(count))
        rows = math.ceil(count / columns)
        canvas = np.zeros((rows * (height + padding) + padding, columns * (width + padding) + padding, channels), np.uint8)
        for index, array in enumerate(self.images):
            top = padding + (index // columns) * (height + padding)
            left = padding + (index % columns) * (width + padding)
            canvas[top : top + height, left : left + width] = array
        return Image.fromarray(canvas[..., 0], "L") if channels == 1 else Image.fromarray(canvas, "RGB")

    def _png(self, picture: Image.Image, seeds: list[int], labels: list[int] | None) -> bytes:
        from aigc import __version__

        record = {"model": self.model, "seeds": seeds, "labels": labels, **self.parameters}
        prompts = self.parameters.get("prompts") or ""
        settings = {
            "Seed": seeds[0], "Size": f"{picture.width}x{picture.height}", "Batch size": len(seeds) if len(seeds) > 1 else None,
            "Steps": self.parameters.get("sample_steps"), "Sampler": self.parameters.get("sampler"), "CFG scale": self.parameters.get("guidance"),
            "Model hash": self.parameters.get("checkpoint_sha256"), "Model": self.model, "Step": self.parameters.get("step"),
            "Label": None if labels is None else ",".join(map(str, labels)), "Version": f"aigc {__version__}",
        }
        texts = {
            "model": self.model,
            "seed": ",".join(map(str, seeds)),
            "label": "" if labels is None else ",".join(map(str, labels)),
            "parameters": a1111_parameters(prompts if isinstance(prompts, str) else prompts[0], "", settings),
            "aigc": json.dumps(record, sort_keys=True, ensure_ascii=False, default=str),
        }
        return png_bytes(picture, texts)

    def save_grid(self, path: str | Path, columns: int | None = None) -> Path:
        return atomic_write_bytes(path, self._png(self.grid(columns), self.seeds, self.labels))

    def save_each(self, folder: str | Path, stem: str = "sample") -> list[Path]:
        """One PNG per image, named by its seed, each carrying its own seed and label."""
        folder = Path(folder)
        paths = []
        for index in range(len(self)):
            label = None if self.labels is None else [self.labels[index]]
            data = self._png(self.image(index), [self.seeds[index]], label)
            paths.append(atomic_write_bytes(folder / f"{stem}-seed{self.seeds[index]}.png", data))
        return paths

    def save(self, path: str | Path) -> Path:
        return self.save_grid(path)

    @property
    def suffix(self) -> str:
        return ".png"


def read_png_text(path: str | Path) -> dict[str, str]:
    """The text chunks of a PNG, e.g. to check or reuse the settings an image was made with."""
    with Image.open(path) as picture:
        return dict(picture.text)

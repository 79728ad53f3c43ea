"""Grid watermark (ImageWatermark.mark_picture): the strength a grid needed, its PSNR against the unmarked
grid, and detection after the image table's main attacks, for the grids `aigc generate` saves.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/safety_grid_watermark.py

Grids: 100 and 64 digits from the zoo's cgan-mnist (28x28 on black), 64 crops of 32x32 from scikit-learn's
packaged photo, and 4 crops of 256x256 (each marked on its own first).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import aigc
from aigc.generation.outputs import ImageBatch
from aigc.safety.watermark.image import ImageWatermark, detect

KEY = "benchmark-grid-key-01"


def _jpeg(array: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer))


ATTACKS = {
    "none": lambda x: x,
    "JPEG q75": lambda x: _jpeg(x, 75),
    "JPEG q50": lambda x: _jpeg(x, 50),
    "resize 50%": lambda x: np.asarray(Image.fromarray(x).resize((x.shape[1] // 2, x.shape[0] // 2), Image.BICUBIC)),
    "crop 5% each side": lambda x: x[x.shape[0] // 20 : -(x.shape[0] // 20), x.shape[1] // 20 : -(x.shape[1] // 20)],
}


def batches() -> dict[str, ImageBatch]:
    from sklearn.datasets import load_sample_images

    photo = load_sample_images().images[0]
    digits = aigc.load("cgan-mnist", safety=False)
    return {
        "cgan-mnist, 100 digits": digits.generate({"count": 100, "seed": 0}),
        "cgan-mnist, 64 digits": digits.generate({"count": 64, "seed": 1}),
        "photo, 64 crops of 32 px": ImageBatch(images=np.ascontiguousarray(np.stack([photo[i * 5 : i * 5 + 32, i * 7 : i * 7 + 32] for i in range(64)])),
                                               seeds=list(range(64)), labels=None, model="photo"),
        "photo, 4 crops of 256 px": ImageBatch(images=np.ascontiguousarray(np.stack([photo[i * 60 : i * 60 + 256, j * 80 : j * 80 + 256] for i in range(2) for j in range(2)])),
                                               seeds=[0, 1, 2, 3], labels=None, model="photo"),
    }


def main() -> None:
    mark = ImageWatermark(KEY)
    print("| grid | size | strength (grey levels) | PSNR (dB) | " + " | ".join(ATTACKS) + " | save (s) |")
    print("|---|---|---|---|" + "---|" * len(ATTACKS) + "---|")
    with tempfile.TemporaryDirectory() as folder:
        for name, batch in batches().items():
            plain = np.asarray(batch.grid()).astype(np.float64)
            marked = mark(batch)
            start = time.perf_counter()
            path = marked.save_grid(Path(folder) / "grid.png")
            seconds = time.perf_counter() - start
            picture = Image.open(path)
            grid = np.asarray(picture)
            strength = json.loads(picture.text["aigc"]).get("grid_watermark_strength")
            mse = np.mean((grid - plain) ** 2)
            psnr = "unmarked" if mse == 0 else f"{10 * np.log10(255**2 / mse):.1f}"
            found = ["yes" if detect(attack(grid), KEY).present else "no" for attack in ATTACKS.values()]
            print(f"| {name} | {grid.shape[1]}x{grid.shape[0]} | {strength or '-'} | {psnr} | " + " | ".join(found) + f" | {seconds:.2f} |")
    digits = batches()["cgan-mnist, 100 digits"]
    picture = np.asarray(digits.grid())
    chosen = [ImageWatermark(f"sweep-key-{index:02d}").mark_picture(picture, {})[1].get("grid_watermark_strength") for index in range(12)]
    print(f"\n100-digit grid under 12 other keys: strengths chosen {sorted(chosen, key=lambda v: (v is None, v))} (None: left unmarked)")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

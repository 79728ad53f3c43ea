"""A content x style grid with Gatys, and each output's content and style losses (against the content image and
the style image, unweighted relative errors, perceptual.py), beside the two baselines: the content image
itself (style loss to beat) and the style image in its place (content loss to beat).

    .venv/bin/python benchmarks/style_grid.py [--size 128] [--steps 50] [--out docs/images/style-gatys-grid.png]
    .venv/bin/python benchmarks/style_grid.py --model adain-photos --out docs/images/style-adain-grid.png   # a trained AdaIN (run or zoo name)
    .venv/bin/python benchmarks/style_grid.py --model fast-rings --out docs/images/style-fast-grid.png      # a fast network: its one style

Contents: scikit-learn's two sample photos. Styles: three generated patterns (aigc.data.style_sets), so the grid
needs no file beyond the installed packages. Deterministic (init from the content, L-BFGS).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import aigc  # noqa: E402
from aigc.data.style_sets import generated_styles  # noqa: E402
from aigc.generation.requests import StyleRequest  # noqa: E402
from aigc.generation.pipeline import generate  # noqa: E402
from aigc.models.style.gatys import Gatys, GatysRequest  # noqa: E402
from aigc.models.style.perceptual import PerceptualLoss, read_rgb, resize_long_side  # noqa: E402


def losses(loss: PerceptualLoss, picture: np.ndarray, content: torch.Tensor, style: torch.Tensor) -> tuple[float, float]:
    """(content, style) relative errors of uint8 pixels [H, W, 3] against the content and style images."""
    image = torch.from_numpy(np.array(picture)).permute(2, 0, 1)[None].float() / 127.5 - 1
    content = torch.nn.functional.interpolate(content, size=image.shape[2:], mode="bilinear", antialias=True, align_corners=False)
    with torch.no_grad():
        terms = loss.terms(image, loss.targets(content, [style], [1.0]))
    return float(terms["content"]), float(terms["style"])


def main() -> None:
    from sklearn.datasets import load_sample_image

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--out", default="docs/images/style-gatys-grid.png")
    parser.add_argument("--model", default=None, help="a trained AdaIN or fast run or zoo name instead of Gatys (one forward pass per cell; a fast network: its own style only)")
    args = parser.parse_args()
    adain = aigc.load(args.model, safety=False) if args.model else None
    folder = Path(tempfile.mkdtemp())
    contents, styles = [], []
    for name in ("china.jpg", "flower.jpg"):
        Image.fromarray(load_sample_image(name)).save(folder / name)
        contents.append(folder / name)
    fast = adain is not None and adain.info.family == "fast"
    for index, label in enumerate(("stripes", "rings", "cells")):
        if fast and index != adain.module.config.style_pattern:
            continue  # a fast network paints the one style it learned (a generated pattern)
        Image.fromarray(generated_styles(256)[index]).save(folder / f"{label}.png")
        styles.append(folder / f"{label}.png")
    if fast and (adain.module.config.style_path is not None or not styles):
        raise SystemExit("this fast network's style is not one of the grid's patterns 0-2: nothing to compare it to")
    gatys = Gatys()
    loss = PerceptualLoss(gatys.loss(GatysRequest(content="", style=[])).vgg)
    side = args.size
    rows = [[np.full((side * 3 // 4, side, 3), 255, np.uint8)] + [np.asarray(Image.open(s).resize((side, side * 3 // 4))) for s in styles]]
    print("| content | style | content loss (style image: baseline) | style loss (content image: baseline) | seconds |")
    print("|---|---|---|---|---|")
    for content_path in contents:
        content = resize_long_side(read_rgb(str(content_path), field="content")[0], side)
        shown = ((content[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
        row = [shown]
        for style_path in styles:
            style = resize_long_side(read_rgb(str(style_path), field="style")[0], side)
            start = time.perf_counter()
            if fast:
                batch = adain.generate({"content": str(content_path), "size": side, "seed": 0})
            elif adain is not None:
                batch = adain.generate(StyleRequest(content=str(content_path), style=[str(style_path)], size=side, seed=0))
            else:
                batch = generate(gatys, GatysRequest(content=str(content_path), style=[str(style_path)], size=side, steps=args.steps, seed=0))
            seconds = time.perf_counter() - start
            made = losses(loss, batch.images[0], content, style)
            style_image = np.asarray(Image.open(style_path).resize(shown.shape[1::-1]))
            base_content = losses(loss, style_image, content, style)[0]
            base_style = losses(loss, shown, content, style)[1]
            print(f"| {content_path.name} | {style_path.stem} | {made[0]:.3f} ({base_content:.3f}) | {made[1]:.3f} ({base_style:.3f}) | {seconds:.0f} |")
            row.append(batch.images[0])
        rows.append(row)
    height = max(image.shape[0] for row in rows for image in row)
    canvas = np.full((len(rows) * (height + 4), (len(styles) + 1) * (side + 4), 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            canvas[r * (height + 4) : r * (height + 4) + image.shape[0], c * (side + 4) : c * (side + 4) + image.shape[1]] = image
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

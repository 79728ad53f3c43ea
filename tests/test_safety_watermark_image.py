"""The invisible image watermark (aigc/safety/watermark/image.py): invisible (PSNR), found after the
attacks it claims to survive, not found on unmarked images or with another key, small images left alone,
and `aigc verify` reading a generated PNG."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import aigc
from aigc.errors import AigcError
from aigc.generation.outputs import ImageBatch
from aigc.generation.pipeline import GenerationPolicy
from aigc.generation.requests import ImageRequest
from aigc.safety import SafetySettings, default_policy
from aigc.safety.settings import PUBLIC_WATERMARK_KEY
from aigc.safety.verify import verify
from aigc.safety.watermark.image import MIN_SIDE, SCHEME, ImageWatermark, detect, embed

KEY = "a-test-key-42"


@pytest.fixture(scope="module")
def photo():
    from sklearn.datasets import load_sample_images

    return np.ascontiguousarray(load_sample_images().images[0][20:404, 60:572])  # 384x512 RGB


@pytest.fixture(scope="module")
def marked(photo):
    return embed(photo, KEY)


def _jpeg(array, quality):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def test_the_mark_is_invisible_and_read_back_exactly(photo, marked):
    assert marked.shape == photo.shape and marked.dtype == np.uint8
    mse = np.mean((marked.astype(float) - photo) ** 2)
    assert 10 * np.log10(255**2 / mse) > 37  # dB; the change is about 3 grey levels RMS
    found = detect(marked, KEY)
    assert found.present and found.bits_correct == 48 and found.false_positive_bound < 1e-12


@pytest.mark.parametrize("attack", ["jpeg50", "crop10", "resize50", "rotate3", "brightness_contrast"])
def test_the_mark_survives(marked, attack):
    image = Image.fromarray(marked)
    attacked = {
        "jpeg50": lambda: _jpeg(marked, 50),
        "crop10": lambda: marked[19:365, 26:486],  # 10% off the sides, off-grid
        "resize50": lambda: np.asarray(image.resize((256, 192), Image.BICUBIC)),
        "rotate3": lambda: np.asarray(image.rotate(3, Image.BICUBIC)),
        "brightness_contrast": lambda: np.clip((marked.astype(float) - 128) * 0.75 + 150, 0, 255).astype(np.uint8),
    }[attack]()
    found = detect(attacked, KEY)
    assert found.present and found.bits_correct >= 44, found
    if attack == "resize50":
        assert abs(found.scale - 0.5) < 0.01
    if attack == "rotate3":
        assert abs(abs(found.rotation_degrees) - 3) < 0.3


def test_unmarked_images_and_other_keys_are_not_detected(photo, marked):
    for image, key in ((photo, KEY), (marked, "another-key-7")):
        found = detect(image, key)
        assert not found.present and 12 <= found.bits_correct <= 36  # a coin per bit


def test_the_hook_marks_large_images_and_leaves_small_ones(photo):
    large = ImageBatch(images=photo[None, :MIN_SIDE, :MIN_SIDE].copy(), seeds=[1], labels=None, model="test")
    hooked = ImageWatermark(KEY)(large)
    assert hooked.parameters["watermark"] == SCHEME and detect(hooked.images[0], KEY).present
    assert SCHEME in hooked.files()[0].data.decode("latin-1")  # the PNG says it is marked
    small = ImageBatch(images=photo[None, :64, :64].copy(), seeds=[1], labels=None, model="test")
    assert ImageWatermark(KEY)(small) is small


def test_the_default_policy_leaves_mnist_digits_byte_identical():
    """28x28 digits cannot hold the mark: the policy must not change them (nor their PNG bytes)."""
    model = aigc.load("cgan-mnist")
    plain = model.generate(ImageRequest(count=2, seed=3, labels=[4]))
    policed = model.generate(ImageRequest(count=2, seed=3, labels=[4]), policy=default_policy(SafetySettings(moderation=False)))
    assert [f.data for f in plain.files()] == [f.data for f in policed.files()]
    assert isinstance(default_policy(SafetySettings(watermark=False)), GenerationPolicy)
    assert default_policy(SafetySettings(watermark=False, moderation=False)) == GenerationPolicy()


def test_verify_reads_a_generated_png_and_says_what_it_proves(photo, tmp_path):
    batch = ImageWatermark(PUBLIC_WATERMARK_KEY)(ImageBatch(images=photo[None, :MIN_SIDE, :MIN_SIDE].copy(), seeds=[9], labels=None, model="demo"))
    path = tmp_path / "made.png"
    path.write_bytes(batch.files()[0].data)
    report = verify(path.read_bytes(), str(path))
    assert report.marked and report.metadata["model"] == "demo" and report.metadata["seeds"] == [9]
    assert any("public key" in s for s in report.statements) and any("not signed" in s for s in report.statements)
    cli = subprocess.run([sys.executable, "-m", "aigc", "verify", str(path)], capture_output=True, text=True)
    assert cli.returncode == 0 and "watermarked" in cli.stdout
    plain = tmp_path / "plain.png"
    Image.fromarray(photo[:MIN_SIDE, :MIN_SIDE]).save(plain)
    cli = subprocess.run([sys.executable, "-m", "aigc", "verify", str(plain)], capture_output=True, text=True)
    assert cli.returncode == 1 and "no watermark found" in cli.stdout


def test_verify_refuses_a_file_that_is_not_an_image(tmp_path):
    with pytest.raises(AigcError, match="is not an image or WAV") as error:
        verify(b"%PDF-1.4 not a picture", "paper.pdf")
    assert error.value.field == "file"
    with pytest.raises(AigcError, match="RIFF/WAVE file this cannot decode") as error:
        verify(b"RIFF....WAVEfmt ", "clip.wav")
    assert error.value.field == "file"
    missing = subprocess.run([sys.executable, "-m", "aigc", "verify", str(tmp_path / "nope.png")], capture_output=True, text=True)
    assert missing.returncode == 2 and "is not a file" in missing.stderr and "Traceback" not in missing.stderr


def test_a_small_image_turned_without_resizing_is_found_by_the_rotation_search(photo):
    """256 px holds too few tiles to read the lattice; whole-degree turns at scale 1 are tried instead."""
    small = embed(np.ascontiguousarray(photo[64:320, 128:384]), KEY)
    found = detect(np.asarray(Image.fromarray(small).rotate(4, Image.BICUBIC)), KEY)
    assert found.present and abs(found.rotation_degrees + 4) <= 1 and found.false_positive_bound < 1e-6


def test_a_grid_of_small_images_is_marked_as_one_picture(tmp_path):
    """100 generated 28x28 digits: none can hold the mark, their 302-px grid does (at a higher strength: the
    black background and the borders hide much of it); a grid under 256 px is left alone."""
    import json

    model = aigc.load("cgan-mnist")
    policy = default_policy(SafetySettings(moderation=False, watermark_key=KEY))
    batch = model.generate({"count": 100, "seed": 0}, policy=policy)
    assert "watermark" not in batch.parameters and not detect(np.asarray(Image.open(io.BytesIO(batch.files()[0].data))), KEY).present
    path = batch.save_grid(tmp_path / "digits.png")
    grid = Image.open(path)
    record = json.loads(grid.text["aigc"])
    assert grid.size == (302, 302) and record["watermark"] == SCHEME and record["grid_watermark_strength"] in (3.0, 6.0, 9.0, 12.0)
    found = detect(np.asarray(grid), KEY)
    assert found.present and found.false_positive_bound < 1e-6
    assert detect(np.asarray(grid.resize((151, 151), Image.BICUBIC)), KEY).present  # half size
    small = model.generate({"count": 16, "seed": 0}, policy=policy).save_grid(tmp_path / "small.png")  # 122 px
    assert "watermark" not in json.loads(Image.open(small).text["aigc"]) and not detect(np.asarray(Image.open(small)), KEY).present


def test_a_grid_of_marked_images_is_marked_too(photo, tmp_path):
    """Each 256-px image carries its own mark at its own offset, which leaves the grid unreadable as one
    picture; the grid gets its own mark, and each image cut back out of it still reads."""
    crops = np.ascontiguousarray(np.stack([photo[i * 60 : i * 60 + 256, j * 80 : j * 80 + 256] for i in range(2) for j in range(2)]))
    batch = ImageWatermark(KEY)(ImageBatch(images=crops, seeds=[0, 1, 2, 3], labels=None, model="demo"))
    assert not detect(np.asarray(batch.grid()), KEY).present
    grid = np.asarray(Image.open(batch.save_grid(tmp_path / "grid.png")))
    assert detect(grid, KEY).present and detect(grid[2:258, 2:258], KEY).present


def test_stylised_images_from_the_cli_are_marked(tmp_path):
    from sklearn.datasets import load_sample_image

    content, style = tmp_path / "content.jpg", tmp_path / "style.png"
    Image.fromarray(load_sample_image("china.jpg")).resize((384, 256), Image.BILINEAR).save(content)
    Image.fromarray(load_sample_image("flower.jpg")).resize((192, 144), Image.BILINEAR).save(style)
    out = tmp_path / "out.png"
    done = subprocess.run([sys.executable, "-m", "aigc", "stylize", str(content), "--style", str(style), "--size", "384", "--steps", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1", "AIGC_WATERMARK_KEY": KEY})
    assert done.returncode == 0, done.stderr
    assert detect(np.asarray(Image.open(out).convert("RGB")), KEY).present

"""Reading a user's content or style image (a path or an upload): refusals and stated conversions."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from aigc.data.image_files import read_image
from aigc.errors import DataError


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header that claims width x height, with one tiny compressed row: what a decompression bomb
    looks like on disk (kilobytes), before anything decodes it (gigabytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_an_rgb_image_reads_as_is_from_a_path_and_from_bytes(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    from_path, from_bytes = read_image(path, field="content"), read_image(path.read_bytes(), field="content")
    np.testing.assert_array_equal(from_path.pixels, pixels)
    np.testing.assert_array_equal(from_bytes.pixels, pixels)
    assert from_path.notes == [] and from_path.format == "PNG" and (from_path.width, from_path.height) == (30, 20)
    assert from_path.sha256 == from_bytes.sha256 and from_bytes.source == "upload"


@pytest.mark.parametrize("mode,note", [
    ("L", "grayscale (L) converted to RGB"), ("CMYK", "CMYK converted to RGB"), ("P", "palette image converted to RGB"),
    ("RGBA", "transparency composited on white"),
])
def test_other_modes_are_converted_to_rgb_and_the_conversion_is_said(mode, note):
    base = Image.fromarray(np.random.default_rng(1).integers(0, 256, (12, 16, 3), dtype=np.uint8))
    image = base.convert(mode)
    if mode == "RGBA":
        alpha = np.zeros((12, 16), np.uint8)
        alpha[:, 8:] = 255  # left half transparent
        image.putalpha(Image.fromarray(alpha))
    buffer = io.BytesIO()
    image.save(buffer, format="TIFF" if mode == "CMYK" else "PNG")
    picture = read_image(buffer.getvalue(), field="style")
    assert note in picture.notes
    assert picture.pixels.shape == (12, 16, 3) and picture.pixels.dtype == np.uint8
    if mode == "L":
        assert (picture.pixels == picture.pixels[..., :1]).all()  # grey replicated
    if mode == "RGBA":
        assert (picture.pixels[:, :8] == 255).all()  # transparent -> white
        np.testing.assert_array_equal(picture.pixels[:, 8:], np.asarray(base)[:, 8:])


def test_a_file_that_is_not_an_image_is_refused(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not a picture")
    with pytest.raises(DataError, match="not an image") as error:
        read_image(path, field="content")
    assert error.value.field == "content" and "PNG, JPEG" in error.value.fix


def test_a_truncated_jpeg_is_refused(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, format="JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(DataError, match="truncated or damaged") as error:
        read_image(path, field="style")
    assert error.value.field == "style"
    with pytest.raises(DataError, match="truncated or damaged"):  # cut inside its header
        read_image(buffer.getvalue()[:400], field="style")


def test_a_decompression_bomb_is_refused_from_its_header():
    data = bomb_png(20_000, 20_000)
    assert len(data) < 1000  # a few hundred bytes claiming 400 megapixels
    with pytest.raises(DataError, match="decompression-bomb guard") as error:
        read_image(data, field="content")
    assert "downscale" in error.value.fix
    with pytest.raises(DataError, match="6000x6000 = 36 megapixels"):
        read_image(bomb_png(6000, 6000), field="content", max_pixels=10_000_000)  # our limit, below Pillow's


def test_missing_files_and_oversized_uploads_are_refused(tmp_path):
    with pytest.raises(DataError, match="is not a file"):
        read_image(tmp_path / "nowhere.png", field="content")
    data = png_bytes(Image.new("RGB", (8, 8)))
    with pytest.raises(DataError, match="at most"):
        read_image(data, field="content", max_bytes=len(data) - 1)

"""One image a user hands over (a content or style photo, a file upload), read safely into RGB pixels.

    picture = read_image("photo.jpg", field="content")       # or raw bytes from an upload
    picture.pixels      uint8 [H, W, 3]
    picture.notes       what was converted, in words: ["CMYK converted to RGB", ...] (say them to the user)
    picture.sha256      of the bytes as given: content-addressed storage and provenance use it

What is refused, each with a message that names the field and the fix:
- a file that is not an image Pillow reads (a text file, a PDF);
- a decompression bomb: more than `max_pixels` pixels is refused from the header alone, before any pixel is
  decoded (a 20,000 x 20,000 PNG is a few kilobytes on disk and 1.2 GB in memory);
- a truncated or damaged file (a JPEG cut short in transfer): Pillow would otherwise fill the rest with grey;
- more than `max_bytes` of input.
What is converted (and said): grey, 16-bit grey, palette, CMYK and other modes to RGB; transparency
composited on white (the same rules as the image-folder datasets: `aigc.data.images.decode_image`).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aigc.errors import DataError

MAX_PIXELS = 40_000_000  # 40 megapixels: more than any camera photo a style method would use
MAX_BYTES = 50 * 1024 * 1024  # 50 MB
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_TRUNCATED_FIX = "give a complete copy of the file (the download or upload was cut short?)"


@dataclass(frozen=True)
class ImageFile:
    pixels: np.ndarray  # uint8 [H, W, 3], RGB, upright (EXIF rotation applied)
    source: str  # the path, or "upload" for bytes
    format: str  # what Pillow read: "JPEG", "PNG", ...
    sha256: str  # of the input bytes
    notes: list[str] = field(default_factory=list)  # conversions made, in words

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    @property
    def height(self) -> int:
        return self.pixels.shape[0]


def _conversions(mode: str, info: dict) -> list[str]:
    """What decode_image will do to an image of this mode, in words."""
    notes = []
    if mode in ("L", "1", "I", "I;16", "I;16B", "I;16L", "I;16N", "F", "LA", "La"):
        notes.append(f"grayscale ({mode}) converted to RGB")
    elif mode == "CMYK":
        notes.append("CMYK converted to RGB")
    elif mode in ("P", "PA"):
        notes.append("palette image converted to RGB")
    elif mode not in ("RGB", "RGBA", "RGBa"):
        notes.append(f"{mode} converted to RGB")
    if mode in _ALPHA_MODES or "transparency" in info:
        notes.append("transparency composited on white")
    return notes


def read_image(source: str | Path | bytes, *, field: str = "image", max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES) -> ImageFile:
    """Read one image file or upload (see the module docstring for what is refused and converted)."""
    from PIL import Image, UnidentifiedImageError

    from aigc.data.images import decode_image

    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), "upload"
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise DataError(f"{path} is not a file", field=field, fix="give the path of an image file (PNG, JPEG, WebP, ...)")
        if path.stat().st_size > max_bytes:
            raise DataError(f"{path} is {path.stat().st_size / 1e6:.0f} MB; at most {max_bytes / 1e6:.0f} MB", field=field, fix="give a smaller image file")
        data, name = path.read_bytes(), str(path)
    if len(data) > max_bytes:
        raise DataError(f"the image is {len(data) / 1e6:.0f} MB; at most {max_bytes / 1e6:.0f} MB", field=field, fix="upload a smaller image")
    with warnings.catch_warnings():
        # Pillow warns above its own limit and raises above twice it; our limit is checked from the header below.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as opened:
                width, height, mode, image_format, info = opened.width, opened.height, opened.mode, opened.format, dict(opened.info)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            width, height, mode, image_format, info = None, None, "", "", {}
        except UnidentifiedImageError:
            raise DataError(f"{name} is not an image Pillow can read", field=field, fix="give a PNG, JPEG, WebP, BMP, GIF or TIFF file") from None
        except (OSError, SyntaxError, ValueError) as error:  # cut short inside its header
            raise DataError(f"{name} is truncated or damaged ({error})", field=field, fix=_TRUNCATED_FIX) from None
    if width is None or width * height > max_pixels:
        size = "more pixels than Pillow's own bomb limit" if width is None else f"{width}x{height} = {width * height / 1e6:.0f} megapixels"
        raise DataError(
            f"{name} has {size}; at most {max_pixels / 1e6:.0f} megapixels are decoded (a decompression-bomb guard)",
            field=field, fix="downscale the image first (a style method resizes to --size anyway)",
        )
    notes = _conversions(mode, info)
    try:
        pixels = decode_image(io.BytesIO(data), 3).permute(1, 2, 0).numpy()  # [H, W, 3]
    except (OSError, SyntaxError, ValueError) as error:  # Pillow's "image file is truncated", broken chunks
        raise DataError(f"{name} is truncated or damaged ({error})", field=field, fix=_TRUNCATED_FIX) from None
    return ImageFile(pixels=np.ascontiguousarray(pixels), source=name, format=image_format or "", sha256=hashlib.sha256(data).hexdigest(), notes=notes)

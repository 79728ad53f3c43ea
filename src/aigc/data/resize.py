"""The one resize filter and channel conversion every image takes on its way to a model or a metric.

Datasets fit their images with `fit_images`, and metrics fit real and generated images with the same function
before a feature network sees them, so real images are never resized with a different filter from the ones
they are compared with (a known bug, STYLE.md). `RESIZE_METHOD` names the filter in every score's protocol.

- **Filter**: torch bilinear with `antialias=True`, `align_corners=False`, rounded half-to-even back to uint8.
  Non-square images are center-cropped to a square first.
- **Channel conversion**: grey -> RGB replicates the channel; RGB -> grey is ITU-R 601 luma in Pillow's
  exact integer form, so `fit_images` and Pillow's `convert("L")` give identical bytes.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from aigc.errors import DataError

# Recorded by metrics next to every score ("resize method" in DESIGN.md), so it is a public constant.
RESIZE_METHOD = "center crop to square, then torch bilinear (antialias=True, align_corners=False), round half-to-even"

_FLOATS_PER_CHUNK = 1 << 22  # fit_images works in chunks of ~16 MB of float32, whatever N is


def fit_images(images: torch.Tensor, image_size: int, channels: int) -> torch.Tensor:
    """uint8 [N, C, H, W] -> uint8 [N, channels, image_size, image_size]; C and channels are 1 or 3.

    Steps, per chunk of images: (1) center-crop to a square of side min(H, W); (2) RGB -> grey by ITU-R
    601 luma, (R*19595 + G*38470 + B*7471 + 2**15) >> 16, Pillow's formula; (3) resize with torch's
    bilinear filter, antialias=True, align_corners=False, rounded half-to-even (`RESIZE_METHOD`);
    (4) grey -> RGB by replicating the channel. Grey is converted before resizing and replicated after,
    so the filter runs on one channel instead of three. Already-fitting images are returned as they are.
    """
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected uint8 [N, 1 or 3, H, W] images, got {images.dtype} {tuple(images.shape)}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    count, in_channels, height, width = images.shape
    if in_channels == channels and height == width == image_size:
        return images.contiguous()

    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    fitted = torch.empty((count, channels, image_size, image_size), dtype=torch.uint8)
    chunk = max(1, _FLOATS_PER_CHUNK // (in_channels * side * side))
    for start in range(0, count, chunk):
        part = images[start : start + chunk, :, top : top + side, left : left + side]  # (1) [n, C, side, side]
        if in_channels == 3 and channels == 1:
            part = _luma(part)  # (2) [n, 1, side, side]
        if side != image_size:
            part = _resize(part, image_size)  # (3) [n, 1 or 3, image_size, image_size]
        fitted[start : start + chunk] = part  # (4) broadcasting a 1-channel part over 3 channels replicates it
    return fitted


def _luma(rgb: torch.Tensor) -> torch.Tensor:
    """uint8 [n, 3, H, W] -> uint8 [n, 1, H, W], ITU-R 601 luma in Pillow's fixed-point arithmetic."""
    red, green, blue = rgb.to(torch.int32).unbind(dim=1)
    grey = (red * 19595 + green * 38470 + blue * 7471 + 0x8000) >> 16  # weights 0.299, 0.587, 0.114 in 1/65536
    return grey.to(torch.uint8).unsqueeze(1)


def _resize(square: torch.Tensor, image_size: int) -> torch.Tensor:
    """uint8 [n, C, S, S] -> uint8 [n, C, image_size, image_size] with the one filter of `RESIZE_METHOD`."""
    resized = F.interpolate(
        square.to(torch.float32), size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True
    )
    return resized.round_().clamp_(0, 255).to(torch.uint8)


def image_geometry(model_config: Any, purpose: str = "an image dataset") -> tuple[int, int]:
    """(image_size, channels) from a model config, with an error that says which field is wrong.

    `purpose` says who needs them in that error ("an image dataset", "image metrics", ...)."""
    image_size = getattr(model_config, "image_size", None)
    channels = getattr(model_config, "channels", None)
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 1:
        raise DataError(
            f"{purpose} needs a positive integer image size, got {image_size!r}",
            field="model.image_size",
            fix="use an image model family, or e.g. --set model.image_size=28",
        )
    if channels not in (1, 3):
        raise DataError(
            f"{purpose} needs 1 (grey) or 3 (RGB) channels, got {channels!r}",
            field="model.channels",
            fix="--set model.channels=1 or --set model.channels=3",
        )
    return image_size, channels

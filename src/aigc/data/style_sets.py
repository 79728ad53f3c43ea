"""Offline content and style images for training style networks (fast, AdaIN): the dataset `style-photos`.

Content photos, from what is installed (nothing downloads), copied once into the cache with a manifest of
their packages, versions, licences and hashes (`aigc data prepare style-photos`, data/prepare/style_photos.py;
the first load does it when it has not been done) and read from there:
  - scikit-learn's sample images china.jpg and flower.jpg (CC BY 2.0, danielbuechele / vultilion on Flickr);
  - scikit-image's data photos (astronaut, coffee, chelsea, rocket, ...; public domain / CC0, per skimage) when installed;
  - Debian `gnome-backgrounds` (/usr/share/backgrounds/gnome; CC BY-SA, per its copyright file) when installed;
  - or a folder of your own (`--set data.path=DIR`), instead of all of these.
Style images: `model.style_path` (a file or a folder), else built-in generated patterns (stripes, rings,
colour cells: part of aigc, MIT), so a style network trains with no file at all.

Every photo becomes many training crops: resized so its shorter side is 1, 1.5 and 2 times the crop size
(as far as the photo allows), cut into image_size x image_size crops at half-crop strides, and mirrored.
Crops are deterministic, so the fingerprint (sha256 of every pixel) names exactly what a model saw.
Batch: {"images": content [B, 3, S, S], "styles": a style crop per content crop [B, 3, S, S]}, in [-1, 1].
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from aigc.data.bundle import DatasetBundle, fingerprint_of, split_indices
from aigc.data.images import IMAGE_EXTENSIONS
from aigc.errors import DataError
from aigc.files import data_files, visible_files
from aigc.registry import register_dataset

SCALES = (1.0, 1.5, 2.0)  # shorter side of a photo before cropping, in crop sizes
MAX_CROPS_PER_PHOTO = 48  # keeps a big wallpaper from outweighing the rest


class StylePairs:
    """Content crops, each paired with a style crop (a fixed pairing, so a batch is a function of its indices)."""

    def __init__(self, content: torch.Tensor, styles: torch.Tensor):
        self.content, self.styles = content.contiguous(), styles.contiguous()  # uint8 [N, 3, S, S], [M, 3, S, S]
        self.fingerprint = fingerprint_of(self.content, self.styles)

    def __len__(self) -> int:
        return self.content.shape[0]

    def get_batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        style_indices = (indices * 7919 + 13) % self.styles.shape[0]  # a prime stride spreads the styles over the content
        return {
            "images": self.content[indices].to(torch.float32).div_(127.5).sub_(1.0),
            "styles": self.styles[style_indices].to(torch.float32).div_(127.5).sub_(1.0),
        }


# ------------------------------------------------------------------------------------------ sources


def content_photos(path: str | None) -> tuple[list[np.ndarray], list[str]]:
    """The content photos (uint8 [H, W, 3] each) and where they came from, with licences, in words."""
    from aigc.data.image_files import read_image

    if path is not None:
        folder = Path(path).expanduser()
        # A missing folder lists no files, so it gets the same error as an empty one.
        files = [folder] if folder.is_file() else data_files(folder, IMAGE_EXTENSIONS, none=f"{folder} holds no images", fix="point data.path at a folder of photos (png, jpg, webp, ...)")
        return [read_image(file, field="data.path").pixels for file in files], [f"{len(files)} photos from {folder}"]
    from aigc.data.prepare.style_photos import cached_photos

    # The package photos, copied once into the cache with a manifest (data/prepare/style_photos.py).
    files, sources = cached_photos()
    return [read_image(file, field="style-photos").pixels for file in files], sources


def generated_styles(size: int, count: int = 12) -> list[np.ndarray]:
    """Deterministic coloured patterns (stripes, rings, colour cells) to stand in for artworks."""
    rng = np.random.default_rng(2017)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    patterns = []
    for index in range(count):
        palette = rng.integers(0, 256, (4, 3)).astype(np.float32)
        kind = index % 3
        if kind == 0:  # stripes at an angle
            angle, period = rng.uniform(0, np.pi), rng.uniform(0.05, 0.2)
            field = ((x * np.cos(angle) + y * np.sin(angle)) / period) % 4
        elif kind == 1:  # rings around a point
            cy, cx, period = rng.uniform(0, 1, 2).tolist() + [rng.uniform(0.04, 0.12)]
            field = (np.hypot(y - cy, x - cx) / period) % 4
        else:  # colour cells around random centres (nearest centre)
            centres = rng.uniform(0, 1, (24, 2))
            distances = (y[..., None] - centres[:, 0]) ** 2 + (x[..., None] - centres[:, 1]) ** 2
            field = distances.argmin(-1) % 4
        image = palette[np.floor(field).astype(int) % 4]
        image += rng.normal(0, 12, image.shape)  # brush-like grain
        patterns.append(np.clip(image, 0, 255).astype(np.uint8))
    return patterns


def style_images(path: str | None, size: int) -> tuple[list[np.ndarray], str]:
    if path is None:
        return generated_styles(max(size * 2, 64)), "12 generated patterns (aigc, MIT)"
    from aigc.data.image_files import read_image

    target = Path(path).expanduser()
    files = [target] if target.is_file() else visible_files(target, IMAGE_EXTENSIONS) if target.is_dir() else []
    if not files:
        raise DataError(f"{target} is no image and no folder of images", field="model.style_path", fix="give a style image file or a folder of them")
    return [read_image(file, field="model.style_path").pixels for file in files], f"{len(files)} style images from {target}"


def crops(photo: np.ndarray, size: int) -> torch.Tensor:
    """uint8 [K, 3, size, size]: the photo at SCALES, cut at half-crop strides, and mirrored."""
    image = torch.from_numpy(np.array(photo)).permute(2, 0, 1)[None].float()
    pieces = []
    for scale in SCALES:
        short = round(size * scale)
        if min(image.shape[2:]) < short and scale > 1.0:
            break  # never enlarge beyond the first scale: upscaled crops teach blur
        ratio = short / min(image.shape[2:])
        resized = F.interpolate(image, size=(max(size, round(image.shape[2] * ratio)), max(size, round(image.shape[3] * ratio))), mode="bilinear", antialias=True, align_corners=False)
        stride = max(1, size // 2)
        for top in range(0, resized.shape[2] - size + 1, stride):
            for left in range(0, resized.shape[3] - size + 1, stride):
                pieces.append(resized[0, :, top : top + size, left : left + size])
    chosen = torch.stack(pieces)
    if len(chosen) > MAX_CROPS_PER_PHOTO // 2:  # evenly spaced, deterministic
        chosen = chosen[torch.linspace(0, len(chosen) - 1, MAX_CROPS_PER_PHOTO // 2).round().long()]
    both = torch.cat([chosen, chosen.flip(3)])
    return both.round().clamp(0, 255).to(torch.uint8)


@register_dataset(
    "style-photos",
    modality="style",
    description="content photos (scikit-learn's, scikit-image's, gnome-backgrounds; or data.path) as crops, paired with style images",
    source="scikit-learn sample images (+ scikit-image data, /usr/share/backgrounds/gnome when installed); styles: model.style_path or generated",
)
def load_style_photos(data_config: Any, model_config: Any) -> DatasetBundle:
    size = int(getattr(model_config, "image_size", 256))
    photos, sources = content_photos(data_config.path)
    content = torch.cat([crops(photo, size) for photo in photos])
    styles, style_source = style_images(getattr(model_config, "style_path", None), size)
    style_crops = torch.cat([crops(style, size) for style in styles])
    if data_config.limit is not None:
        content = content[: data_config.limit]
    train, val = split_indices(len(content), data_config.val_fraction, data_config.split_seed)
    return DatasetBundle(
        train=StylePairs(content[train], style_crops), val=StylePairs(content[val], style_crops) if len(val) else None, test=None,
        source="; ".join(sources) + f"; styles: {style_source}",
    )

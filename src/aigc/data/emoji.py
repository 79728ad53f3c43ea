"""Twemoji as a captioned dataset for text-to-image: 3,786 colour emoji (1,911 emoji plus their skin-tone
variations), each captioned by its name, short names and subcategory (English; the multilingual prompt
encoder lets Chinese prompts such as "一个笑脸" find them too).

Source, offline: npm `emoji-datasource-twitter@16.0.0` (DATA.md), built once into the cache by

    aigc data prepare emoji          (make install runs it; --source TARBALL builds without the network)

which keeps the 64x64 images (alpha composited onto white) and the captions, with a manifest of hashes
(aigc/data/prepare/emoji.py). `data.path` may instead name the npm tarball or its unpacked package folder.
The loader fits the images to the model's size with the one filter (`fit_images`).

Attribution (required by the licence): emoji graphics by Twitter, Inc and other contributors (Twemoji),
licensed CC-BY 4.0, https://creativecommons.org/licenses/by/4.0/; packaged by the emoji-datasource
project (MIT). The manifest and `bundle.source` repeat it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aigc.data.bundle import DatasetBundle, split_indices
from aigc.data.captions import build_caption_table, caption_bundle, encoder_name
from aigc.data.images import ImageDataset
from aigc.data.resize import fit_images, image_geometry
from aigc.errors import DataError
from aigc.registry import register_dataset

SKIN_TONES = {"1F3FB": "light", "1F3FC": "medium-light", "1F3FD": "medium", "1F3FE": "medium-dark", "1F3FF": "dark"}


# ------------------------------------------------------------------------------------------ captions


def _words(text: str) -> str:
    return text.replace("_", " ").replace("-", " ").strip().lower()


def emoji_captions(entry: dict[str, Any], tone: str | None = None) -> list[str]:
    """Captions of one emoji: its name, its short names, and its name with its subcategory."""
    name = _words(entry.get("name") or entry.get("short_name") or "emoji")
    names = [name] + [_words(short) for short in entry.get("short_names", [])]
    captions = [*dict.fromkeys(names)]  # unique, in order
    if entry.get("subcategory"):
        captions.append(f"{name}, {_words(entry['subcategory'])}")
    captions.append(f"an emoji of {name}")
    if tone is not None:
        captions = [f"{caption}, {tone} skin tone" for caption in captions]
    return captions


def emoji_entries(index: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """(image file name, captions) for every Twitter image: each emoji and each skin-tone variation."""
    entries = []
    for entry in sorted(index, key=lambda e: e.get("sort_order", 0)):
        if entry.get("has_img_twitter"):
            entries.append((entry["image"], emoji_captions(entry)))
        for key, variation in sorted((entry.get("skin_variations") or {}).items()):
            if variation.get("has_img_twitter", True):
                tone = " and ".join(SKIN_TONES.get(part, part) for part in key.split("-"))
                entries.append((variation["image"], emoji_captions(entry, tone)))
    return entries


# ---------------------------------------------------------------------------------------------- loader


def read_emoji(data_path: str | None) -> tuple[torch.Tensor, list[list[str]], str]:
    """(uint8 [N, 3, 64, 64] images, captions per image, source description)."""
    from aigc.data.prepare import built_file, read_manifest
    from aigc.data.prepare.emoji import ATTRIBUTION, PACKAGE, PREPARE_COMMAND, read_package

    if data_path is not None:
        path = Path(data_path).expanduser()
        if not path.exists():
            raise DataError(f"{path} does not exist", field="data.path", fix=f"give the npm tarball of {PACKAGE} or its package/ folder")
        images, captions = read_package(path)
        return torch.from_numpy(images), captions, f"{path}; {ATTRIBUTION}"
    images_file = built_file("emoji", "images-64.npy", PREPARE_COMMAND)
    captions = json.loads(built_file("emoji", "captions.json", PREPARE_COMMAND).read_text(encoding="utf-8"))
    images = np.load(images_file, allow_pickle=False)
    manifest = read_manifest("emoji") or {}
    return torch.from_numpy(images), captions, f"{manifest.get('source_package', 'npm ' + PACKAGE)} prepared in {images_file.parent}; {ATTRIBUTION}"


def _available() -> str | None:
    from aigc.data.prepare import is_prepared

    if is_prepared("emoji", ("images-64.npy", "captions.json")):
        return None
    return "the Twemoji set is not prepared: run `aigc data prepare emoji` once (npm emoji-datasource-twitter@16.0.0)"


@register_dataset(
    "emoji",
    modality="image",
    description="Twemoji: 3,786 colour emoji with captions from their names (CC-BY 4.0, attribution in the manifest)",
    source="npm emoji-datasource-twitter@16.0.0 via `aigc data prepare emoji`, or data.path = that tarball / its package folder",
    available=_available,
)
def load_emoji(data_config: Any, model_config: Any) -> DatasetBundle:
    image_size, channels = image_geometry(model_config)
    images, captions, source = read_emoji(data_config.path)
    if data_config.limit is not None:
        images, captions = images[: data_config.limit], captions[: data_config.limit]
    images = fit_images(images, image_size, channels)
    table = build_caption_table(captions, encoder_name(model_config))
    labels = torch.arange(len(images), dtype=torch.int64)  # each emoji is its own caption group
    train_index, val_index = split_indices(len(images), data_config.val_fraction, data_config.split_seed)
    base = DatasetBundle(
        train=ImageDataset(images[train_index], labels[train_index]),
        val=ImageDataset(images[val_index], labels[val_index]) if len(val_index) else None,
        test=None, num_classes=None,
    )
    return caption_bundle(base, table, lambda split: split.labels, class_prompts=None, source=f"{source} ({len(images)} images at {image_size}px)")

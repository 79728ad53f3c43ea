"""Twemoji from the npm package `emoji-datasource-twitter@16.0.0`: 3,786 colour emoji images with captions.

    aigc data prepare emoji        # npm pack, then read the 64x64 PNGs and emoji.json once into the cache

Builds `images-64.npy` (uint8 [N, 3, 64, 64], alpha composited onto white) and `captions.json` (a list of
captions per image, from aigc.data.emoji.emoji_entries) with a manifest. The graphics are CC-BY 4.0
(Twemoji, Twitter, Inc and other contributors): the manifest carries the attribution.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np

from aigc.data.prepare import Corpus, expect_count, npm_pack, unreadable, write_outputs
from aigc.errors import DataError
from aigc.files import sha256_file

PACKAGE = "emoji-datasource-twitter@16.0.0"
PREPARE_COMMAND = "aigc data prepare emoji"
ATTRIBUTION = (
    "Emoji graphics: Twemoji by Twitter, Inc and other contributors, CC-BY 4.0 "
    "(https://creativecommons.org/licenses/by/4.0/), via npm emoji-datasource-twitter 16.0.0 (MIT)"
)
EXPECTED_IMAGES = 3786


def fetch(folder: Path) -> Path:
    return npm_pack(PACKAGE, folder, "62 MB")


def read_package(path: Path) -> tuple[np.ndarray, list[list[str]]]:
    """(uint8 [N, 3, 64, 64] images, captions per image) from the npm tarball or its unpacked folder."""
    from aigc.data.emoji import emoji_entries
    from aigc.data.images import decode_image

    contents: dict[str, bytes] = {}
    try:
        if path.is_dir():
            root = path / "package" if (path / "package").is_dir() else path
            contents["emoji.json"] = (root / "emoji.json").read_bytes()
            for png in (root / "img" / "twitter" / "64").glob("*.png"):
                contents[f"img/twitter/64/{png.name}"] = png.read_bytes()
        else:
            with tarfile.open(path, "r|gz") as archive:  # one sequential pass: a gzip stream cannot seek
                for member in archive:
                    name = member.name.removeprefix("package/")
                    if member.isfile() and (name == "emoji.json" or name.startswith("img/twitter/64/")):
                        contents[name] = archive.extractfile(member).read()
        index = json.loads(contents["emoji.json"])
    except (OSError, tarfile.TarError, EOFError, KeyError, json.JSONDecodeError) as error:
        raise unreadable(path, error, fix=f"give the npm tarball of {PACKAGE} (or its package/ folder)") from None
    images, captions = [], []
    for name, texts in emoji_entries(index):
        data = contents.get(f"img/twitter/64/{name}")
        if data is None:
            raise DataError(f"{path} lacks img/twitter/64/{name}", field="--source", fix=f"give the unmodified npm tarball of {PACKAGE}")
        images.append(decode_image(io.BytesIO(data), 3).numpy())  # [3, 64, 64], alpha onto white
        captions.append(texts)
    return np.stack(images), captions


def build(archive: Path, folder: Path) -> dict:
    images, captions = read_package(archive)
    expect_count(archive, len(images), EXPECTED_IMAGES, "Twitter emoji images", fix=f"give the unmodified npm tarball of {PACKAGE}")
    buffer = io.BytesIO()
    np.save(buffer, images)
    outputs = write_outputs(folder, {
        "images-64.npy": buffer.getvalue(),
        "captions.json": json.dumps(captions, ensure_ascii=False).encode("utf-8"),
    })
    outputs["images-64.npy"].update(images=len(images))
    outputs["captions.json"].update(captions=sum(len(c) for c in captions))
    return {
        "archive_sha256": sha256_file(archive),
        "parameters": {"images": "package/img/twitter/64/*.png in emoji.json order (sort_order), skin variations after their emoji",
                       "attribution": ATTRIBUTION, "license": "CC-BY 4.0 (graphics), MIT (package)"},
        "outputs": outputs,
    }


CORPUS = Corpus("emoji", f"npm {PACKAGE}", fetch, build, ("images-64.npy", "captions.json"))

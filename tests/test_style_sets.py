"""The `style-photos` content set: built once from the installed packages into the cache with a manifest (source
package and version, path, licence, sha256, size), read from there afterwards; a user folder for both content
and styles bypasses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from aigc.errors import DataError
from aigc.files import package_version, sha256_file

# The training data of the zoo's fast-rings (its checkpoint's data fingerprint): 128 px crops of china.jpg and flower.jpg.
ZOO_FINGERPRINT_128 = "880e4ee0de1983a0831e7a67a3f3a20f40637656aa0be44ad1b4d6ba1c793eee"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("AIGC_CACHE_DIR", str(folder))
    return folder / "text" / "style-photos"


def load(image_size=128, path=None, style_path=None):
    from aigc.data.style_sets import load_style_photos

    data = SimpleNamespace(path=path, limit=None, val_fraction=0.05, split_seed=0)
    return load_style_photos(data, SimpleNamespace(image_size=image_size, style_path=style_path))


def test_prepare_copies_the_package_photos_into_the_cache_with_a_manifest(cache):
    done = subprocess.run([sys.executable, "-m", "aigc", "data", "prepare", "style-photos"], capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    assert "content/sklearn-china.jpg: bytes 196,653, width 640, height 427" in done.stdout
    manifest = json.loads((cache / "manifest.json").read_text())
    outputs = manifest["outputs"]
    assert {"content/sklearn-china.jpg", "content/sklearn-flower.jpg"} <= set(outputs)
    for name, described in outputs.items():
        original = Path(described["path"])
        assert described["sha256"] == sha256_file(original) == sha256_file(cache / name)  # the package's bytes, unchanged
        assert described["bytes"] == original.stat().st_size and described["role"] == "content"
        assert (described["width"], described["height"]) == Image.open(original).size
        assert described["source_package"] and described["version"] and described["license"]
    china = outputs["content/sklearn-china.jpg"]
    assert (china["source_package"], china["version"]) == ("PyPI scikit-learn", package_version("scikit-learn"))
    assert china["license"].startswith("CC BY 2.0") and "generated" in manifest["styles"]
    again = subprocess.run([sys.executable, "-m", "aigc", "data", "prepare", "style-photos"], capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert "already prepared" in again.stdout


def test_the_first_load_builds_the_cache_and_later_loads_read_only_it(cache, monkeypatch):
    from aigc.data.prepare import style_photos

    bundle = load()
    assert (cache / "manifest.json").is_file() and "PyPI scikit-learn" in bundle.source and "CC BY 2.0" in bundle.source
    assert bundle.train.fingerprint == ZOO_FINGERPRINT_128  # the same pixels the zoo's style models trained on

    def no_packages():
        raise AssertionError("a prepared cache is read, not the packages")

    monkeypatch.setattr(style_photos, "package_photos", no_packages)
    assert load().train.fingerprint == ZOO_FINGERPRINT_128
    (cache / "content" / "sklearn-flower.jpg").write_bytes(b"changed")
    with pytest.raises(DataError, match="does not match the sha256") as error:
        load()
    assert "aigc data prepare style-photos --force" in error.value.fix


def test_a_user_folder_serves_both_content_and_styles_without_the_cache(cache, tmp_path):
    photos, styles = tmp_path / "photos", tmp_path / "styles"
    photos.mkdir()
    styles.mkdir()
    rng = np.random.default_rng(0)
    for index in range(2):
        Image.fromarray(rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)).save(photos / f"p{index}.png")
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(styles / f"s{index}.jpg")
    bundle = load(image_size=32, path=str(photos), style_path=str(styles))
    assert f"2 photos from {photos}" in bundle.source and f"2 style images from {styles}" in bundle.source
    assert not cache.exists()  # nothing prepared, nothing read from the packages
    batch = bundle.train.get_batch(np.arange(2))
    assert tuple(batch["images"].shape) == tuple(batch["styles"].shape) == (2, 3, 32, 32)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="holds no images"):
        load(path=str(empty))

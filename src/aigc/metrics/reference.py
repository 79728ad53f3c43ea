"""Features of real reference images, cached on disk: computed once per key, reused by every score.

The reference images are the `split` of a run's dataset brought to the model's image geometry exactly
as for training, then through the same `fit_images` to the network's input as the generated images (one
filter for both sets). The cache key is everything the features depend on — dataset, split and its
fingerprint, count and subset, geometry, network and weights sha256, resize — and it is part of every
score's protocol. Files live under $AIGC_CACHE_DIR (default ~/.cache/aigc)/reference; a file whose key or
hash does not match is recomputed, never trusted.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aigc.errors import AigcError
from aigc.files import atomic_write_bytes, atomic_write_text, sha256_file
from aigc.metrics.features import FeatureNetwork
from aigc.metrics.protocol import REFERENCE_SPLITS

REFERENCE_SUBSET_SEED = 0  # the reference subset is the first `count` images of a permutation with this seed


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """$AIGC_CACHE_DIR, else ~/.cache/aigc (or the folder given)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get("AIGC_CACHE_DIR") or Path.home() / ".cache" / "aigc").expanduser()


@dataclass(frozen=True)
class ReferenceFeatures:
    features: np.ndarray  # float32 (count, feature_dim)
    key: dict[str, Any]  # everything the features depend on; part of every score's protocol
    path: Path  # the cache file
    cached: bool  # True when read from the cache instead of computed
    seconds: float  # time to read or compute them


def load_reference_split(data_config: Any, image_size: int, channels: int, split: str, *, field: str = "--reference-split"):
    """The `split` ("train": the whole training source, no validation hold-out; or "test") of the run's
    dataset, at the model's geometry: exactly the images the model was trained to imitate."""
    if split not in REFERENCE_SPLITS:
        raise AigcError(f"unknown split {split!r}", field=field, fix=f"use one of: {', '.join(REFERENCE_SPLITS)}")
    full = data_config.model_copy(update={"val_fraction": 0.0, "limit": None})
    bundle = _load_bundle(full.model_dump_json(), image_size, channels)
    data = getattr(bundle, split)
    if data is None or len(data) == 0:
        present = [name for name in REFERENCE_SPLITS if getattr(bundle, name) is not None and len(getattr(bundle, name))]
        raise AigcError(
            f"dataset {data_config.name!r} has no {split} split",
            field=field,
            fix=f"choose another {field}; the splits of this dataset: {', '.join(present)}",
        )
    return data


@functools.lru_cache(maxsize=2)
def _load_bundle(data_config_json: str, image_size: int, channels: int):
    """Datasets loaded once per process (evaluation passes during training ask for the same one each time);
    the splits are read-only."""
    from types import SimpleNamespace

    from aigc.config import DataConfig
    from aigc.data import load_dataset

    return load_dataset(DataConfig.model_validate_json(data_config_json), SimpleNamespace(image_size=image_size, channels=channels))


def reference_features(
    network: FeatureNetwork,
    data_config: Any,
    *,
    image_size: int,
    channels: int,
    split: str = "train",
    count: int | None = None,
    cache_dir: str | Path | None = None,
) -> ReferenceFeatures:
    """Features of `count` real images (default: the whole split), from the cache when it has them."""
    started = time.perf_counter()
    data = load_reference_split(data_config, image_size, channels, split)
    available = len(data)
    if count is not None and count > available:
        raise AigcError(
            f"asked for {count} reference images, but the {split} split of {data_config.name!r} has {available}",
            field="--reference-count",
            fix=f"use at most {available}, or another split",
        )
    count = available if count is None else count
    key = {
        "dataset": data_config.name,
        "path": None if data_config.path is None else str(Path(data_config.path).expanduser().resolve()),
        "split": split,
        "split_size": available,
        "split_fingerprint": data.fingerprint,
        "count": count,
        "subset": "all" if count == available else f"first {count} of a permutation seeded with {REFERENCE_SUBSET_SEED}",
        "image_geometry": f"{image_size}x{image_size}x{channels}",
        "network": network.name,
        "weights_sha256": network.weights_sha256,
        "resize": network.describe_resize(channels, image_size),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()
    stem = f"{data_config.name}-{split}-{network.name.replace(':', '-')}-{count}-{digest[:16]}"
    path = cache_root(cache_dir) / "reference" / f"{stem}.npz"
    cached = _read_cache(path, key)
    if cached is not None:
        return ReferenceFeatures(cached, key, path, True, time.perf_counter() - started)

    network.check_geometry(channels, image_size)  # fail before the (possibly long) feature pass
    if count == available:
        images = data.images
    else:
        order = torch.randperm(available, generator=torch.Generator().manual_seed(REFERENCE_SUBSET_SEED))
        images = data.images[order[:count].sort().values]
    features = network.features(images)
    buffer = io.BytesIO()
    np.savez(buffer, features=features)
    atomic_write_bytes(path, buffer.getvalue())
    atomic_write_text(path.with_suffix(".json"), json.dumps({"key": key, "sha256": sha256_file(path)}, indent=2))
    return ReferenceFeatures(features, key, path, False, time.perf_counter() - started)


def _read_cache(path: Path, key: dict[str, Any]) -> np.ndarray | None:
    """The cached features when the file exists, belongs to `key` and is intact; None otherwise."""
    sidecar = path.with_suffix(".json")
    if not path.is_file() or not sidecar.is_file():
        return None
    try:
        document = json.loads(sidecar.read_text(encoding="utf-8"))
        if document.get("key") != key or document.get("sha256") != sha256_file(path):
            return None  # another key with a colliding name, or a damaged file: recompute
        with np.load(path, allow_pickle=False) as archive:
            return archive["features"]
    except (OSError, ValueError, KeyError):
        return None

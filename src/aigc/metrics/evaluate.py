"""Evaluate a trained image model: generate N samples, score them against real images, record how.

    report = evaluate_run("runs/dcgan", metrics=["fid", "kid"], num_samples=10_000)   # writes RUN/eval.json
    report.scores["fid"]["value"], report.protocol

The steps, each in one function below:
  1. `generate_images`: N images, image i from seed `seed + i` (class i mod K for conditional models), in
     batches, so the set does not depend on the batch size.
  2. `reference_features`: features of real images from the run's dataset, brought to the model's image
     geometry exactly as for training, then through the same `fit_images` to the network's input as the
     generated images (one filter for both sets). Cached on disk per (dataset, split and its fingerprint,
     network, weights sha256, resize, count) under $AIGC_CACHE_DIR (default ~/.cache/aigc), and reused.
  3. `score_features`: Fréchet distance, KID, Inception Score, precision/recall/density/coverage — the
     tested math of `aigc.metrics`, labelled by the feature network ("FID" only for the FID Inception).
  4. Every score travels with its protocol: sample count and seed, reference dataset/split/count and
     fingerprint, feature network and weights sha256, resize filter, metric settings.

`compare_runs` writes a markdown table of several runs' eval.json, and refuses when their protocols differ.
"""

from __future__ import annotations

import functools
import io
import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from aigc.data.images import RESIZE_METHOD
from aigc.errors import AigcError
from aigc.files import atomic_write_bytes, atomic_write_text, sha256_file
from aigc.metrics.distances import feature_statistics, frechet_distance, kernel_distance
from aigc.metrics.features import FeatureNetwork, as_uint8_nchw, default_network_name, load_feature_network
from aigc.metrics.inception_score import inception_score
from aigc.metrics.prdc import precision_recall_density_coverage

METRICS = ("fid", "kid", "is", "prdc")
EVAL_FILE = "eval.json"
EVAL_GRID = "eval-samples.png"
EVAL_FORMAT = "aigc-eval"
REFERENCE_SPLITS = ("train", "test")
REFERENCE_SUBSET_SEED = 0  # the reference subset is the first `count` images of a permutation with this seed
GRID_IMAGES = 64


@dataclass(frozen=True)
class MetricSettings:
    """The knobs of each metric; recorded in the protocol of every score they produce."""

    kid_subsets: int = 100  # KID: random subsets averaged (Bińkowski et al. 2018; torch-fidelity)
    kid_subset_size: int = 1000  # KID: samples per subset, drawn from each set
    is_splits: int = 10  # Inception Score: contiguous splits (Salimans et al. 2016)
    prdc_k: int = 5  # precision/recall/density/coverage: k nearest neighbours (Naeem et al. 2020)

    def for_metric(self, metric: str) -> dict[str, int]:
        return {
            "fid": {},
            "kid": {"subsets": self.kid_subsets, "subset_size": self.kid_subset_size},
            "is": {"splits": self.is_splits},
            "prdc": {"k": self.prdc_k},
        }[metric]


def parse_metrics(metrics: str | Iterable[str]) -> tuple[str, ...]:
    """"fid,kid" or ["fid", "kid"] -> ("fid", "kid"), in the order given, without repeats."""
    names = [m.strip().lower() for m in (metrics.split(",") if isinstance(metrics, str) else metrics)]
    names = [m for m in names if m]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise AigcError(
            f"unknown metric {unknown[0]!r}" if unknown else "no metric was named",
            field="--metrics",
            fix=f"use a comma-separated list of: {', '.join(METRICS)} (e.g. --metrics fid,kid)",
        )
    return tuple(dict.fromkeys(names))


def check_sample_counts(
    metrics: Sequence[str], num_samples: int, reference_count: int | None, settings: MetricSettings
) -> None:
    """Refuse, before any work, sample counts a requested metric cannot use (reference_count None: unknown yet)."""
    needs = {  # metric -> (minimum generated, minimum reference, what to change)
        "fid": (2, 2, "a covariance needs at least 2 samples"),
        "kid": (settings.kid_subset_size, settings.kid_subset_size, f"KID draws subsets of {settings.kid_subset_size}"),
        "is": (settings.is_splits, 0, f"the Inception Score cuts the samples into {settings.is_splits} splits"),
        "prdc": (settings.prdc_k + 1, settings.prdc_k + 1, f"k={settings.prdc_k} nearest neighbours need k + 1 samples"),
    }
    fixes = {
        "fid": "raise -n (10,000 is the usual protocol)",
        "kid": f"raise -n to at least {settings.kid_subset_size}, or lower --kid-subset-size to at most {num_samples}",
        "is": f"raise -n to at least {settings.is_splits}, or lower --is-splits",
        "prdc": f"raise -n to at least {settings.prdc_k + 1}, or lower --prdc-k",
    }
    for metric in metrics:
        generated, reference, why = needs[metric]
        if num_samples < generated:
            raise AigcError(
                f"{metric} needs at least {generated} generated samples, got {num_samples} ({why})",
                field="-n/--num-samples",
                fix=fixes[metric],
            )
        if reference_count is not None and reference_count < reference:
            raise AigcError(
                f"{metric} needs at least {reference} reference images, got {reference_count} ({why})",
                field="--reference-count",
                fix=f"use at least {reference} reference images (a larger split or --reference-count)",
            )


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """$AIGC_CACHE_DIR, else ~/.cache/aigc (or the folder given)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get("AIGC_CACHE_DIR") or Path.home() / ".cache" / "aigc").expanduser()


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


# ---------------------------------------------------------------------------------------------------------
# 1. Generated images


def generate_images(model: torch.nn.Module, count: int, seed: int, *, batch_size: int = 500) -> np.ndarray:
    """uint8 NHWC images; image i uses seed + i and, for a conditional model, class i mod K."""
    from aigc.generation.requests import MAX_IMAGES, ImageRequest

    if not hasattr(model, "generate"):
        raise AigcError(
            f"{type(model).__name__} does not generate images (a classifier, say), so there is nothing to score",
            field="RUN",
            fix="evaluate the run of a generative model (gan, dcgan, cgan, wgan, wgan-gp, ...)",
        )
    if not 1 <= batch_size <= MAX_IMAGES:
        raise AigcError(f"batch size {batch_size} is outside 1..{MAX_IMAGES}", field="--batch-size", fix="use 500")
    request_class = getattr(model, "request_class", ImageRequest)
    num_classes = getattr(model, "num_classes", None)
    chunks = []
    for start in range(0, count, batch_size):
        size = min(batch_size, count - start)
        labels = None if num_classes is None else [(start + i) % num_classes for i in range(size)]
        chunks.append(model.generate(request_class(count=size, seed=seed + start, labels=labels)).images)
    return np.concatenate(chunks)


# ---------------------------------------------------------------------------------------------------------
# 2. Reference features, cached


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
    digest = _digest(key)
    folder = cache_root(cache_dir) / "reference"
    stem = f"{data_config.name}-{split}-{network.name.replace(':', '-')}-{count}-{digest[:16]}"
    path = folder / f"{stem}.npz"
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


def _digest(value: Any) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest()


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


# ---------------------------------------------------------------------------------------------------------
# 3. Scores


def score_features(
    metrics: Sequence[str],
    real: np.ndarray,
    fake: np.ndarray,
    probabilities: np.ndarray | None,
    network: FeatureNetwork,
    settings: MetricSettings,
    seed: int,
) -> dict[str, dict[str, Any]]:
    """metric -> {"label": ..., numbers...}; the label names the network (FID only for Inception)."""
    scores: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        label = network.label(metric)
        if metric == "fid":
            value = frechet_distance(feature_statistics(real), feature_statistics(fake))
            scores[metric] = {"label": label, "value": value}
        elif metric == "kid":
            result = kernel_distance(
                real, fake, subsets=settings.kid_subsets, subset_size=settings.kid_subset_size,
                generator=torch.Generator().manual_seed(seed),
            )
            scores[metric] = {"label": label, "mean": result.mean, "std": result.std}
        elif metric == "is":
            result = inception_score(probabilities, splits=settings.is_splits)
            scores[metric] = {"label": label, "mean": result.mean, "std": result.std}
        else:
            result = precision_recall_density_coverage(real, fake, k=settings.prdc_k)
            scores[metric] = {
                "label": label, "precision": result.precision, "recall": result.recall,
                "density": result.density, "coverage": result.coverage,
            }
    return scores


def flat_scores(scores: dict[str, dict[str, Any]], prefix: str = "") -> dict[str, float]:
    """One number per name, for logs and early stopping: "FD-MNISTClassifier", "KD-...", "IS-...",
    "precision", "recall", "density", "coverage" (KID and IS: their means)."""
    flat = {}
    for metric, score in scores.items():
        if metric == "prdc":
            for name in ("precision", "recall", "density", "coverage"):
                flat[f"{prefix}{name}"] = score[name]
        else:
            flat[f"{prefix}{score['label']}"] = score["value"] if metric == "fid" else score["mean"]
    return flat


def format_score(metric: str, score: dict[str, Any]) -> str:
    if metric == "fid":
        return f"{score['value']:.4g}"
    if metric in ("kid", "is"):
        return f"{score['mean']:.4g} ± {score['std']:.2g}"
    return "  ".join(f"{name} {score[name]:.3f}" for name in ("precision", "recall", "density", "coverage"))


# ---------------------------------------------------------------------------------------------------------
# 4. Reports with their protocol


@dataclass
class EvalReport:
    scores: dict[str, dict[str, Any]]  # metric -> label and numbers
    protocol: dict[str, Any]  # everything the numbers depend on, apart from the model
    subject: dict[str, Any]  # what was scored: a run (path, checkpoint, step, weights) or a data split
    timing: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)  # files evaluate_run wrote (eval.json, eval-samples.png)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": EVAL_FORMAT,
            "format_version": 1,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "subject": self.subject,
            "scores": self.scores,
            "protocol": self.protocol,
            "timing": self.timing,
            "warnings": self.warnings,
        }


def evaluate_images(
    images: np.ndarray,
    *,
    network: FeatureNetwork,
    data_config: Any,
    image_size: int,
    channels: int,
    metrics: Sequence[str] = ("fid",),
    seed: int = 0,
    reference_split: str = "train",
    reference_count: int | None = None,
    settings: MetricSettings = MetricSettings(),
    cache_dir: str | Path | None = None,
    candidate: str = "generated",
    sampling: str = "",
) -> EvalReport:
    """Score uint8 images (NHWC or NCHW, at `image_size` x `channels`, the geometry the reference is brought
    to) against the reference split of `data_config`'s dataset: `reference_count` real images (default:
    as many as there are images to score, at most the whole split)."""
    metrics = parse_metrics(metrics)
    batch = as_uint8_nchw(images)
    count = len(batch)
    if tuple(batch.shape[1:]) != (channels, image_size, image_size):
        raise AigcError(
            f"images are {batch.shape[2]}x{batch.shape[3]}x{batch.shape[1]}, but the reference is brought to "
            f"{image_size}x{image_size}x{channels}",
            field="images",
            fix="pass image_size and channels equal to the images' own (those the model generates)",
        )
    check_sample_counts(metrics, count, reference_count, settings)
    network.check_geometry(channels, image_size)
    if reference_count is None:  # as many real images as generated ones, at most the whole split
        reference_count = min(count, len(load_reference_split(data_config, image_size, channels, reference_split)))
    reference = reference_features(
        network, data_config, image_size=image_size, channels=channels, split=reference_split,
        count=reference_count, cache_dir=cache_dir,
    )
    check_sample_counts(metrics, count, len(reference.features), settings)
    started = time.perf_counter()
    output = network.extract(batch, probabilities="is" in metrics)
    feature_seconds = time.perf_counter() - started
    started = time.perf_counter()
    scores = score_features(metrics, reference.features, output.features, output.probabilities, network, settings, seed)
    score_seconds = time.perf_counter() - started
    protocol = {
        "sample_count": count,
        "candidate": candidate,
        "seed": seed,
        "sampling": sampling,
        "reference": {k: v for k, v in reference.key.items() if k not in ("network", "weights_sha256", "resize")},
        "feature_network": network.describe(),
        "resize": reference.key["resize"],
        "resize_method": RESIZE_METHOD,
        "metric_settings": {metric: settings.for_metric(metric) for metric in metrics},
    }
    warnings = []
    if "fid" in metrics and count <= network.feature_dim:
        warnings.append(
            f"{count} samples for {network.feature_dim}-d features: the covariance is singular and the "
            f"Fréchet distance strongly biased; use well over {network.feature_dim} (10,000 is the usual protocol)"
        )
    if count < 10_000:
        warnings.append(f"{count} samples: scores from fewer samples are biased upward; compare only at equal sample counts")
    timing = {
        "reference_s": round(reference.seconds, 3),
        "reference_cached": reference.cached,
        "features_s": round(feature_seconds, 3),
        "feature_images_per_s": round(count / max(feature_seconds, 1e-9), 1),
        "scores_s": round(score_seconds, 3),
    }
    return EvalReport(scores, protocol, {"kind": candidate}, timing, warnings)


def evaluate_model(
    model: torch.nn.Module,
    config: Any,
    *,
    metrics: Sequence[str] = ("fid",),
    num_samples: int = 10_000,
    seed: int = 0,
    feature_network: str | FeatureNetwork | None = None,
    inception_weights: str | Path | None = None,
    reference_split: str = "train",
    reference_count: int | None = None,
    settings: MetricSettings = MetricSettings(),
    batch_size: int = 500,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
) -> tuple[EvalReport, np.ndarray]:
    """Generate `num_samples` images with `model` (built from RunConfig `config`) and score them.
    Returns the report and the generated images (uint8 NHWC)."""
    metrics = parse_metrics(metrics)
    image_size, channels = _geometry(config)
    network = _network(feature_network, config.data.name, channels, device, inception_weights)
    check_sample_counts(metrics, num_samples, reference_count, settings)
    network.check_geometry(channels, image_size)  # fail before generating anything
    started = time.perf_counter()
    images = generate_images(model, num_samples, seed, batch_size=batch_size)
    generate_seconds = time.perf_counter() - started
    sampling = "image i from seed + i"
    if getattr(model, "num_classes", None) is not None:
        sampling += f"; class i mod {model.num_classes} (class-balanced)"
    report = evaluate_images(
        images, network=network, data_config=config.data, image_size=image_size, channels=channels,
        metrics=metrics, seed=seed, reference_split=reference_split, reference_count=reference_count,
        settings=settings, cache_dir=cache_dir, candidate="generated", sampling=sampling,
    )
    report.timing["generate_s"] = round(generate_seconds, 3)
    report.timing["images_per_s"] = round(num_samples / max(generate_seconds + report.timing["features_s"], 1e-9), 1)
    return report, images


def _geometry(config: Any) -> tuple[int, int]:
    image_size = getattr(config.model, "image_size", None)
    channels = getattr(config.model, "channels", None)
    if not isinstance(image_size, int) or channels not in (1, 3):
        raise AigcError(
            f"family {config.family!r} does not make images (no model.image_size / model.channels)",
            field="RUN",
            fix="evaluate an image model; text and audio metrics live elsewhere",
        )
    return image_size, channels


def _network(
    feature_network: str | FeatureNetwork | None, dataset: str, channels: int, device: str, inception_weights
) -> FeatureNetwork:
    if isinstance(feature_network, FeatureNetwork):
        return feature_network
    name = feature_network or default_network_name(dataset, channels)
    return load_feature_network(name, device=resolve_device(device), inception_weights=inception_weights)


def run_folder(checkpoint: Path) -> Path:
    """RUN for RUN/checkpoints/step-N; the checkpoint folder itself when it is not inside a run."""
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint


def evaluate_run(
    path: str | Path,
    *,
    metrics: Sequence[str] | str = METRICS,
    num_samples: int = 10_000,
    seed: int = 0,
    feature_network: str | FeatureNetwork | None = None,
    inception_weights: str | Path | None = None,
    reference_split: str = "train",
    reference_count: int | None = None,
    settings: MetricSettings = MetricSettings(),
    batch_size: int = 500,
    weights: str = "auto",
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    write: bool = True,
    out_dir: str | Path | None = None,
) -> EvalReport:
    """Evaluate a run folder, a checkpoint or a zoo model (`aigc models list`); writes eval.json and
    eval-samples.png (the first 64 images) into `out_dir`, by default the run folder (a zoo model, which
    lives inside the installed package, is only written where `out_dir` says). `report.written` lists them."""
    from aigc import checkpoint as ckpt
    from aigc import zoo
    from aigc.api import load
    from aigc.generation.outputs import ImageBatch

    metrics = parse_metrics(metrics)  # an unknown metric fails before the model is even loaded
    from_zoo = zoo.get_entry(str(path)) is not None and not Path(path).exists()
    checkpoint = ckpt.resolve_checkpoint(zoo.resolve(path))
    sidecar = ckpt.read_sidecar(checkpoint)
    model = load(checkpoint, device=resolve_device(device), weights=weights)
    report, images = evaluate_model(
        model, model.run_config, metrics=metrics, num_samples=num_samples, seed=seed,
        feature_network=feature_network, inception_weights=inception_weights, reference_split=reference_split,
        reference_count=reference_count, settings=settings, batch_size=batch_size, cache_dir=cache_dir, device=device,
    )
    run_dir = run_folder(checkpoint)
    report.subject = {
        "kind": "zoo" if from_zoo else "run",
        "run": f"zoo:{path}" if from_zoo else str(run_dir),
        "checkpoint": str(checkpoint),
        "family": sidecar.get("family"),
        "step": sidecar.get("step"),
        "weights": model.provenance["weights"],
        "weights_sha256": sidecar["files"][f"{model.provenance['weights']}.safetensors"],
    }
    target = Path(out_dir) if out_dir is not None else None if from_zoo else run_dir
    if write and target is not None:
        shown = images[:GRID_IMAGES]
        ImageBatch(
            images=shown, seeds=[seed + i for i in range(len(shown))],
            labels=None if getattr(model, "num_classes", None) is None else [i % model.num_classes for i in range(len(shown))],
            model=model.provenance["model"], parameters={"purpose": "eval samples"},
        ).save_grid(target / EVAL_GRID)
        atomic_write_text(target / EVAL_FILE, json.dumps(report.to_dict(), indent=2) + "\n")
        report.written = [target / EVAL_FILE, target / EVAL_GRID]
    return report


def evaluate_real(
    dataset: str,
    *,
    split: str = "test",
    image_size: int | None = None,
    channels: int | None = None,
    data_path: str | None = None,
    metrics: Sequence[str] | str = METRICS,
    num_samples: int | None = None,
    feature_network: str | FeatureNetwork | None = None,
    inception_weights: str | Path | None = None,
    reference_split: str = "train",
    reference_count: int | None = None,
    settings: MetricSettings = MetricSettings(),
    seed: int = 0,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
) -> EvalReport:
    """Real images scored like generated ones (e.g. MNIST test vs train): the floor a model can reach.

    `split` images (the first `num_samples` of a seeded permutation) at `image_size` x `channels`
    (default: the feature network's input) are compared with the reference split."""
    from aigc.config import DataConfig

    metrics = parse_metrics(metrics)
    data_config = DataConfig(name=dataset, path=data_path)
    network = feature_network
    if not isinstance(network, FeatureNetwork):
        name = network or default_network_name(dataset, channels or 3)
        network = load_feature_network(name, device=resolve_device(device), inception_weights=inception_weights)
    image_size = image_size or network.input_size
    channels = channels or network.input_channels
    data = load_reference_split(data_config, image_size, channels, split, field="--real-split")
    count = len(data) if num_samples is None else num_samples
    if count > len(data):
        raise AigcError(
            f"asked for {count} images, but the {split} split of {dataset!r} has {len(data)}",
            field="-n/--num-samples",
            fix=f"use at most {len(data)}",
        )
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:count].sort().values
    report = evaluate_images(
        data.images[order], network=network, data_config=data_config, image_size=image_size, channels=channels,
        metrics=metrics, seed=seed, reference_split=reference_split, reference_count=reference_count,
        settings=settings, cache_dir=cache_dir, candidate=f"real {split} images",
        sampling=f"first {count} of a permutation of the {split} split seeded with {seed}",
    )
    report.subject = {"kind": "real", "dataset": dataset, "split": split, "fingerprint": data.fingerprint}
    return report


# ---------------------------------------------------------------------------------------------------------
# Comparing runs


def read_eval(path: str | Path) -> tuple[dict[str, Any], Path]:
    """(the eval.json document, its path) of a run folder, a checkpoint inside one, or the file itself."""
    path = Path(path)
    candidates = [path] if path.is_file() else [path / EVAL_FILE]
    if path.is_dir() and path.parent.name == "checkpoints":
        candidates.append(path.parent.parent / EVAL_FILE)
    for candidate in candidates:
        if candidate.is_file():
            try:
                document = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as error:
                raise AigcError(f"cannot read {candidate}: {error}", field="RUN", fix="evaluate the run again") from None
            if document.get("format") != EVAL_FORMAT:
                raise AigcError(f"{candidate} is not an aigc eval.json", field="RUN", fix="evaluate the run again")
            return document, candidate
    if not path.exists():
        raise AigcError(f"{path} does not exist", field="RUN", fix="give run folders that `aigc eval` has scored")
    raise AigcError(
        f"{path} has no {EVAL_FILE}",
        field="RUN",
        fix=f"score it first with the same settings as the others: aigc eval {path} --metrics ...",
    )


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


# Protocol entries that describe rather than define: a network is defined by its weights' sha256, a dataset
# by its fingerprint (not where the files sit), and class-balanced sampling of a conditional model is how
# that model is sampled, so a cgan and a dcgan stay comparable.
DESCRIPTIVE_KEYS = ("reference.path", "feature_network.weights_source", "sampling")


def protocol_differences(protocols: Sequence[dict[str, Any]], names: Sequence[str]) -> list[str]:
    """Human-readable differences between protocols; settings of metrics that not every run has, and the
    descriptive entries (`DESCRIPTIVE_KEYS`), are ignored."""
    shared_metrics = set.intersection(*(set(p.get("metric_settings", {})) for p in protocols))
    flats = []
    for protocol in protocols:
        trimmed = dict(protocol, metric_settings={m: s for m, s in protocol.get("metric_settings", {}).items() if m in shared_metrics})
        flats.append(_flatten(trimmed))
    keys = sorted(set().union(*flats) - set(DESCRIPTIVE_KEYS))
    differences = []
    for key in keys:
        values = [flat.get(key) for flat in flats]
        if any(value != values[0] for value in values):
            differences.append(f"{key}: " + ", ".join(f"{value!r} ({name})" for value, name in zip(values, names)))
    return differences


def compare_runs(paths: Sequence[str | Path], out: str | Path = "comparison.md") -> Path:
    """A markdown report of several runs' eval.json: one table, sample grids, the shared protocol.
    Refuses (AigcError) unless every run was scored with the same protocol, and says what differs."""
    if len(paths) < 2:
        raise AigcError(f"--compare needs at least two runs, got {len(paths)}", field="RUN", fix="aigc eval --compare RUN_A RUN_B ...")
    documents = [read_eval(path) for path in paths]
    names = [_run_name(document, path) for document, path in documents]
    differences = protocol_differences([document["protocol"] for document, _ in documents], names)
    if differences:
        raise AigcError(
            "these runs were scored with different protocols, so their numbers are not comparable:\n    "
            + "\n    ".join(differences),
            field="--compare",
            fix="score every run again with the same settings: aigc eval RUN -n N --seed S --metrics ... "
            "--feature-network NAME --reference-split SPLIT",
        )
    out = Path(out)
    metrics = [m for m in METRICS if any(m in document["scores"] for document, _ in documents)]
    first = documents[0][0]
    header = ["run", "family", "step"]
    for metric in metrics:
        label = next(document["scores"][metric]["label"] for document, _ in documents if metric in document["scores"])
        header += [f"{label} ↓"] if metric in ("fid", "kid") else [f"{label} ↑"] if metric == "is" else ["precision ↑", "recall ↑", "density ↑", "coverage ↑"]
    header.append("samples")
    lines = ["# Evaluation comparison", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (document, path), name in zip(documents, names):
        subject = document.get("subject", {})
        row = [name, str(subject.get("family", "-")), str(subject.get("step", "-"))]
        for metric in metrics:
            score = document["scores"].get(metric)
            if metric == "prdc":
                row += [f"{score[k]:.3f}" if score else "–" for k in ("precision", "recall", "density", "coverage")]
            else:
                row.append(format_score(metric, score) if score else "–")
        row.append(" ".join(_grid_links(path.parent, out)) or "–")
        lines.append("| " + " | ".join(row) + " |")
    protocol = first["protocol"]
    network = protocol["feature_network"]
    reference = protocol["reference"]
    lines += [
        "",
        "Lower is better for ↓, higher for ↑. Every run was scored with the same protocol:",
        "",
        f"- samples: {protocol['sample_count']} {protocol['candidate']} images, seed {protocol['seed']} ({protocol['sampling']})",
        f"- reference: {reference['count']} images of the {reference['split']} split of `{reference['dataset']}` "
        f"({reference['subset']}; fingerprint `{reference['split_fingerprint'][:16]}…`)",
        f"- feature network: `{network['name']}` (weights sha256 `{network['weights_sha256'][:16]}…`, {network['weights_source']}); "
        f"input {network['input']}",
        f"- resize: {protocol['resize']}",
    ]
    for metric, values in protocol.get("metric_settings", {}).items():
        if values:
            lines.append(f"- {metric}: " + ", ".join(f"{k} {v}" for k, v in values.items()))
    if not network["name"] == "inception-v3":
        lines += ["", f"Scores use `{network['name']}` features, so they are not comparable with published FID/KID/IS (Inception-v3)."]
    atomic_write_text(out, "\n".join(lines) + "\n")
    return out


def _run_name(document: dict[str, Any], path: Path) -> str:
    run = document.get("subject", {}).get("run")
    return Path(run).name if run else path.parent.name


def _grid_links(run_dir: Path, report: Path) -> list[str]:
    """Markdown links, relative to the report, to the evaluated samples and the last training grid."""
    links = []
    base = report.resolve().parent
    if (run_dir / EVAL_GRID).is_file():
        links.append(f"[eval samples]({os.path.relpath((run_dir / EVAL_GRID).resolve(), base)})")
    grids = sorted((run_dir / "samples").glob("step-*.png"))
    if grids:
        links.append(f"[training grid]({os.path.relpath(grids[-1].resolve(), base)})")
    return links


def summary_lines(report: EvalReport) -> list[str]:
    """The protocol in a few lines, for terminals."""
    protocol, network, reference = report.protocol, report.protocol["feature_network"], report.protocol["reference"]
    return [
        f"samples: {protocol['sample_count']} {protocol['candidate']} (seed {protocol['seed']}; {protocol['sampling']})",
        f"reference: {reference['count']} {reference['split']} images of {reference['dataset']} ({reference['subset']})",
        f"feature network: {network['name']} (sha256 {network['weights_sha256'][:16]}…), input {network['input']}",
        f"resize: {protocol['resize']}",
        *(f"warning: {text}" for text in report.warnings),
    ]

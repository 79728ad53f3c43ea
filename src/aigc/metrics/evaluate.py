"""Score images against real ones: generate N samples (or take real ones), extract features, compute
the metrics, and return an `EvalReport` with the protocol record next to every number.

    report = evaluate_run("runs/dcgan", Protocol(metrics="fid,kid", num_samples=10_000))   # writes RUN/eval.json
    report.scores["fid"]["value"], report.protocol

The steps:
  1. `generate_images`: N images through the one generation path (`aigc.generation.pipeline`), image i
     from seed `seed + i` (class i mod K for conditional models), in batches, so the set does not depend
     on the batch size.
  2. `reference_features` (`aigc.metrics.reference`): features of real images of the run's dataset,
     cached on disk per key and reused.
  3. `score_features`: Fréchet distance, KID, Inception Score, precision/recall/density/coverage — the
     tested math of `aigc.metrics`, labelled by the feature network ("FID" only for the FID Inception).
  4. Every score travels with its protocol record (`Protocol.record`, `aigc.metrics.protocol`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aigc.config import pick_device
from aigc.data.resize import image_geometry
from aigc.errors import AigcError
from aigc.files import atomic_write_text
from aigc.metrics.distances import feature_statistics, frechet_distance, kernel_distance
from aigc.metrics.features import FeatureNetwork, as_uint8_nchw, default_network_name, load_feature_network
from aigc.metrics.inception_score import inception_score
from aigc.metrics.prdc import precision_recall_density_coverage
from aigc.metrics.protocol import Protocol
from aigc.metrics.reference import load_reference_split, reference_features
from aigc.metrics.report import EVAL_FILE, EVAL_GRID, EvalReport

GRID_IMAGES = 64


def feature_network_for(protocol: Protocol, dataset: str, channels: int, device: str = "cpu") -> FeatureNetwork:
    """The protocol's feature network, loaded (a loaded one as it is); by default the dataset's."""
    if isinstance(protocol.feature_network, FeatureNetwork):
        return protocol.feature_network
    name = protocol.feature_network or default_network_name(dataset, channels)
    return load_feature_network(str(name), device=str(pick_device(device)), inception_weights=protocol.inception_weights)


# ---------------------------------------------------------------------------------------------------------
# 1. Generated images


def generate_images(model: Any, count: int, seed: int, *, batch_size: int = 500) -> np.ndarray:
    """uint8 NHWC images of a `LoadedModel` (or a bare module, e.g. the one being trained); image i uses
    seed + i and, for a conditional model, class i mod K."""
    from aigc.generation.pipeline import generate
    from aigc.generation.requests import MAX_IMAGES

    module, info = (model.module, model.info) if hasattr(model, "info") else (model, None)
    if not hasattr(module, "generate"):
        raise AigcError(
            f"{type(module).__name__} does not generate images (a classifier, say), so there is nothing to score",
            field="RUN",
            fix="evaluate the run of a generative model (gan, dcgan, cgan, wgan, wgan-gp, ...)",
        )
    if not 1 <= batch_size <= MAX_IMAGES:
        raise AigcError(f"batch size {batch_size} is outside 1..{MAX_IMAGES}", field="--batch-size", fix="use 500")
    num_classes = getattr(module, "num_classes", None)
    chunks = []
    for start in range(0, count, batch_size):
        size = min(batch_size, count - start)
        labels = None if num_classes is None else [(start + i) % num_classes for i in range(size)]
        request = module.request_class(count=size, seed=seed + start, labels=labels)
        chunks.append(generate(module, request, info=info).images)
    return np.concatenate(chunks)


# ---------------------------------------------------------------------------------------------------------
# 3. Scores


def score_features(
    protocol: Protocol, real: np.ndarray, fake: np.ndarray, probabilities: np.ndarray | None, network: FeatureNetwork
) -> dict[str, dict[str, Any]]:
    """metric -> {"label": ..., numbers...}; the label names the network (FID only for Inception)."""
    scores: dict[str, dict[str, Any]] = {}
    settings = protocol.settings
    for metric in protocol.metrics:
        label = network.label(metric)
        if metric == "fid":
            value = frechet_distance(feature_statistics(real), feature_statistics(fake))
            scores[metric] = {"label": label, "value": value}
        elif metric == "kid":
            result = kernel_distance(
                real, fake, subsets=settings.kid_subsets, subset_size=settings.kid_subset_size,
                generator=torch.Generator().manual_seed(protocol.seed),
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


def evaluate_images(
    images: np.ndarray,
    protocol: Protocol,
    *,
    data_config: Any,
    image_size: int,
    channels: int,
    cache_dir: str | Path | None = None,
    candidate: str = "generated",
    sampling: str = "",
    device: str = "cpu",
) -> EvalReport:
    """Score uint8 images (NHWC or NCHW, at `image_size` x `channels`, the geometry the reference is brought
    to) against the reference split of `data_config`'s dataset: `protocol.reference_count` real images
    (default: as many as there are images to score, at most the whole split). All the images given are
    scored (`protocol.num_samples` is how many to make, for the callers that make them)."""
    network = feature_network_for(protocol, data_config.name, channels, device)
    batch = as_uint8_nchw(images)
    count = len(batch)
    if tuple(batch.shape[1:]) != (channels, image_size, image_size):
        raise AigcError(
            f"images are {batch.shape[2]}x{batch.shape[3]}x{batch.shape[1]}, but the reference is brought to "
            f"{image_size}x{image_size}x{channels}",
            field="images",
            fix="pass image_size and channels equal to the images' own (those the model generates)",
        )
    protocol.check_sample_counts(count, protocol.reference_count)
    network.check_geometry(channels, image_size)
    reference_count = protocol.reference_count
    if reference_count is None:  # as many real images as generated ones, at most the whole split
        reference_count = min(count, len(load_reference_split(data_config, image_size, channels, protocol.reference_split)))
    reference = reference_features(
        network, data_config, image_size=image_size, channels=channels, split=protocol.reference_split,
        count=reference_count, cache_dir=cache_dir,
    )
    protocol.check_sample_counts(count, len(reference.features))
    started = time.perf_counter()
    output = network.extract(batch, probabilities="is" in protocol.metrics)
    feature_seconds = time.perf_counter() - started
    started = time.perf_counter()
    scores = score_features(protocol, reference.features, output.features, output.probabilities, network)
    score_seconds = time.perf_counter() - started
    record = protocol.record(sample_count=count, candidate=candidate, sampling=sampling, network=network, reference=reference.key)
    timing = {
        "reference_s": round(reference.seconds, 3),
        "reference_cached": reference.cached,
        "features_s": round(feature_seconds, 3),
        "feature_images_per_s": round(count / max(feature_seconds, 1e-9), 1),
        "scores_s": round(score_seconds, 3),
    }
    return EvalReport(scores, record, {"kind": candidate}, timing, protocol.warnings(count, network))


# ---------------------------------------------------------------------------------------------------------
# What is scored: a model, a run, real images


def evaluate_model(
    model: Any,
    config: Any,
    protocol: Protocol,
    *,
    batch_size: int = 500,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
) -> tuple[EvalReport, np.ndarray]:
    """Generate `protocol.num_samples` images with `model` (a LoadedModel, or a module built from RunConfig
    `config`) and score them. Returns the report and the generated images (uint8 NHWC)."""
    if protocol.num_samples is None:
        raise AigcError("generated images need a sample count", field="-n/--num-samples", fix="use -n 10000, the usual protocol")
    image_size, channels = image_geometry(config.model, "image metrics")
    network = feature_network_for(protocol, config.data.name, channels, device)
    protocol = protocol.replace(feature_network=network)  # loaded once, for the scoring below
    protocol.check_sample_counts(protocol.num_samples, protocol.reference_count)
    network.check_geometry(channels, image_size)  # fail before generating anything
    started = time.perf_counter()
    images = generate_images(model, protocol.num_samples, protocol.seed, batch_size=batch_size)
    generate_seconds = time.perf_counter() - started
    sampling = "image i from seed + i"
    num_classes = getattr(getattr(model, "module", model), "num_classes", None)
    if num_classes is not None:
        sampling += f"; class i mod {num_classes} (class-balanced)"
    report = evaluate_images(
        images, protocol, data_config=config.data, image_size=image_size, channels=channels, cache_dir=cache_dir,
        candidate="generated", sampling=sampling,
    )
    report.timing["generate_s"] = round(generate_seconds, 3)
    report.timing["images_per_s"] = round(len(images) / max(generate_seconds + report.timing["features_s"], 1e-9), 1)
    return report, images


def run_folder(checkpoint: Path) -> Path:
    """RUN for RUN/checkpoints/step-N; the checkpoint folder itself when it is not inside a run."""
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint


def evaluate_run(
    path: str | Path,
    protocol: Protocol = Protocol(metrics=("fid", "kid", "is", "prdc")),
    *,
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
    from aigc import zoo
    from aigc.generation.outputs import ImageBatch
    from aigc.loading import load

    from_zoo = zoo.get_entry(str(path)) is not None and not Path(path).exists()
    model = load(path, device=str(pick_device(device)), weights=weights)
    info = model.info
    report, images = evaluate_model(model, info.config, protocol, batch_size=batch_size, cache_dir=cache_dir, device=device)
    run_dir = run_folder(info.checkpoint)
    report.subject = {
        "kind": "zoo" if from_zoo else "run",
        "run": f"zoo:{path}" if from_zoo else str(run_dir),
        "checkpoint": str(info.checkpoint),
        "family": info.sidecar.get("family"),
        "step": info.step,
        "weights": info.weights,
        "weights_sha256": info.sidecar["files"][f"{info.weights}.safetensors"],
    }
    target = Path(out_dir) if out_dir is not None else None if from_zoo else run_dir
    if write and target is not None:
        shown = images[:GRID_IMAGES]
        num_classes = getattr(model.module, "num_classes", None)
        ImageBatch(
            images=shown, seeds=[protocol.seed + i for i in range(len(shown))],
            labels=None if num_classes is None else [i % num_classes for i in range(len(shown))],
            model=info.model_name, parameters={"purpose": "eval samples"},
        ).save_grid(target / EVAL_GRID)
        atomic_write_text(target / EVAL_FILE, json.dumps(report.to_dict(), indent=2) + "\n")
        report.written = [target / EVAL_FILE, target / EVAL_GRID]
    return report


def evaluate_real(
    dataset: str,
    protocol: Protocol = Protocol(metrics=("fid", "kid", "is", "prdc"), num_samples=None),
    *,
    split: str = "test",
    image_size: int | None = None,
    channels: int | None = None,
    data_path: str | None = None,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
) -> EvalReport:
    """Real images scored like generated ones (e.g. MNIST test vs train): the floor a model can reach.

    `split` images (the first `protocol.num_samples`, default all, of a permutation seeded with
    `protocol.seed`) at `image_size` x `channels` (default: the feature network's input) are compared with
    the reference split."""
    from aigc.config import DataConfig

    data_config = DataConfig(name=dataset, path=data_path)
    network = feature_network_for(protocol, dataset, channels or 3, device)
    protocol = protocol.replace(feature_network=network)
    image_size = image_size or network.input_size
    channels = channels or network.input_channels
    data = load_reference_split(data_config, image_size, channels, split, field="--real-split")
    count = len(data) if protocol.num_samples is None else protocol.num_samples
    if count > len(data):
        raise AigcError(
            f"asked for {count} images, but the {split} split of {dataset!r} has {len(data)}",
            field="-n/--num-samples",
            fix=f"use at most {len(data)}",
        )
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(protocol.seed))[:count].sort().values
    report = evaluate_images(
        data.images[order], protocol, data_config=data_config, image_size=image_size, channels=channels,
        cache_dir=cache_dir, candidate=f"real {split} images",
        sampling=f"first {count} of a permutation of the {split} split seeded with {protocol.seed}",
    )
    report.subject = {"kind": "real", "dataset": dataset, "split": split, "fingerprint": data.fingerprint}
    return report

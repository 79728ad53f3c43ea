"""Feature networks for sample-quality scores: a backbone (`aigc.backbones`) behind one scoring interface.

Every score that compares generated images with real ones (Fréchet distance, KID, precision/recall) is
only as meaningful as the network that turns images into features, and only comparable when that network,
its weights and the way images reach it are the same. A `FeatureNetwork` wraps a backbone and fixes all
three; it records:

    name              "mnist-classifier", "fashion-classifier", "efficientnet-lite0", "inception-v3",
                      or "classifier-run:<sha256 prefix>" for a classifier trained with `aigc train`
    input             size, channels, value convention (what the float input means)
    weights_sha256    of the exact weights file; checked when the file is loaded
    feature_dim       length of the feature vector (the backbone's "features" layer)
    num_classes       of the class probabilities (the softmax of its "logits", for the Inception Score)

and has one way in: `network.extract(images)` takes uint8 images, NHWC (as `ImageBatch.images`) or NCHW
(as datasets hold them), fits them to the network's input with `aigc.data.images.fit_images` — the one
resize filter (`RESIZE_METHOD`) that the datasets use too, so real and generated images are always
resized the same way — and runs the backbone in eval mode under `torch.no_grad()` (a feature network
left in train mode, with BatchNorm using batch statistics, is a known bug in popular FID code; STYLE.md).

Score names. A Fréchet distance is "FID" only with the FID Inception-v3 weights. With another network it
is labelled with that network — "FD-EffNetLite0", "FD-MNISTClassifier" — and so are KID and IS
(`network.label("fid")`). Those numbers are not comparable with published FIDs.

Which images a network may score is a scoring rule, kept here: a classifier only images of its own
channels and within a factor of 2 of its size; an ImageNet network any grey or RGB image of at least 16
pixels (grey replicated to RGB).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aigc.backbones import Backbone, load_backbone
from aigc.backbones.classifier import ClassifierBackbone, weights_dir
from aigc.data.resize import RESIZE_METHOD, fit_images
from aigc.errors import AigcError
from aigc.files import atomic_write_text, sha256_file
from aigc.registry import BACKBONES

# Which network scores a dataset when none is named; any RGB dataset gets efficientnet-lite0.
DEFAULT_NETWORK_FOR_DATASET = {
    "mnist": "mnist-classifier", "fashion-mnist": "fashion-classifier",
    "mnist-captions": "mnist-classifier", "fashion-mnist-captions": "fashion-classifier",  # the same images, captioned
}
DEFAULT_RGB_NETWORK = "efficientnet-lite0"
STANDARD_LABELS = ("inception-v3",)  # only its scores are FID / KID / IS proper


# ---------------------------------------------------------------------------------------------------------
# Images in: NHWC or NCHW uint8 -> NCHW uint8 tensor


def as_uint8_nchw(images: Any, *, layout: str = "auto") -> torch.Tensor:
    """uint8 images as a [N, C, H, W] tensor; `images` is NHWC or NCHW (numpy or torch), C = 1 or 3.

    layout "auto" reads NHWC when the last axis holds 1 or 3 channels and NCHW when the second does; a
    shape where both could (e.g. 3x3 images) needs layout="NHWC" or "NCHW".
    """
    tensor = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if not isinstance(tensor, torch.Tensor):
        raise AigcError(
            f"expected a uint8 image array, got {type(images).__name__}",
            field="images",
            fix="pass ImageBatch.images (uint8 NHWC) or a dataset's images (uint8 NCHW)",
        )
    if tensor.dtype != torch.uint8 or tensor.ndim != 4:
        raise AigcError(
            f"expected uint8 images of shape [N, H, W, C] or [N, C, H, W], got {tensor.dtype} {tuple(tensor.shape)}",
            field="images",
            fix="convert floats in [-1, 1] with aigc.models.sampling.to_uint8_images, or stack single images",
        )
    channels_last, channels_first = tensor.shape[-1] in (1, 3), tensor.shape[1] in (1, 3)
    if layout == "auto" and not (channels_last or channels_first):
        raise AigcError(
            f"images of shape {tuple(tensor.shape)} have neither 1 nor 3 channels on the last axis (NHWC) "
            "or the second (NCHW)",
            field="images",
            fix="feature networks take grey or RGB images: drop an alpha channel, or convert the images",
        )
    if layout == "auto":
        if channels_last and channels_first and tensor.shape[1] != tensor.shape[-1]:
            raise AigcError(
                f"cannot tell NHWC from NCHW for shape {tuple(tensor.shape)}",
                field="layout",
                fix='pass layout="NHWC" or layout="NCHW"',
            )
        layout = "NHWC" if channels_last and not channels_first else "NCHW"
    if layout == "NHWC":
        tensor = tensor.permute(0, 3, 1, 2)
    elif layout != "NCHW":
        raise AigcError(f"unknown layout {layout!r}", field="layout", fix='use "auto", "NHWC" or "NCHW"')
    if tensor.shape[1] not in (1, 3):
        raise AigcError(
            f"images have {tensor.shape[1]} channels; feature networks take 1 (grey) or 3 (RGB)",
            field="images",
            fix="drop the alpha channel, or convert the images to grey or RGB",
        )
    return tensor.contiguous()


# ---------------------------------------------------------------------------------------------------------
# The interface


@dataclass(frozen=True)
class FeatureOutput:
    """Features of a set of images, and class probabilities when the network has a classifier head."""

    features: np.ndarray  # float32 (N, feature_dim)
    probabilities: np.ndarray | None  # float64 (N, num_classes), rows sum to 1; None when not asked for


class FeatureNetwork:
    """A backbone that maps uint8 images to features (and class probabilities), always the same way.

    The backbone is frozen (no parameter needs a gradient) and run in eval mode; this object owns it.
    Subclasses say which images it may score (`check_geometry`).
    """

    resize_method = RESIZE_METHOD

    def __init__(self, backbone: Backbone, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.backbone = backbone.to(self.device).eval().requires_grad_(False)
        self.name, self.tag = backbone.name, backbone.tag
        self.input_size, self.input_channels = backbone.input_size, backbone.input_channels
        self.input_convention = backbone.input_range
        self.weights_sha256, self.weights_source = backbone.weights_sha256, backbone.weights_source
        self.feature_dim, self.num_classes = backbone.feature_dim, backbone.num_classes
        self.standard_labels = backbone.name in STANDARD_LABELS
        self.default_batch_size = backbone.batch_size

    @property
    def module(self) -> Backbone:
        return self.backbone

    # -- what images it accepts ----------------------------------------------------------------------

    def check_geometry(self, channels: int, size: int) -> None:
        """Raise an AigcError when images of this geometry should not be scored by this network."""
        if channels not in (1, 3):
            raise AigcError(f"{channels}-channel images", field="images", fix="use grey or RGB images")

    def describe_resize(self, channels: int, size: int) -> str:
        source = f"{size}x{size}x{channels}"
        target = f"{self.input_size}x{self.input_size}x{self.input_channels}"
        if (channels, size) == (self.input_channels, self.input_size):
            return f"{source}: unchanged"
        return f"{source} -> {target} by aigc.data.images.fit_images ({self.resize_method})"

    # -- features ----------------------------------------------------------------------------------

    def prepare(self, images: Any, *, layout: str = "auto") -> torch.Tensor:
        """uint8 NCHW at the network's input geometry, through the one filter (`fit_images`)."""
        batch = as_uint8_nchw(images, layout=layout)
        height, width = batch.shape[2:]
        self.check_geometry(int(batch.shape[1]), int(min(height, width)))
        return fit_images(batch, self.input_size, self.input_channels)

    @torch.no_grad()
    def extract(
        self, images: Any, *, probabilities: bool = False, batch_size: int | None = None, layout: str = "auto"
    ) -> FeatureOutput:
        """Features (and optionally class probabilities) of uint8 images, in eval mode, batch by batch.

        Results do not depend on the batch size or on the other images in a batch (eval mode).
        """
        if probabilities and not self.num_classes:
            raise AigcError(
                f"{self.name} has no classifier head, so it gives no class probabilities",
                field="metrics",
                fix="drop `is` from the metrics, or use a classifier feature network",
            )
        fitted = self.prepare(images, layout=layout)
        self.backbone.eval()  # every call, in case someone switched the module to train mode
        size = batch_size or self.default_batch_size
        layers = ("features", "logits") if probabilities else ("features",)
        features, probs = [], []
        for start in range(0, fitted.shape[0], size):
            outputs = self.backbone(self.backbone.from_uint8(fitted[start : start + size].to(self.device)), layers)
            features.append(outputs["features"].float().cpu())
            if probabilities:
                probs.append(torch.softmax(outputs["logits"].double(), dim=1).cpu())
        if not features:
            raise AigcError("no images were given", field="images", fix="pass at least one image")
        return FeatureOutput(
            features=torch.cat(features).numpy(),
            probabilities=torch.cat(probs).numpy() if probabilities else None,
        )

    def features(self, images: Any, **options: Any) -> np.ndarray:
        """(N, feature_dim) float32 features of uint8 images (see `extract`)."""
        return self.extract(images, **options).features

    def probabilities(self, images: Any, **options: Any) -> np.ndarray:
        """(N, num_classes) class probabilities of uint8 images (see `extract`)."""
        return self.extract(images, probabilities=True, **options).probabilities

    # -- labels and protocol -------------------------------------------------------------------------

    def label(self, metric: str) -> str:
        """The name a score gets with this network: "FID" only for the FID Inception, else "FD-<tag>"."""
        standard = {"fid": "FID", "kid": "KID", "is": "IS", "prdc": "PRDC"}[metric]
        if self.standard_labels:
            return standard
        short = {"fid": "FD", "kid": "KD", "is": "IS", "prdc": "PRDC"}[metric]
        return f"{short}-{self.tag}"

    def describe(self) -> dict[str, Any]:
        """What a score's protocol records about the network."""
        return {
            "name": self.name,
            "weights_sha256": self.weights_sha256,
            "weights_source": self.weights_source,
            "input": f"{self.input_size}x{self.input_size}x{self.input_channels}, {self.input_convention}",
            "feature_dim": self.feature_dim,
            "num_classes": self.num_classes,
            "resize_method": self.resize_method,
        }


class ClassifierNetwork(FeatureNetwork):
    """A classifier (`aigc.backbones.classifier`) as a feature network.

    It was trained on images of one size and channel count, so it only scores images with the same
    channels, and sizes within a factor of 2 of its own (resized by `fit_images`); anything else is an
    error rather than a number that looks fine and means nothing.
    """

    def check_geometry(self, channels: int, size: int) -> None:
        if channels != self.input_channels:
            kind = {1: "grey", 3: "RGB"}
            raise AigcError(
                f"{self.name} was trained on {kind.get(self.input_channels, self.input_channels)} images and "
                f"cannot score {kind.get(channels, channels)} ones",
                field="feature_network",
                fix=f"use --feature-network {DEFAULT_RGB_NETWORK} (any size, grey or RGB), or a classifier "
                "trained on images like these",
            )
        if not self.input_size / 2 <= size <= self.input_size * 2:
            raise AigcError(
                f"{self.name} was trained on {self.input_size}x{self.input_size} images; {size}x{size} images "
                f"would be resized by more than a factor of 2",
                field="feature_network",
                fix=f"generate at {self.input_size // 2 + (self.input_size % 2)}..{self.input_size * 2} pixels, "
                f"or use --feature-network {DEFAULT_RGB_NETWORK}",
            )


class ImageNetNetwork(FeatureNetwork):
    """A network trained on ImageNet photos: any size of at least 16 pixels, grey replicated to RGB."""

    min_size = 16

    def check_geometry(self, channels: int, size: int) -> None:
        super().check_geometry(channels, size)
        if size < self.min_size:
            raise AigcError(
                f"{size}x{size} images are too small for {self.name} ({self.input_size}x{self.input_size} ImageNet "
                f"photos); they would be upsampled {self.input_size / size:.0f}x",
                field="feature_network",
                fix=f"use images of at least {self.min_size} pixels, or a classifier trained on such small images "
                "(aigc train classifier-tiny shows how; pass its run folder as --feature-network)",
            )


def feature_network(backbone: Backbone, device: str | torch.device = "cpu") -> FeatureNetwork:
    """The scoring wrapper that fits `backbone`: classifiers score only images like their own."""
    kind = ClassifierNetwork if isinstance(backbone, ClassifierBackbone) else ImageNetNetwork
    return kind(backbone, device)


# ---------------------------------------------------------------------------------------------------------
# By name, or a classifier run


def load_classifier_run(path: str | Path, *, device: str = "cpu") -> ClassifierBackbone:
    """Any classifier trained with `aigc train` (a run or checkpoint folder) as a backbone."""
    from aigc import checkpoint as ckpt
    from aigc.loading import load

    checkpoint = ckpt.resolve_checkpoint(path)
    sidecar = ckpt.read_sidecar(checkpoint)
    if sidecar.get("family") != "classifier":
        raise AigcError(
            f"{checkpoint} holds a {sidecar.get('family')!r} model, not a classifier",
            field="feature_network",
            fix="name a packaged network (mnist-classifier, fashion-classifier, efficientnet-lite0, "
            "inception-v3) or the run folder of `aigc train classifier-...`",
        )
    classifier = load(checkpoint, weights="model").module
    digest = sidecar["files"]["model.safetensors"]
    backbone = ClassifierBackbone(classifier, name=f"classifier-run:{digest[:16]}", tag=f"Classifier{digest[:8]}")
    backbone.weights_sha256, backbone.weights_source = digest, f"{checkpoint}/model.safetensors"
    return backbone.to(device).eval()


def load_feature_network(
    name_or_path: str, *, device: str = "cpu", inception_weights: str | Path | None = None
) -> FeatureNetwork:
    """A feature network by backbone name (`BACKBONES.names()`), or a classifier run folder from `aigc train`."""
    if name_or_path in BACKBONES:
        weights = inception_weights if BACKBONES.get(name_or_path).weights_file else None
        return feature_network(load_backbone(name_or_path, weights=weights), device)
    if Path(name_or_path).exists():
        return feature_network(load_classifier_run(name_or_path), device)
    raise AigcError(
        f"unknown feature network {name_or_path!r}",
        field="--feature-network",
        fix=f"use one of: {', '.join(BACKBONES.names())}, or the run folder of a classifier trained with aigc train",
    )


def default_network_name(dataset: str, channels: int) -> str:
    """mnist -> mnist-classifier, fashion-mnist -> fashion-classifier, RGB data -> efficientnet-lite0."""
    if dataset in DEFAULT_NETWORK_FOR_DATASET:
        return DEFAULT_NETWORK_FOR_DATASET[dataset]
    if channels == 3:
        return DEFAULT_RGB_NETWORK
    raise AigcError(
        f"there is no default feature network for grey {dataset!r} images",
        field="--feature-network",
        fix=f"name one: {DEFAULT_RGB_NETWORK} (grey is replicated to RGB), mnist-classifier for digit-like "
        "images, or the run folder of a classifier trained on this dataset (aigc train classifier-...)",
    )


# ---------------------------------------------------------------------------------------------------------
# The shipped classifiers: their test accuracy, and how a trained run becomes packaged weights


@torch.no_grad()
def classifier_accuracy(network: FeatureNetwork, dataset: str, split: str = "test") -> tuple[float, int]:
    """(accuracy, number of images) of a classifier network on a dataset split at its input geometry."""
    from types import SimpleNamespace

    from aigc.config import DataConfig
    from aigc.data import load_dataset

    bundle = load_dataset(
        DataConfig(name=dataset, val_fraction=0.0),
        SimpleNamespace(image_size=network.input_size, channels=network.input_channels),
    )
    data = getattr(bundle, split)
    if data is None:
        raise AigcError(f"{dataset} has no {split} split", field="split", fix="use split='train'")
    probabilities = network.probabilities(data.images)
    correct = (probabilities.argmax(axis=1) == data.labels.numpy()).sum()
    return float(correct / len(data)), len(data)


def package_classifier(
    run: str | Path, name: str, *, command: str, destination: str | Path | None = None, **details: Any
) -> Path:
    """Copy a trained classifier's weights into the package (`aigc/metrics/weights/NAME.safetensors`) with
    a card NAME.json: sha256, test accuracy (measured here), the training command and config, and any
    `details` (e.g. training_wall_time="4 min 27 s on 1 thread")."""
    from safetensors.torch import save_file

    from aigc import checkpoint as ckpt

    checkpoint = ckpt.resolve_checkpoint(run)
    sidecar = ckpt.read_sidecar(checkpoint)
    network = feature_network(load_classifier_run(checkpoint))
    dataset = sidecar["config"]["data"]["name"]
    accuracy, count = classifier_accuracy(network, dataset)
    folder = Path(destination) if destination is not None else weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.safetensors"
    temporary = folder / f".{name}.safetensors.tmp"
    save_file({k: v.contiguous() for k, v in network.backbone.classifier.state_dict().items()}, str(temporary))
    os.replace(temporary, target)
    target.chmod(0o644)  # package data: readable by everyone who installs it
    card = {
        "name": name,
        "file": target.name,
        "sha256": sha256_file(target),
        "dataset": dataset,
        "test_accuracy": accuracy,
        "test_images": count,
        "feature_dim": network.feature_dim,
        "config": sidecar["config"]["model"],
        "training_command": command,
        **details,
        "training_config": sidecar["config"],
        "trained_steps": sidecar["step"],
        "training_data_fingerprint": sidecar["data"]["fingerprint"],
        "versions": sidecar["versions"],
        "packaged": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_text(folder / f"{name}.json", json.dumps(card, indent=2) + "\n").chmod(0o644)
    return target

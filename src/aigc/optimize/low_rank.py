"""--low-rank R: each Linear and Conv2d layer generation uses, factorised by truncated SVD into two thinner ones.

    Linear  W [out, in]            ~ (U_R sqrt(S_R)) (sqrt(S_R) V_R^T):  Linear(in -> R) then Linear(R -> out, bias)
    Conv2d  W [out, in, k, k]      as the matrix [out, in*k*k]:           Conv2d(in -> R, k x k) then Conv2d(R -> out, 1 x 1, bias)

The best rank-R approximation in the Frobenius norm (Eckart-Young); splitting sqrt(S) between the factors
keeps both at the same scale for fine-tuning (Denton et al. 2014, https://arxiv.org/abs/1404.0736, and
Jaderberg et al. 2014 for the conv form). A layer is factorised only when R (in + out) < in x out (x k x k
for convs), i.e. when it gets smaller; the record lists which ones, with their rank and kept energy.
Transposed convolutions and layers tied to an embedding are left whole. Loading rebuilds the pairs from
the record (`rebuild`).
"""

from __future__ import annotations

import torch
from torch import nn

from aigc.errors import AigcError
from aigc.optimize.modules import generation_modules, recorded_layer, set_submodule
from aigc.registry import TRANSFORMS, TransformSpec

NAME = "low-rank"


def check_rank(rank: int) -> int:
    if not isinstance(rank, int) or rank < 1:
        raise AigcError(f"a rank must be a whole number >= 1, got {rank}", field="--low-rank", fix="e.g. --low-rank 16")
    return rank


def _pair(layer: nn.Module, rank: int) -> nn.Sequential:
    """The two thinner layers (uninitialised weights) that replace `layer` at `rank`."""
    if isinstance(layer, nn.Linear):
        return nn.Sequential(nn.Linear(layer.in_features, rank, bias=False), nn.Linear(rank, layer.out_features, bias=layer.bias is not None))
    return nn.Sequential(
        nn.Conv2d(layer.in_channels, rank, layer.kernel_size, layer.stride, layer.padding, layer.dilation, bias=False, padding_mode=layer.padding_mode),
        nn.Conv2d(rank, layer.out_channels, 1, bias=layer.bias is not None),
    )


def _saves(layer: nn.Module, rank: int) -> bool:
    if isinstance(layer, nn.Linear):
        return rank * (layer.in_features + layer.out_features) < layer.in_features * layer.out_features
    area = layer.kernel_size[0] * layer.kernel_size[1]
    return rank * (layer.in_channels * area + layer.out_channels) < layer.in_channels * layer.out_channels * area


@torch.no_grad()
def factorize(module: nn.Module, rank: int) -> dict:
    """Replace every layer that gets smaller at `rank` by its SVD pair, in place; the transform's record."""
    check_rank(rank)
    layers = generation_modules(module)
    embedded = {id(layer.weight) for _, layer in layers if isinstance(layer, nn.Embedding)}
    candidates = [(path, layer) for path, layer in layers
                  if (type(layer) is nn.Linear and id(layer.weight) not in embedded) or (type(layer) is nn.Conv2d and layer.groups == 1)]
    factored = {}
    for path, layer in candidates:
        if not _saves(layer, rank):
            continue
        weight = layer.weight.detach().float().flatten(1)  # [out, in] or [out, in*k*k]
        u, s, vh = torch.linalg.svd(weight, full_matrices=False)
        root = s[:rank].sqrt()
        pair = _pair(layer, rank)
        pair[0].weight.copy_((root[:, None] * vh[:rank]).view_as(pair[0].weight))
        pair[1].weight.copy_((u[:, :rank] * root).view_as(pair[1].weight))
        if layer.bias is not None:
            pair[1].bias.copy_(layer.bias)
        set_submodule(module, path, pair)
        factored[path] = {"rank": rank, "energy": round(float((s[:rank] ** 2).sum() / (s**2).sum()), 4)}
    if not factored:
        raise AigcError(
            f"no Linear or Conv2d layer of {type(module).__name__} gets smaller at rank {rank}",
            field="--low-rank", fix="give a lower rank (each layer needs rank x (in + out) < in x out)",
        )
    return {"name": NAME, "layers": factored}


def rebuild(module: nn.Module, record: dict) -> nn.Module:
    for path, entry in record.get("layers", {}).items():
        layer = recorded_layer(module, path, (nn.Linear, nn.Conv2d), "factorised {path} as a Linear or Conv2d layer")
        set_submodule(module, path, _pair(layer, int(entry["rank"])))
    return module


TRANSFORMS.register(NAME, TransformSpec(NAME, rebuild, "truncated-SVD factorisation of Linear and Conv2d layers"))

"""--prune AMOUNT: magnitude pruning; --structured: remove whole channels so that the tensors really shrink.

Unstructured (Han et al. 2015, https://arxiv.org/abs/1506.02626): the AMOUNT fraction of weights with the
smallest |w|, ranked across every conv and Linear weight generation uses at once ("global"; a layer whose
weights are small overall loses more) or within each layer ("layer"), is set to zero. The architecture
and the file size stay the same (dense zeros); `finetune` keeps them zero while it recovers quality.

Structured (Li et al. 2017, "Pruning Filters for Efficient ConvNets", https://arxiv.org/abs/1608.08710):
in each chain conv -> [BatchNorm, elementwise activation, dropout]* -> conv inside an nn.Sequential, the
first conv's output channels with the smallest L1 filter norm (or BatchNorm scale, `--criterion bn`) are removed, together with the BatchNorm's
entries and the next conv's matching input channels. Only such chains are cut, because a Sequential
feeds a layer's output to the next layer alone: a residual sum or a reshape would need the same channels
on both sides. Loading rebuilds the narrower layers from the record (`rebuild_channels`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from aigc.errors import AigcError, CheckpointError
from aigc.optimize.modules import generation_modules, get_submodule
from aigc.registry import TRANSFORMS, TransformSpec

NAME = "prune"
CHANNELS = "prune-channels"
WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)
CONVS = (nn.Conv2d, nn.ConvTranspose2d)
PASS_THROUGH = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Dropout, nn.Dropout2d, nn.Identity)


def check_amount(amount: float) -> float:
    if not (isinstance(amount, (int, float)) and 0 < amount < 1 and math.isfinite(amount)):
        raise AigcError(f"a pruning amount must lie strictly between 0 and 1, got {amount}", field="--prune",
                        fix="give the fraction of weights to remove, e.g. --prune 0.5")
    return float(amount)


# ------------------------------------------------------------------------------------------ unstructured


def prunable_weights(module: nn.Module) -> dict[str, Tensor]:
    """Parameter name -> weight of every Linear/conv layer generation uses (embeddings and norms are left whole;
    a Linear tied to an embedding is too, since zeroing it would zero the embedding)."""
    embedded = {id(m.weight) for _, m in generation_modules(module) if isinstance(m, nn.Embedding)}
    return {f"{path}.weight": layer.weight for path, layer in generation_modules(module)
            if isinstance(layer, WEIGHTED) and isinstance(layer.weight, nn.Parameter) and id(layer.weight) not in embedded}


@torch.no_grad()
def prune_magnitude(module: nn.Module, amount: float, scope: str = "global") -> tuple[dict[str, Tensor], dict]:
    """Zero the smallest-|w| fraction `amount` of the prunable weights, in place: (masks by name, record)."""
    check_amount(amount)
    weights = prunable_weights(module)
    if not weights:
        raise AigcError(f"{type(module).__name__} has no Linear or conv weights to prune", field="--prune")
    if scope == "global":
        magnitudes = torch.cat([w.abs().flatten() for w in weights.values()])
        k = int(amount * magnitudes.numel())
        threshold = magnitudes.kthvalue(k).values if k > 0 else magnitudes.new_tensor(-1.0)
        masks = {name: w.abs() > threshold for name, w in weights.items()}
    elif scope == "layer":
        masks = {}
        for name, w in weights.items():
            k = int(amount * w.numel())
            masks[name] = w.abs() > (w.abs().flatten().kthvalue(k).values if k > 0 else -1.0)
    else:
        raise AigcError(f"unknown pruning scope {scope!r}", field="--scope", fix="use global or layer")
    apply_masks(module, masks)
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    record = {"name": NAME, "amount": amount, "scope": scope, "layers": sorted(masks), "sparsity": round(1 - kept / total, 4)}
    return masks, record


@torch.no_grad()
def apply_masks(module: nn.Module, masks: dict[str, Tensor]) -> None:
    parameters = dict(module.named_parameters())
    for name, mask in masks.items():
        parameters[name].mul_(mask.to(parameters[name].dtype))


def rebuild_magnitude(module: nn.Module, record: dict) -> nn.Module:
    """Zeros need no architecture of their own: only check that the pruned layers exist."""
    for name in record.get("layers", []):
        get_submodule(module, name.rpartition(".")[0])
    return module


# ------------------------------------------------------------------------------------------- structured


def channel_chains(module: nn.Module) -> list[tuple[str, list[str], str]]:
    """(conv, [BatchNorms between], next conv) paths of every prunable chain (see the module docstring)."""
    chains = []
    for path, sequential in generation_modules(module):
        if not isinstance(sequential, nn.Sequential):
            continue
        layers = list(sequential.named_children())
        for index, (name, layer) in enumerate(layers):
            if not isinstance(layer, CONVS) or layer.groups != 1:
                continue
            norms, following = [], None
            for other_name, other in layers[index + 1 :]:
                if isinstance(other, nn.BatchNorm2d):
                    norms.append(f"{path}.{other_name}")
                elif not isinstance(other, PASS_THROUGH):
                    following = (other_name, other)
                    break
            if following is not None and isinstance(following[1], CONVS) and following[1].groups == 1:
                chains.append((f"{path}.{name}", norms, f"{path}.{following[0]}"))
    return chains


def projection_chains(module: nn.Module) -> list[tuple[str, str, list[str], str]]:
    """(generator, its Linear, [BatchNorms], first conv) of every conv generator that projects its input
    with a Linear and views the result as [base_channels, base, base] before its `body` Sequential (the
    layout of the GAN family's ConvGenerator): those channels are the widest tensor, so they are pruned too."""
    chains = []
    for path, generator in generation_modules(module):
        if not all(hasattr(generator, name) for name in ("project", "body", "base_channels", "base")):
            continue
        linear = [name for name, layer in generator.project.named_children() if isinstance(layer, nn.Linear)]
        norms, following = [], None
        for name, layer in generator.body.named_children():
            if isinstance(layer, nn.BatchNorm2d):
                norms.append(f"{path}.body.{name}")
            elif not isinstance(layer, PASS_THROUGH):
                following = (name, layer)
                break
        if len(linear) == 1 and following is not None and isinstance(following[1], CONVS) and following[1].groups == 1:
            chains.append((path, f"{path}.project.{linear[0]}", norms, f"{path}.body.{following[0]}"))
    return chains


@torch.no_grad()
def resize_projection(linear: nn.Linear, kept: Tensor, area: int) -> None:
    """Keep the output rows of the kept channels of a Linear whose output is viewed as [channels, area]."""
    rows = (kept[:, None] * area + torch.arange(area)).flatten()
    linear.weight.data = linear.weight.data[rows].clone()
    if linear.bias is not None:
        linear.bias.data = linear.bias.data[rows].clone()
    linear.out_features = len(rows)


def out_channels_dim(conv: nn.Module) -> int:
    return 1 if isinstance(conv, nn.ConvTranspose2d) else 0  # ConvTranspose2d weights are [in, out, kH, kW]


@torch.no_grad()
def resize(layer: nn.Module, *, keep_out: Tensor | None = None, keep_in: Tensor | None = None) -> None:
    """Keep only the given output / input channels of a conv (or entries of a BatchNorm), in place."""
    if isinstance(layer, nn.BatchNorm2d):
        for name in ("weight", "bias", "running_mean", "running_var"):
            tensor = getattr(layer, name)
            if tensor is not None:
                tensor.data = tensor.data[keep_out].clone()
        layer.num_features = len(keep_out)
        return
    out_dim = out_channels_dim(layer)
    if keep_out is not None:
        layer.weight.data = layer.weight.data.index_select(out_dim, keep_out).clone()
        if layer.bias is not None:
            layer.bias.data = layer.bias.data[keep_out].clone()
        layer.out_channels = len(keep_out)
    if keep_in is not None:
        layer.weight.data = layer.weight.data.index_select(1 - out_dim, keep_in).clone()
        layer.in_channels = len(keep_in)


def check_layer_amounts(layers: dict[str, float], prunable: list[str]) -> dict[str, float]:
    """--prune-layer PATH=AMOUNT: each PATH one of the prunable chains, each AMOUNT in [0, 1) (0 keeps it whole)."""
    for path, value in layers.items():
        if path not in prunable:
            raise AigcError(f"--prune-layer names {path!r}, which is not a layer whose channels can be removed", field="--prune-layer",
                            fix=f"use one of: {', '.join(prunable)}")
        if not (isinstance(value, (int, float)) and 0 <= value < 1 and math.isfinite(value)):
            raise AigcError(f"--prune-layer {path}={value}: a layer's amount lies in [0, 1) (0 keeps all its channels)", field="--prune-layer",
                            fix=f"e.g. --prune-layer {path}=0")
    return {path: float(value) for path, value in layers.items()}


CRITERIA = {"l1": "L1 filter norm", "bn": "|scale| of the BatchNorm after the layer"}


def bn_scale(module: nn.Module, layer: str, norm_paths: list[str]) -> Tensor:
    """--criterion bn (Liu et al. 2017, "Learning Efficient Convolutional Networks through Network Slimming",
    https://arxiv.org/abs/1708.06519): a channel matters as much as the |weight| its BatchNorm scales it by,
    whatever the filter's own norm (the norm divides that out)."""
    if not norm_paths:
        raise AigcError(f"--criterion bn ranks channels by their BatchNorm's scale; {layer!r} has no BatchNorm after it", field="--criterion",
                        fix="use --criterion l1 for this model")
    norm = module.get_submodule(norm_paths[0])
    if norm.weight is None:
        raise AigcError(f"--criterion bn needs a BatchNorm with a learned scale after {layer!r}; {norm_paths[0]!r} has none (affine=False)",
                        field="--criterion", fix="use --criterion l1 for this model")
    return norm.weight.abs()


@torch.no_grad()
def prune_channels(module: nn.Module, amount: float, layers: dict[str, float] | None = None, criterion: str = "l1") -> dict:
    """Remove the `amount` fraction of output channels (smallest L1 filter norm, or with criterion "bn"
    the smallest BatchNorm scale) of every chain's first conv, in place; `layers` gives some chains (by conv
    path, or generator path for a projection) their own amount."""
    check_amount(amount)
    if criterion not in CRITERIA:
        raise AigcError(f"unknown channel criterion {criterion!r}", field="--criterion",
                        fix="use --criterion l1 (filter norm) or bn (BatchNorm scale)")
    chains = channel_chains(module)
    projections = projection_chains(module)
    if not chains and not projections:
        raise AigcError(
            f"{type(module).__name__} has no conv -> conv chain in an nn.Sequential whose channels can be removed",
            field="--structured", fix="prune its weights without --structured (zeros, same tensor sizes)",
        )
    layers = check_layer_amounts(dict(layers or {}), [chain[0] for chain in projections] + [chain[0] for chain in chains])
    channels = {}
    for conv_path, norm_paths, next_path in chains:
        conv = module.get_submodule(conv_path)
        out_dim = out_channels_dim(conv)
        norms = conv.weight.abs().transpose(0, out_dim).flatten(1).sum(dim=1)  # L1 norm per output channel
        if criterion == "bn":
            norms = bn_scale(module, conv_path, norm_paths)
        keep = max(1, round(len(norms) * (1 - layers.get(conv_path, amount))))
        kept = norms.topk(keep).indices.sort().values
        resize(conv, keep_out=kept)
        for norm_path in norm_paths:
            resize(module.get_submodule(norm_path), keep_out=kept)
        resize(module.get_submodule(next_path), keep_in=kept)
        channels[conv_path] = {"channels": keep, "norms": norm_paths, "next": next_path}
    projected = {}
    for path, linear_path, norm_paths, next_path in projections:
        generator, linear = module.get_submodule(path), module.get_submodule(linear_path)
        area = generator.base**2
        norms = linear.weight.abs().view(generator.base_channels, area * linear.in_features).sum(dim=1)  # L1 per channel
        if criterion == "bn":
            norms = bn_scale(module, linear_path, norm_paths)
        keep = max(1, round(len(norms) * (1 - layers.get(path, amount))))
        kept = norms.topk(keep).indices.sort().values
        resize_projection(linear, kept, area)
        for norm_path in norm_paths:
            resize(module.get_submodule(norm_path), keep_out=kept)
        resize(module.get_submodule(next_path), keep_in=kept)
        generator.base_channels = keep
        projected[path] = {"channels": keep, "linear": linear_path, "norms": norm_paths, "next": next_path}
    return {"name": CHANNELS, "amount": amount, "criterion": CRITERIA[criterion], "chains": channels, "projections": projected,
            **({"layer_amounts": layers} if layers else {})}


def rebuild_channels(module: nn.Module, record: dict) -> nn.Module:
    """Loading: narrow each recorded chain to its kept channel count (the weights then fill them)."""
    for conv_path, chain in record.get("chains", {}).items():
        conv = get_submodule(module, conv_path)
        keep = torch.arange(int(chain["channels"]))
        if not isinstance(conv, CONVS) or len(keep) > conv.out_channels:
            raise CheckpointError(
                f"the checkpoint keeps {len(keep)} channels of {conv_path!r}, which does not fit the network built from its config",
                field="transforms", fix="the checkpoint and its config come from different runs; optimise the run again",
            )
        resize(conv, keep_out=keep)
        for norm_path in chain["norms"]:
            resize(get_submodule(module, norm_path), keep_out=keep)
        resize(get_submodule(module, chain["next"]), keep_in=keep)
    for path, chain in record.get("projections", {}).items():
        generator = get_submodule(module, path)
        keep = torch.arange(int(chain["channels"]))
        if not hasattr(generator, "base_channels") or len(keep) > generator.base_channels:
            raise CheckpointError(
                f"the checkpoint keeps {len(keep)} projected channels of {path!r}, which does not fit the network built from its config",
                field="transforms", fix="the checkpoint and its config come from different runs; optimise the run again",
            )
        resize_projection(get_submodule(module, chain["linear"]), keep, generator.base**2)
        for norm_path in chain["norms"]:
            resize(get_submodule(module, norm_path), keep_out=keep)
        resize(get_submodule(module, chain["next"]), keep_in=keep)
        generator.base_channels = len(keep)
    return module


TRANSFORMS.register(NAME, TransformSpec(NAME, rebuild_magnitude, "magnitude pruning: the smallest weights set to zero"))
TRANSFORMS.register(CHANNELS, TransformSpec(CHANNELS, rebuild_channels, "channel pruning: conv layers with fewer channels"))

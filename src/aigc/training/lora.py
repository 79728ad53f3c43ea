"""LoRA: low-rank adapters on chosen Linear and Conv2d layers (Hu et al. 2021, https://arxiv.org/abs/2106.09685).

A wrapped layer keeps its base weight and bias under the same names (so the base weights load and save as
before) and adds two small trainable tensors; with scale = alpha / rank:

    Linear  W [out, in]:          y = W x + b + scale * B (A x)                 A [rank, in], B [out, rank]
    Conv2d  W [out, in, kh, kw]:  y = conv(x, W) + b + scale * conv1x1(conv(x, A), B)
                                                                        A [rank, in, kh, kw], B [out, rank, 1, 1]

B starts at zero (paper §4.1), so a freshly wrapped model computes exactly what its base does. Training
then updates only the adapters (and the weights a family needs only for training, such as a GAN's
discriminator). Checkpoints keep the adapters in their own file (`adapter.safetensors`);
`checkpoint.merge_adapter` folds them into W (W + scale * B A) when the model is loaded or exported.
"""

from __future__ import annotations

import math
from fnmatch import fnmatch

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aigc.config import LoRAConfig
from aigc.errors import ConfigError

ADAPTER_SUFFIXES = (".lora_a", ".lora_b")
FIELD = "train.lora.targets"


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, rank: int, scale: float):
        super().__init__()
        self.in_features, self.out_features, self.scale = base.in_features, base.out_features, scale
        self.weight = base.weight
        self.register_parameter("bias", base.bias)
        like = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, **like))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))  # as nn.Linear initialises its weight
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, **like))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias) + self.scale * F.linear(F.linear(x, self.lora_a), self.lora_b)


class LoRAConv2d(nn.Module):
    def __init__(self, base: nn.Conv2d, rank: int, scale: float):
        super().__init__()
        self.stride, self.padding, self.dilation, self.scale = base.stride, base.padding, base.dilation, scale
        # Reflect/replicate/circular padding happens once, before both convolutions (as nn.Conv2d does it).
        self.padding_mode, self.explicit_padding = base.padding_mode, base._reversed_padding_repeated_twice
        self.weight = base.weight
        self.register_parameter("bias", base.bias)
        like = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_channels, *base.kernel_size, **like))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.lora_b = nn.Parameter(torch.zeros(base.out_channels, rank, 1, 1, **like))

    def forward(self, x: Tensor) -> Tensor:
        geometry = {"stride": self.stride, "padding": self.padding, "dilation": self.dilation}
        if self.padding_mode != "zeros":
            x = F.pad(x, self.explicit_padding, mode=self.padding_mode)
            geometry["padding"] = 0
        down = F.conv2d(x, self.lora_a, None, **geometry)  # [B, rank, H', W']: same geometry as the base conv
        return F.conv2d(x, self.weight, self.bias, **geometry) + self.scale * F.conv2d(down, self.lora_b)


def _unsupported(name: str, module: nn.Module, parent: nn.Module | None, shared: set[int]) -> str | None:
    """Why LoRA cannot wrap this matched layer, or None when it can."""
    if isinstance(parent, nn.MultiheadAttention):
        return f"{name} is a projection of nn.MultiheadAttention, which uses its weight directly (a wrapper would be skipped)"
    if isinstance(parent, nn.TransformerEncoderLayer):  # its inference fast path reads linear1/linear2 weights itself
        return f"{name} belongs to nn.TransformerEncoderLayer, whose fast path uses its weights directly (a wrapper would be skipped)"
    if hasattr(module, "weight_orig") or hasattr(module, "parametrizations"):
        return f"{name}'s weight is recomputed on every call (spectral norm or another parametrization)"
    if id(module.weight) in shared:
        return f"{name}'s weight is tied to another layer (merging an update into it would change both)"
    if isinstance(module, nn.Conv2d) and (module.groups != 1 or isinstance(module.padding, str)):
        return f"{name} is a grouped Conv2d or has padding={module.padding!r} (LoRA here takes groups=1 and numeric padding)"
    return None


def add_lora(model: nn.Module, config: LoRAConfig, keep_training: tuple[str, ...] = ()) -> list[str]:
    """Wrap the Linear/Conv2d layers whose module names match `config.targets` and freeze every other
    parameter except those under the `keep_training` prefixes. Returns the wrapped layers' names.

    A pattern that matches no Linear/Conv2d layer, and a matched layer of another type that has weights
    (LayerNorm, Embedding, LSTM, ConvTranspose2d, ...), are errors that list the layers LoRA can take."""
    modules = dict(model.named_modules())
    counts: dict[int, int] = {}
    for module in modules.values():
        for parameter in module.parameters(recurse=False):
            counts[id(parameter)] = counts.get(id(parameter), 0) + 1
    shared = {key for key, count in counts.items() if count > 1}
    parents = {f"{name}.{child}" if name else child: module for name, module in modules.items() for child, _ in module.named_children()}
    supported = [name for name, module in modules.items() if type(module) in (nn.Linear, nn.Conv2d)]
    choices = ", ".join(supported[:20]) + (f", ... ({len(supported)} in all)" if len(supported) > 20 else "") or "none"
    chosen: list[str] = []
    for pattern in config.targets:
        found = []
        for name, module in modules.items():
            if not name or not fnmatch(name, pattern):
                continue
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                problem = _unsupported(name, module, parents.get(name), shared)
                if problem:
                    raise ConfigError(f"pattern {pattern!r}: {problem}", field=FIELD, fix=f"target other layers; LoRA can take: {choices}")
                found.append(name)
            elif any(True for _ in module.parameters(recurse=False)):
                raise ConfigError(
                    f"pattern {pattern!r} matches {name}, a {type(module).__name__}: LoRA adapts Linear and Conv2d layers only",
                    field=FIELD, fix=f"narrow the pattern to these layers: {choices}",
                )
        if not found:
            raise ConfigError(f"pattern {pattern!r} matches no Linear or Conv2d layer", field=FIELD, fix=f"LoRA can take: {choices}")
        chosen += [name for name in found if name not in chosen]
    scale = config.alpha / config.rank
    for name in chosen:
        parent_name, _, child = name.rpartition(".")
        base = modules[name]
        wrapper = LoRALinear if isinstance(base, nn.Linear) else LoRAConv2d
        setattr(modules[parent_name] if parent_name else model, child, wrapper(base, config.rank, scale))
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.endswith(ADAPTER_SUFFIXES) or name.startswith(keep_training))
    return chosen


def split_adapter(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """(base weights, adapters) of a wrapped model's state dict: they are saved to separate files."""
    adapter = {key: value for key, value in state.items() if key.endswith(ADAPTER_SUFFIXES)}
    return {key: value for key, value in state.items() if key not in adapter}, adapter


def adapter_record(config: LoRAConfig, modules: list[str], model: nn.Module) -> dict:
    """What the checkpoint sidecar says about the adapters (loading reads `scale` to merge them)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    adapters = sum(p.numel() for name, p in model.named_parameters() if name.endswith(ADAPTER_SUFFIXES))
    return {"rank": config.rank, "alpha": config.alpha, "scale": config.alpha / config.rank, "modules": modules,
            "adapter_parameters": adapters, "trainable_parameters": trainable}

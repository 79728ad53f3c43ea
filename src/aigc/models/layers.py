"""Blocks and helpers shared by several model families (and nothing family-specific)."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Run in eval mode (BatchNorm uses running stats, dropout is off), then restore the previous mode.

    Generation must never update BatchNorm statistics or depend on the other samples in the batch.
    """
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def seeded_normal(seeds: list[int], shape: tuple[int, ...], device: torch.device | str = "cpu") -> torch.Tensor:
    """One standard-normal tensor of `shape` per seed, stacked: sample i depends on seeds[i] alone.

    Drawn on the CPU so that the same seed gives the same noise on every device.
    """
    draws = [torch.randn(shape, generator=torch.Generator().manual_seed(seed)) for seed in seeds]
    return torch.stack(draws).to(device)


def to_uint8_images(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float NCHW -> uint8 NHWC, rounding to the nearest level."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu()


def norm_2d(kind: str, channels: int) -> nn.Module:
    """Normalisation after a convolution. "layer" normalises over (C, H, W) per sample (GroupNorm with one
    group), which keeps samples independent, as a gradient penalty requires."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)  # defaults: eps=1e-5, momentum=0.1 (never BatchNorm2d(C, 0.8))
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


def norm_1d(kind: str, features: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm1d(features)
    if kind == "layer":
        return nn.LayerNorm(features)
    return nn.Identity()


def maybe_spectral_norm(layer: nn.Module, enabled: bool) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018, https://arxiv.org/abs/1802.05957) of a layer's weight."""
    return nn.utils.parametrizations.spectral_norm(layer) if enabled else layer

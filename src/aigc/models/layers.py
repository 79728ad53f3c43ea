"""Network building blocks shared by several model families (norms, embeddings, decoder plans, losses).
Conditioning lives in conditioning.py, the request -> noise -> images path in sampling.py."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def upsampling_plan(image_size: int) -> tuple[int, int]:
    """(doublings, base size): the most stride-2 steps that keep an integer base of at least 4 pixels.
    28 -> (2, 7), 32 -> (3, 4), 64 -> (4, 4)."""
    doublings = 0
    while image_size % (2 ** (doublings + 1)) == 0 and image_size // 2 ** (doublings + 1) >= 4:
        doublings += 1
    return doublings, image_size // 2**doublings


def decoder_plan(image_size: int, width: int) -> tuple[int, int, int]:
    """(doublings, base size, base channels) of a decoder that projects to a base x base map and upsamples
    it to image_size, halving the channels at each stride-2 step down to `width` before the last one."""
    doublings, base = upsampling_plan(image_size)
    return doublings, base, width * 2 ** (doublings - 1)


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


def sinusoidal_embedding(positions: torch.Tensor, dim: int, max_period: float = 10_000.0, *, interleave: bool = False) -> torch.Tensor:
    """[N] positions -> [N, dim] sines and cosines of geometric frequencies 1 / max_period^(i / (dim // 2))
    (Vaswani et al. 2017, §3.5). interleave=True is the paper's layout, PE[p, 2i] = sin, PE[p, 2i + 1] = cos
    (the transformers' position tables); False puts the cosines before the sines, as diffusion U-Nets embed
    timesteps (Ho et al. 2020, Appendix B). An odd dim gets one zero column."""
    half = dim // 2
    frequencies = torch.exp(-torch.log(torch.tensor(max_period)) * torch.arange(half, dtype=torch.float32) / half)
    angles = positions.float()[:, None] * frequencies.to(positions.device)[None, :]  # [N, half]
    if interleave:
        embedding = torch.stack([torch.sin(angles), torch.cos(angles)], dim=2).flatten(1)  # [N, 2 * half]
    else:
        embedding = torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)  # [N, 2 * half]
    return torch.nn.functional.pad(embedding, (0, dim % 2))


def gaussian_kl(mean: Tensor, log_variance: Tensor) -> Tensor:
    """KL(N(mean, exp(log_variance)) || N(0, I)) per sample, summed over the other dims [B]:
    0.5 * sum(mean^2 + var - 1 - log var) (Kingma & Welling 2013, Appendix B). Always >= 0.
    The VAE's prior term and the GAN's conditioning augmentation (StackGAN) both use it."""
    return 0.5 * (mean.pow(2) + log_variance.exp() - 1.0 - log_variance).flatten(1).sum(dim=1)


def per_sample_gradient_penalty(critic, real: Tensor, fake: Tensor, *condition) -> Tensor:
    """WGAN-GP's E[(||grad_x D(x_hat)||_2 - 1)^2] on points x_hat between real and fake samples of any shape
    [B, ...] (waveforms [B, 1, T], spectrograms or images [B, C, H, W]); Gulrajani et al. 2017,
    https://arxiv.org/abs/1704.00028, Algorithm 1, lines 6-7. One mixing weight per sample, broadcast over
    the sample's own dimensions only, and the norm taken per sample over all of them (flatten(1))."""
    epsilon = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device, dtype=real.dtype)  # [B, 1, ...]
    mixed = (epsilon * real + (1 - epsilon) * fake).requires_grad_(True)
    (gradients,) = torch.autograd.grad(critic(mixed, *condition).sum(), mixed, create_graph=True)
    return ((gradients.flatten(1).norm(2, dim=1) - 1) ** 2).mean()

"""Optimizers from OptimConfig, and the learning-rate schedule the loop applies to all of them."""

from __future__ import annotations

import math
from typing import Iterable

import torch

from aigc.config import OptimConfig, TrainConfig


def build_optimizer(parameters: Iterable[torch.nn.Parameter], config: OptimConfig) -> torch.optim.Optimizer:
    parameters = [p for p in parameters if p.requires_grad]
    if config.name == "adam":
        return torch.optim.Adam(parameters, lr=config.lr, betas=config.betas, eps=config.eps, weight_decay=config.weight_decay)
    if config.name == "adamw":
        return torch.optim.AdamW(parameters, lr=config.lr, betas=config.betas, eps=config.eps, weight_decay=config.weight_decay)
    if config.name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=config.lr, eps=config.eps, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def learning_rate_factor(step: int, train: TrainConfig) -> float:
    """Multiplier of the peak learning rate before optimizer step `step` (0-based): linear warm-up, then
    constant, cosine or linear decay to zero at max_steps. A pure function of the step, so resume is exact."""
    if step < train.warmup_steps:
        return (step + 1) / train.warmup_steps
    if train.lr_schedule == "constant":
        return 1.0
    progress = (step - train.warmup_steps) / max(1, train.max_steps - train.warmup_steps)
    progress = min(max(progress, 0.0), 1.0)
    if train.lr_schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0 - progress

"""The learning-rate schedule the loop applies to every optimizer (optimizers come from
`aigc.config.build_optimizer`, beside OptimConfig, so that model families need nothing from training)."""

from __future__ import annotations

import math

from aigc.config import TrainConfig


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

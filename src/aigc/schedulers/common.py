"""What DDPM and DDIM share: the noise schedule (betas and cumulative alphas), the forward process, and the
conversion of a network's output (epsilon or v) into a prediction of the clean image.

Notation (Ho et al. 2020, https://arxiv.org/abs/2006.11239): beta_t is the noise added at step t,
alpha_t = 1 - beta_t, alpha_bar_t = prod_{s<=t} alpha_s, and x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps.
Timesteps are 0-based: t = 0 is the first noising step, t = T - 1 the last.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from aigc.errors import AigcError

BetaSchedule = Literal["linear", "cosine"]
PredictionType = Literal["epsilon", "v"]


@dataclass(frozen=True)
class StepOutput:
    prev_sample: Tensor  # x_{t-1} (or x at the previous chosen timestep), [B, C, H, W]
    pred_original_sample: Tensor  # the step's estimate of x_0, [B, C, H, W]


def make_betas(schedule: BetaSchedule, num_train_timesteps: int) -> Tensor:
    """float64 [T] betas. linear: 1e-4 .. 0.02 scaled to T steps (Ho et al. 2020, §4, for T = 1000);
    cosine: alpha_bar(t) = cos^2(((t/T + s)/(1 + s)) pi/2), s = 0.008, betas clipped at 0.999
    (Nichol & Dhariwal 2021, https://arxiv.org/abs/2102.09672, eq. 17)."""
    if schedule == "linear":
        scale = 1000 / num_train_timesteps
        return torch.linspace(scale * 1e-4, scale * 0.02, num_train_timesteps, dtype=torch.float64)
    if schedule == "cosine":
        s = 0.008
        steps = torch.arange(num_train_timesteps + 1, dtype=torch.float64) / num_train_timesteps
        alpha_bar = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)
    raise AigcError(f"unknown beta schedule {schedule!r}", field="beta_schedule", fix="use 'linear' or 'cosine'")


class NoiseSchedule:
    """The forward process and the epsilon/v <-> x_0 algebra, shared by every scheduler."""

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_schedule: BetaSchedule = "linear",
        prediction_type: PredictionType = "epsilon",
        clip_sample: bool = True,
    ):
        if num_train_timesteps < 2:
            raise AigcError(f"num_train_timesteps must be >= 2, got {num_train_timesteps}", field="num_train_timesteps", fix="use e.g. 1000")
        if prediction_type not in ("epsilon", "v"):
            raise AigcError(f"unknown prediction type {prediction_type!r}", field="prediction_type", fix="use 'epsilon' or 'v'")
        self.num_train_timesteps = num_train_timesteps
        self.prediction_type = prediction_type
        self.clip_sample = clip_sample  # clamp predicted x_0 to [-1, 1], the data range
        self.betas = make_betas(beta_schedule, num_train_timesteps)  # float64 [T]
        self.alphas_cumprod = torch.cumprod(1 - self.betas, dim=0)  # alpha_bar_t, float64 [T]
        self.timesteps = torch.arange(num_train_timesteps - 1, -1, -1)  # until set_timesteps chooses fewer

    def _alpha_bar(self, timesteps: Tensor, like: Tensor) -> Tensor:
        """alpha_bar at each timestep, shaped [B, 1, 1, 1] to broadcast over images; t = -1 gives 1 (x_0)."""
        timesteps = torch.as_tensor(timesteps, device="cpu").long().reshape(-1)
        padded = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod])  # index t + 1
        return padded[timesteps + 1].to(like.device, like.dtype).view(-1, 1, 1, 1)

    def check_timesteps(self, timesteps: Tensor) -> None:
        if timesteps.min() < 0 or timesteps.max() >= self.num_train_timesteps:
            raise AigcError(
                f"timesteps must lie in 0..{self.num_train_timesteps - 1}, got {int(timesteps.min())}..{int(timesteps.max())}",
                field="timesteps",
            )

    def add_noise(self, clean: Tensor, noise: Tensor, timesteps: Tensor) -> Tensor:
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (Ho et al. 2020, eq. 4)."""
        self.check_timesteps(torch.as_tensor(timesteps))
        alpha_bar = self._alpha_bar(timesteps, clean)
        return alpha_bar.sqrt() * clean + (1 - alpha_bar).sqrt() * noise

    def velocity(self, clean: Tensor, noise: Tensor, timesteps: Tensor) -> Tensor:
        """v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0 (Salimans & Ho 2022, https://arxiv.org/abs/2202.00512, §4)."""
        alpha_bar = self._alpha_bar(timesteps, clean)
        return alpha_bar.sqrt() * noise - (1 - alpha_bar).sqrt() * clean

    def training_target(self, clean: Tensor, noise: Tensor, timesteps: Tensor) -> Tensor:
        """What the network learns to output at x_t: eps itself, or v."""
        return noise if self.prediction_type == "epsilon" else self.velocity(clean, noise, timesteps)

    def predict_original_and_noise(self, model_output: Tensor, timestep: int, sample: Tensor) -> tuple[Tensor, Tensor]:
        """(x_0 estimate, eps estimate) from the network's output at x_t."""
        alpha_bar = self._alpha_bar(torch.tensor([timestep]), sample)
        if self.prediction_type == "epsilon":
            noise = model_output
            original = (sample - (1 - alpha_bar).sqrt() * noise) / alpha_bar.sqrt()
        else:  # x_0 = sqrt(ab) x_t - sqrt(1-ab) v ;  eps = sqrt(1-ab) x_t + sqrt(ab) v
            original = alpha_bar.sqrt() * sample - (1 - alpha_bar).sqrt() * model_output
            noise = (1 - alpha_bar).sqrt() * sample + alpha_bar.sqrt() * model_output
        if self.clip_sample:
            original = original.clamp(-1, 1)
            # keep eps consistent with the clipped x_0, as DDIM's update needs both to agree
            noise = (sample - alpha_bar.sqrt() * original) / (1 - alpha_bar).sqrt()
        return original, noise

    def set_timesteps(self, num_inference_steps: int) -> None:
        """Sample with `num_inference_steps` evenly spaced training timesteps, from T-1 down to 0
        ("trailing" spacing, Lin et al. 2023, https://arxiv.org/abs/2305.08891, Table 2)."""
        if not 1 <= num_inference_steps <= self.num_train_timesteps:
            raise AigcError(
                f"the number of sampling steps must be 1..{self.num_train_timesteps}, got {num_inference_steps}",
                field="sample_steps",
                fix=f"use e.g. 10, 25 or 50 (DDIM) or up to {self.num_train_timesteps} (DDPM)",
            )
        ratio = self.num_train_timesteps / num_inference_steps
        timesteps = torch.round(torch.arange(self.num_train_timesteps, 0, -ratio)).long() - 1  # [n], descending
        self.timesteps = timesteps
        self.num_inference_steps = num_inference_steps

    def previous_timestep(self, timestep: int) -> int:
        """The chosen timestep after `timestep` in the sampling order, or -1 (meaning x_0) after the last."""
        later = (self.timesteps == timestep).nonzero()
        if len(later) == 0:
            raise AigcError(f"timestep {timestep} is not one of the chosen timesteps", field="timestep", fix="call set_timesteps and iterate over scheduler.timesteps")
        index = int(later[0, 0]) + 1
        return int(self.timesteps[index]) if index < len(self.timesteps) else -1

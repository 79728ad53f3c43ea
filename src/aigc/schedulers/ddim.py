"""DDIM sampling (Song et al. 2020, https://arxiv.org/abs/2010.02502): eta = 0 is deterministic, so
10-50 steps of the same trained network give images; eta = 1 has DDPM's variance."""

from __future__ import annotations

import torch
from torch import Tensor

from aigc.errors import AigcError
from aigc.schedulers.common import NoiseSchedule, StepOutput


class DDIMScheduler(NoiseSchedule):
    def __init__(self, *args, eta: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        if not 0.0 <= eta <= 1.0:
            raise AigcError(f"eta must lie in [0, 1], got {eta}", field="eta", fix="0 = deterministic DDIM, 1 = DDPM-like noise")
        self.eta = eta

    def step(self, model_output: Tensor, timestep: int, sample: Tensor, noise: Tensor | None = None) -> StepOutput:
        """x_t -> x_s with s the previous chosen timestep (Song et al. 2020, eq. 12)."""
        timestep = int(timestep)
        previous = self.previous_timestep(timestep)
        alpha_bar = self._alpha_bar(torch.tensor([timestep]), sample)
        alpha_bar_prev = self._alpha_bar(torch.tensor([previous]), sample)

        # 1. x_0 and eps predicted at x_t.
        original, predicted_noise = self.predict_original_and_noise(model_output, timestep, sample)
        # 2. sigma_t(eta) (eq. 16); eta = 0 makes the step deterministic.
        sigma = self.eta * ((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev)).sqrt()
        # 3. x_s = sqrt(ab_s) x_0 + sqrt(1 - ab_s - sigma^2) eps + sigma z  (eq. 12)
        direction = (1 - alpha_bar_prev - sigma**2).clamp(min=0).sqrt() * predicted_noise
        prev_sample = alpha_bar_prev.sqrt() * original + direction
        if self.eta > 0 and previous >= 0:
            if noise is None:
                noise = torch.randn_like(sample)
            prev_sample = prev_sample + sigma * noise
        return StepOutput(prev_sample=prev_sample, pred_original_sample=original)

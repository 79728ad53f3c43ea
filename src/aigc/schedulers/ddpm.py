"""DDPM ancestral sampling (Ho et al. 2020, https://arxiv.org/abs/2006.11239), Algorithm 2.

With fewer sampling steps than training steps, each step jumps from t to the previous chosen timestep s,
with the betas of that jump: beta = 1 - alpha_bar_t / alpha_bar_s (the "respacing" of Nichol & Dhariwal 2021, §4).
"""

from __future__ import annotations

import torch
from torch import Tensor

from aigc.schedulers.common import NoiseSchedule, StepOutput


class DDPMScheduler(NoiseSchedule):
    """Stochastic reverse steps with the posterior variance beta_tilde (the "fixed small" choice)."""

    def step(self, model_output: Tensor, timestep: int, sample: Tensor, noise: Tensor | None = None) -> StepOutput:
        """x_t -> x_s, s the previous chosen timestep. `noise` (standard normal, like `sample`) is the
        fresh randomness of this step; it is drawn from the global RNG when not given."""
        timestep = int(timestep)
        previous = self.previous_timestep(timestep)
        alpha_bar = self._alpha_bar(torch.tensor([timestep]), sample)
        alpha_bar_prev = self._alpha_bar(torch.tensor([previous]), sample)
        beta = 1 - alpha_bar / alpha_bar_prev  # the jump's beta (one training step when not respaced)
        alpha = 1 - beta

        # 1. Predict x_0 from the network output (Ho et al. 2020, eq. 15).
        original, _ = self.predict_original_and_noise(model_output, timestep, sample)
        # 2. Posterior mean mu_tilde(x_t, x_0) (eq. 7): a weighted sum of x_0 and x_t.
        original_coefficient = alpha_bar_prev.sqrt() * beta / (1 - alpha_bar)
        sample_coefficient = alpha.sqrt() * (1 - alpha_bar_prev) / (1 - alpha_bar)
        mean = original_coefficient * original + sample_coefficient * sample
        if previous < 0:
            return StepOutput(prev_sample=mean, pred_original_sample=original)  # the last step adds no noise
        # 3. Add noise with the posterior variance beta_tilde = (1 - alpha_bar_prev) / (1 - alpha_bar) beta (eq. 7).
        variance = (1 - alpha_bar_prev) / (1 - alpha_bar) * beta
        if noise is None:
            noise = torch.randn_like(sample)
        return StepOutput(prev_sample=mean + variance.sqrt() * noise, pred_original_sample=original)

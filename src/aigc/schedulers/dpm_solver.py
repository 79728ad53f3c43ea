"""DPM-Solver++(2M) (Lu et al. 2022, https://arxiv.org/abs/2211.01095, Algorithm 2): a deterministic
second-order multistep solver of the diffusion ODE in its data-prediction form, which gives DDIM's images
in fewer network evaluations (10-20 instead of 50). diffusers: DPMSolverMultistepScheduler with
algorithm_type="dpmsolver++", solver_order=2, lower_order_final=True.

Notation: alpha_t = sqrt(alpha_bar_t), sigma_t = sqrt(1 - alpha_bar_t), lambda_t = log(alpha_t / sigma_t)
(half the log signal-to-noise ratio, rising as t falls). One step goes from the current timestep s to the
next chosen one t, with h = lambda_t - lambda_s > 0 and x_0 estimates D from the network:

    first order (the first step; equal to DDIM):  x_t = (sigma_t / sigma_s) x_s - alpha_t (e^-h - 1) D_s
    second order (the others):  r = h_prev / h,  D = (1 + 1/(2r)) D_s - 1/(2r) D_prev, same update with D

The last step lands on t = -1 (alpha = 1, sigma = 0, lambda = +inf) and gives the x_0 estimate itself
(first order there, as diffusers' lower_order_final does: it keeps few-step sampling stable).

The solver is multistep: it remembers the previous step's x_0 estimate and h, so a sampling run must
call step() for scheduler.timesteps in order; set_timesteps (or stepping the first timestep) starts over.
"""

from __future__ import annotations

import math

from torch import Tensor

from aigc.schedulers.common import NoiseSchedule, StepOutput


class DPMSolverMultistepScheduler(NoiseSchedule):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._reset()

    def _reset(self) -> None:
        self.previous_original: Tensor | None = None  # D of the previous step
        self.previous_h: float | None = None  # its lambda step

    def set_timesteps(self, num_inference_steps: int) -> None:
        super().set_timesteps(num_inference_steps)
        self._reset()

    def _alpha_sigma_lambda(self, timestep: int) -> tuple[float, float, float]:
        """(alpha_t, sigma_t, lambda_t) in float64; t = -1 is the data itself (1, 0, +inf)."""
        if timestep < 0:
            return 1.0, 0.0, math.inf
        alpha_bar = float(self.alphas_cumprod[timestep])
        alpha, sigma = math.sqrt(alpha_bar), math.sqrt(1 - alpha_bar)
        return alpha, sigma, math.log(alpha / sigma)

    def step(self, model_output: Tensor, timestep: int, sample: Tensor, noise: Tensor | None = None) -> StepOutput:
        """x_s -> x_t with t the next chosen timestep; `noise` is unused (the solver is deterministic)."""
        timestep = int(timestep)
        if timestep == int(self.timesteps[0]):
            self._reset()  # a new sampling run
        previous = self.previous_timestep(timestep)
        # 1. D_s, the x_0 estimate at x_s (clipped to the data range when clip_sample).
        original, _ = self.predict_original_and_noise(model_output, timestep, sample)
        if previous < 0:  # 4. the last step: lambda = +inf, x_0 = D_s
            self._reset()
            return StepOutput(prev_sample=original, pred_original_sample=original)
        _, sigma_s, lambda_s = self._alpha_sigma_lambda(timestep)
        alpha_t, sigma_t, lambda_t = self._alpha_sigma_lambda(previous)
        h = lambda_t - lambda_s
        # 2. first order on the first step, then the second-order combination of the last two estimates.
        estimate = original
        if self.previous_original is not None:
            half_inverse_ratio = 0.5 * h / self.previous_h  # 1 / (2 r), r = h_prev / h
            estimate = (1 + half_inverse_ratio) * original - half_inverse_ratio * self.previous_original
        # 3. the exponential-integrator update (Algorithm 2; expm1 keeps small h exact).
        prev_sample = (sigma_t / sigma_s) * sample - (alpha_t * math.expm1(-h)) * estimate
        self.previous_original, self.previous_h = original, h
        return StepOutput(prev_sample=prev_sample, pred_original_sample=original)

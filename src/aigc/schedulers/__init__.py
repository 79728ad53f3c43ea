"""Diffusion schedulers, one per file (STYLE.md #5): networks never know how they are sampled.

Each scheduler has the same three methods, in the shape of diffusers' schedulers:

    scheduler.add_noise(clean, noise, timesteps)    # the forward process q(x_t | x_0), for training
    scheduler.set_timesteps(n)                       # choose n of the training timesteps for sampling
    scheduler.step(model_output, t, sample, noise)   # one reverse step x_t -> x_{t-1}; a StepOutput

and the sampling loop that uses them is a few written-out lines in `models/image/diffusion.py`. They are
registered by name in the one registry: `SCHEDULERS.get("ddim")` is the class.
"""

from aigc.registry import SCHEDULERS
from aigc.schedulers.common import NoiseSchedule, StepOutput
from aigc.schedulers.ddim import DDIMScheduler
from aigc.schedulers.ddpm import DDPMScheduler
from aigc.schedulers.dpm_solver import DPMSolverMultistepScheduler

SCHEDULERS.register("ddpm", DDPMScheduler)
SCHEDULERS.register("ddim", DDIMScheduler)
SCHEDULERS.register("dpmpp-2m", DPMSolverMultistepScheduler)

__all__ = ["DDIMScheduler", "DDPMScheduler", "DPMSolverMultistepScheduler", "NoiseSchedule", "SCHEDULERS", "StepOutput"]

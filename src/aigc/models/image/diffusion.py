"""The diffusion family: a U-Net trained to denoise, sampled by a scheduler (DDPM or DDIM).

    ddpm           Ho et al. 2020, https://arxiv.org/abs/2006.11239: epsilon prediction, L_simple (eq. 14);
                   unconditional, or class-conditional with `conditioning = "class"`
    t2i-diffusion  the same network conditioned on a frozen prompt encoder's embedding of a caption

Options: `prediction` "epsilon" or "v" (Salimans & Ho 2022), `beta_schedule` linear or cosine, and
classifier-free guidance (Ho & Salimans 2022, https://arxiv.org/abs/2207.12598): training drops the
condition with probability `condition_dropout`, sampling mixes the two predictions,
    output = uncond + guidance * (cond - uncond)
so guidance 1 is the plain conditional model and larger values follow the condition more closely.
EMA weights (train.ema_decay) are what `aigc.load` and the sample grids use.
"""

from __future__ import annotations

from typing import Iterator, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from aigc.config import BaseConfig, OptimConfig, build_optimizer
from aigc.errors import AigcError
from aigc.generation.outputs import ImageBatch
from aigc.generation.progress import report_progress
from aigc.generation.requests import DiffusionImageRequest, TextToImageRequest
from aigc.models.image.unet import UNet
from aigc.models.conditioning import ConditionEmbedding, batch_condition, check_conditioning, condition_classes, preview_request, resolve_condition
from aigc.models.sampling import as_request, eval_mode, image_batch, module_device, request_noise, to_uint8_images
from aigc.registry import register_variant
from aigc.schedulers import SCHEDULERS

# ---------------------------------------------------------------------------------------------- config


class DiffusionConfig(BaseConfig):
    image_size: int = Field(28, ge=4)  # height = width of images
    channels: Literal[1, 3] = 1  # 1 grayscale, 3 RGB
    base_channels: int = Field(32, ge=8)  # U-Net channels at full resolution (a multiple of 8: GroupNorm)
    channel_multipliers: tuple[int, ...] = (1, 2, 2)  # channels per level = base x multiplier; one downsample between levels
    blocks_per_level: int = Field(1, ge=1)  # residual blocks per level on the way down (one more on the way up)
    attention_resolutions: tuple[int, ...] = (7,)  # feature-map sides that get self-attention
    heads: int = Field(4, ge=1)  # attention heads
    dropout: float = Field(0.0, ge=0, lt=1)  # inside residual blocks
    num_train_timesteps: int = Field(1000, ge=2)  # T, the length of the forward (noising) process
    beta_schedule: Literal["linear", "cosine"] = "linear"  # Ho et al. 2020 / Nichol & Dhariwal 2021
    prediction: Literal["epsilon", "v"] = "epsilon"  # what the network outputs (and learns)
    conditioning: Literal["none", "class"] = "none"  # what guides generation (prompts: the t2i-diffusion family)
    num_classes: int | None = Field(None, ge=2)  # conditioning = "class": filled in from the dataset
    prompt_encoder: str = "use-multilingual"  # conditioning = "text": a frozen encoder (`aigc.prompts`)
    text_embedding_dim: int | None = Field(None, ge=1)  # conditioning = "text": filled in from the captioned dataset
    class_prompts: list[str] | None = None  # captioned classes: the prompt that `labels` stand for, from the dataset
    condition_dropout: float = Field(0.1, ge=0, lt=1)  # classifier-free guidance: share of training steps without the condition
    # Default sampler and steps for generate(): DPM-Solver++(2M) in 15 steps, chosen in benchmarks/diffusion_speed.py
    # (t2i-diffusion-mnist: 4.7x DDIM-50's images/s, the same held-out prompt accuracy, nearer the 200-step
    # solution than DDIM 15). Runs recorded before keep theirs (ddim, 50): their config says so.
    sampler: Literal["ddpm", "ddim", "dpmpp-2m"] = "dpmpp-2m"
    sample_steps: int = Field(15, ge=1)  # default number of sampling steps (ddpm: all num_train_timesteps)
    guidance: float = Field(3.0, ge=0)  # default guidance scale for conditional models (1 = none)
    # U-Net forward in generate(): "bf16" runs it under bf16 autocast (fast on CPUs with AMX / AVX-512 BF16
    # and on GPUs; benchmarks/diffusion_speed.py measures speed and prompt accuracy); the scheduler stays fp32.
    sample_precision: Literal["fp32", "bf16"] = "fp32"

    @model_validator(mode="after")
    def _consistent(self) -> "DiffusionConfig":
        if self.base_channels % 8:
            raise ValueError(f"base_channels must be a multiple of 8 (GroupNorm groups), got {self.base_channels}")
        if any(self.base_channels * m % self.heads for m in self.channel_multipliers):
            raise ValueError(f"every level's channels must divide by heads={self.heads}")
        if self.sample_steps > self.num_train_timesteps:
            raise ValueError(f"sample_steps ({self.sample_steps}) cannot exceed num_train_timesteps ({self.num_train_timesteps})")
        return self


class TextDiffusionConfig(DiffusionConfig):
    conditioning: Literal["text"] = "text"  # a prompt, embedded by the frozen `prompt_encoder`


# --------------------------------------------------------------------------------------------- model


class Diffusion(nn.Module):
    """A denoising U-Net plus the noise schedule it was trained with; the loop steps one optimizer."""

    request_class = DiffusionImageRequest
    family_name = "ddpm"

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        check_conditioning(config)
        self.config = config
        embedding_dim = 4 * config.base_channels
        self.condition = ConditionEmbedding(config.conditioning, embedding_dim, num_classes=config.num_classes, text_dim=config.text_embedding_dim)
        self.unet = UNet(
            channels=config.channels, image_size=config.image_size, base_channels=config.base_channels,
            channel_multipliers=config.channel_multipliers, blocks_per_level=config.blocks_per_level,
            attention_resolutions=config.attention_resolutions, heads=config.heads, dropout=config.dropout,
        )

    @property
    def num_classes(self) -> int | None:
        return condition_classes(self.config, self.config.conditioning)

    def scheduler(self, sampler: str | None = None):
        config = self.config
        return SCHEDULERS.get(sampler or config.sampler)(config.num_train_timesteps, config.beta_schedule, config.prediction)

    def configure_optimizers(self, optim: OptimConfig) -> dict[str, torch.optim.Optimizer]:
        return {"model": build_optimizer(self.parameters(), optim)}

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """L_simple (Ho et al. 2020, Algorithm 1): || target - network(x_t, t, c) ||^2 at a random t."""
        config = self.config
        clean = batch["images"]  # [B, C, H, W] in [-1, 1]
        count = clean.shape[0]
        schedule = self.scheduler("ddpm")
        timesteps = torch.randint(0, config.num_train_timesteps, (count,), device=clean.device)  # 1. t ~ U{0..T-1}
        noise = torch.randn_like(clean)  # 2. eps ~ N(0, I)
        noisy = schedule.add_noise(clean, noise, timesteps.cpu())  # 3. x_t
        drop = torch.rand(count, device=clean.device) < config.condition_dropout if self.training else None
        condition = self.condition(batch_condition(config, batch), drop)  # 4. condition, dropped for CFG
        prediction = self.unet(noisy, timesteps, condition)
        return F.mse_loss(prediction, schedule.training_target(clean, noise, timesteps.cpu()))

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[tuple[str, Tensor, dict[str, Tensor]]]:
        yield "model", self.loss(batch), {}

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        with eval_mode(self):
            return {"loss": self.loss(batch)}

    def preview_request(self):
        return preview_request(self, self.config.conditioning, per_class=6)

    def predict(self, sample: Tensor, timestep: int, condition: Tensor | None, null: Tensor | None, guidance: float) -> Tensor:
        """The network's output at x_t, with classifier-free guidance when guidance != 1."""
        timesteps = torch.full((sample.shape[0],), int(timestep), device=sample.device, dtype=torch.long)
        if condition is None or guidance == 1.0:
            return self.unet(sample, timesteps, condition)
        if guidance == 0.0:
            return self.unet(sample, timesteps, null)
        both = self.unet(torch.cat([sample, sample]), torch.cat([timesteps, timesteps]), torch.cat([condition, null]))
        conditional, unconditional = both.chunk(2)
        return unconditional + guidance * (conditional - unconditional)

    @torch.no_grad()
    def generate(self, request: DiffusionImageRequest, generator: torch.Generator | None = None) -> ImageBatch:
        """Images for a request: start from per-seed noise, then the scheduler's reverse steps.
        `generator`, when given, replaces the per-image seeds as the source of all noise."""
        request = as_request(request, self.request_class)
        config = self.config
        device = module_device(self)
        sampler = request.sampler or config.sampler
        steps = request.sample_steps or (config.num_train_timesteps if sampler == "ddpm" else config.sample_steps)
        guidance = request.guidance if request.guidance is not None else config.guidance
        if steps > config.num_train_timesteps:
            raise AigcError(f"{steps} sampling steps is more than the {config.num_train_timesteps} the model was trained with", field="sample_steps", fix=f"use 1..{config.num_train_timesteps}")
        shape = (config.channels, config.image_size, config.image_size)
        raw_condition, labels, prompts = resolve_condition(self, request, device)
        noise, seeds, generators = request_noise(request, shape, generator)

        scheduler = self.scheduler(sampler)
        scheduler.set_timesteps(steps)
        with eval_mode(self):
            condition = self.condition(raw_condition) if raw_condition is not None else None
            null = self.condition.unconditional(request.count, device) if condition is not None else None
            sample = noise.to(device)
            for done, timestep in enumerate(scheduler.timesteps, 1):  # T-1 ... 0, `steps` of them
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.sample_precision == "bf16"):
                    output = self.predict(sample, int(timestep), condition, null, guidance).float()
                step_noise = torch.stack([torch.randn(shape, generator=g) for g in generators]).to(device) if sampler == "ddpm" else None
                stepped = scheduler.step(output, int(timestep), sample, step_noise)
                sample = stepped.prev_sample
                report_progress(done, len(scheduler.timesteps), preview=lambda estimate=stepped.pred_original_sample: to_uint8_images(estimate).numpy())
        settings = {"sampler": sampler, "sample_steps": steps} | ({"guidance": guidance} if config.conditioning != "none" else {})
        return image_batch(self, sample, request, seeds, labels, prompts, **settings)


register_variant(
    "ddpm", Diffusion, modality="image", config=DiffusionConfig, request_class=DiffusionImageRequest,
    description="Denoising diffusion (DDPM/DDIM sampling), unconditional or class-conditional with guidance (Ho et al. 2020)",
)
register_variant(
    "t2i-diffusion", Diffusion, modality="image", config=TextDiffusionConfig, request_class=TextToImageRequest,
    description="Text-to-image diffusion: U-Net conditioned on a frozen multilingual prompt encoder, classifier-free guidance",
)

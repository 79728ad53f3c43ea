"""The VAE family: convolutional variational autoencoders, beta-VAE and the conditional VAE.

    vae    Kingma & Welling 2013, https://arxiv.org/abs/1312.6114      q(z|x) Gaussian, p(z) = N(0, I)
    cvae   Sohn et al. 2015, https://papers.nips.cc/paper/5775        q(z|x, c), p(x|z, c); c a class or a prompt
    beta   Higgins et al. 2017 (beta-VAE)                             `beta` weighs the KL term (1 = the ELBO)

The evidence lower bound, per image, in nats (every term is a sum over pixels or latent dimensions):

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z))  <=  log p(x)
    reconstruction = -E_q[log p(x|z)] >= 0 (one sample of z),  kl >= 0 (closed form, Kingma & Welling, Appendix B)
    loss = reconstruction + beta * kl ;  logged: reconstruction, kl, elbo (= -(reconstruction + kl), <= 0)
    bits per dimension = (reconstruction + kl) / (pixels * ln 2)

Decoders:
  "gaussian"   discretized Gaussian on the 256 grey levels, a learned scale per channel (the decoder of
               Ho et al. 2020, §3.3, and of PixelCNN++): a proper likelihood of 8-bit images, so nats and
               bits/dim are comparable with other likelihood models on the same data.
  "bernoulli"  for binary images: pixels are binarized at the middle grey (x > 0), then Bernoulli logits.
               Its nats measure the binarized images, not the 8-bit ones.
"""

from __future__ import annotations

import math
from typing import Iterator, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from aigc.config import BaseConfig, OptimConfig, build_optimizer
from aigc.errors import AigcError
from aigc.generation.outputs import ImageBatch
from aigc.generation.requests import LatentImageRequest, PromptImageRequest
from aigc.models.conditioning import ConditionEmbedding, batch_condition, check_conditioning, condition_classes, preview_request, resolve_condition
from aigc.models.layers import decoder_plan, gaussian_kl, upsampling_plan
from aigc.models.sampling import as_request, eval_mode, image_batch, module_device, request_noise, to_uint8_images
from aigc.registry import register_variant

# ---------------------------------------------------------------------------------------------- config


class VAEConfig(BaseConfig):
    image_size: int = Field(28, ge=8)  # height = width of images
    channels: Literal[1, 3] = 1  # 1 grayscale, 3 RGB
    latent_dim: int = Field(16, ge=1)  # length of z
    width: int = Field(32, ge=4)  # channels of the first conv layer; doubled at each stride-2 step
    hidden_dim: int = Field(256, ge=8)  # fully connected layer between the conv features and z
    decoder: Literal["gaussian", "bernoulli"] = "gaussian"  # the likelihood p(x|z), see the module docstring
    beta: float = Field(1.0, ge=0)  # weight of the KL term; 1 = the ELBO, > 1 = beta-VAE
    conditioning: Literal["none"] = "none"  # the plain VAE is unconditional (the cvae family takes classes or prompts)
    num_classes: int | None = Field(None, ge=2)  # conditioning = "class": filled in from the dataset
    condition_dim: int = Field(64, ge=1)  # size of the class / prompt vector fed to encoder and decoder
    prompt_encoder: str = "use-multilingual"  # conditioning = "text": a frozen encoder (`aigc.prompts`)
    text_embedding_dim: int | None = Field(None, ge=1)  # conditioning = "text": filled in from the captioned dataset
    class_prompts: list[str] | None = None  # captioned classes: the prompt that `labels` stand for, from the dataset


class CVAEConfig(VAEConfig):
    conditioning: Literal["class", "text"] = "class"  # what p(x|z, c) and q(z|x, c) are told: a label or a prompt


# -------------------------------------------------------------------------------------- likelihoods


def bernoulli_log_likelihood(logits: Tensor, targets: Tensor) -> Tensor:
    """log p(x | logits) per sample [B] for binary targets in {0, 1}: -BCE summed over pixels."""
    return -F.binary_cross_entropy_with_logits(logits, targets, reduction="none").flatten(1).sum(dim=1)


def _standard_normal_cdf(x: Tensor) -> Tensor:
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def discretized_gaussian_log_likelihood(images: Tensor, means: Tensor, log_scales: Tensor) -> Tensor:
    """log p(x) per sample [B] of 8-bit images scaled to [-1, 1], under a Gaussian integrated over each
    pixel's bin of width 2/255; the end bins reach to -inf and +inf (Ho et al. 2020, §3.3, eq. 13)."""
    centred = images - means
    inverse_scale = torch.exp(-log_scales)
    upper = _standard_normal_cdf(inverse_scale * (centred + 1.0 / 255))
    lower = _standard_normal_cdf(inverse_scale * (centred - 1.0 / 255))
    log_upper = torch.log(upper.clamp(min=1e-12))  # bin [-inf, x + 1/255] for the lowest level
    log_one_minus_lower = torch.log((1.0 - lower).clamp(min=1e-12))  # bin [x - 1/255, inf] for the highest
    log_bin = torch.log((upper - lower).clamp(min=1e-12))
    log_probs = torch.where(images < -0.999, log_upper, torch.where(images > 0.999, log_one_minus_lower, log_bin))
    return log_probs.flatten(1).sum(dim=1)


# ------------------------------------------------------------------------------------------ networks


class Encoder(nn.Module):
    """x [B, C, H, W] (+ condition [B, E]) -> mean, log-variance of q(z|x) [B, latent] each."""

    def __init__(self, config: VAEConfig, condition_dim: int):
        super().__init__()
        doublings, base = upsampling_plan(config.image_size)
        layers: list[nn.Module] = []
        channels, width = config.channels, config.width
        for _ in range(doublings):
            layers += [nn.Conv2d(channels, width, 4, 2, 1), nn.SiLU()]
            channels, width = width, width * 2
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.hidden = nn.Sequential(nn.Linear(channels * base * base + condition_dim, config.hidden_dim), nn.SiLU())
        self.to_posterior = nn.Linear(config.hidden_dim, 2 * config.latent_dim)

    def forward(self, images: Tensor, condition: Tensor | None) -> tuple[Tensor, Tensor]:
        features = self.features(images)  # [B, C_last * s * s]
        if condition is not None:
            features = torch.cat([features, condition], dim=1)
        mean, log_variance = self.to_posterior(self.hidden(features)).chunk(2, dim=1)
        return mean, log_variance.clamp(-30.0, 20.0)  # keeps exp() finite in fp32


class Decoder(nn.Module):
    """z [B, latent] (+ condition) -> per-pixel parameters [B, C, H, W]: Gaussian means or Bernoulli logits."""

    def __init__(self, config: VAEConfig, condition_dim: int):
        super().__init__()
        self.doublings, self.base, self.base_channels = decoder_plan(config.image_size, config.width)
        self.project = nn.Sequential(
            nn.Linear(config.latent_dim + condition_dim, config.hidden_dim), nn.SiLU(),
            nn.Linear(config.hidden_dim, self.base_channels * self.base**2), nn.SiLU(),
        )
        layers: list[nn.Module] = []
        channels = self.base_channels
        for _ in range(self.doublings - 1):
            layers += [nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1), nn.SiLU()]
            channels //= 2
        layers += [nn.ConvTranspose2d(channels, config.channels, 4, 2, 1)]
        self.body = nn.Sequential(*layers)

    def forward(self, latents: Tensor, condition: Tensor | None) -> Tensor:
        if condition is not None:
            latents = torch.cat([latents, condition], dim=1)
        hidden = self.project(latents).view(-1, self.base_channels, self.base, self.base)  # [B, C0, s, s]
        return self.body(hidden)


# --------------------------------------------------------------------------------------------- model


class VAE(nn.Module):
    """Encoder, decoder and the ELBO; the loop steps one optimizer."""

    request_class = PromptImageRequest
    family_name = "vae"

    def __init__(self, config: VAEConfig):
        super().__init__()
        check_conditioning(config)
        self.config = config
        self.condition = ConditionEmbedding(config.conditioning, config.condition_dim, num_classes=config.num_classes, text_dim=config.text_embedding_dim)
        extra = config.condition_dim if config.conditioning != "none" else 0
        self.encoder = Encoder(config, extra)
        self.decoder = Decoder(config, extra)
        if config.decoder == "gaussian":
            self.log_scale = nn.Parameter(torch.full((config.channels, 1, 1), math.log(0.1)))  # learned sigma per channel

    @property
    def num_classes(self) -> int | None:
        return condition_classes(self.config, self.config.conditioning)

    @property
    def num_pixels(self) -> int:
        return self.config.channels * self.config.image_size**2

    def configure_optimizers(self, optim: OptimConfig) -> dict[str, torch.optim.Optimizer]:
        return {"model": build_optimizer(self.parameters(), optim)}

    def log_likelihood(self, images: Tensor, decoded: Tensor) -> Tensor:
        """log p(x|z) per sample [B], in nats."""
        if self.config.decoder == "bernoulli":
            return bernoulli_log_likelihood(decoded, (images > 0).to(decoded.dtype))
        return discretized_gaussian_log_likelihood(images, decoded, self.log_scale.expand_as(decoded))

    def elbo_terms(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Per-sample reconstruction (-log p(x|z), one z ~ q) and KL, both [B], in nats."""
        images = batch["images"]
        condition = self.condition(batch_condition(self.config, batch))
        mean, log_variance = self.encoder(images, condition)
        latents = mean + torch.randn_like(mean) * (0.5 * log_variance).exp()  # reparameterisation: z = mu + sigma * eps
        decoded = self.decoder(latents, condition)
        return {"reconstruction": -self.log_likelihood(images, decoded), "kl": gaussian_kl(mean, log_variance)}

    def _summaries(self, terms: dict[str, Tensor]) -> dict[str, Tensor]:
        negative_elbo = terms["reconstruction"] + terms["kl"]
        return {
            "reconstruction": terms["reconstruction"].mean().detach(),
            "kl": terms["kl"].mean().detach(),
            "elbo": -negative_elbo.mean().detach(),
            "bits_per_dim": (negative_elbo.mean() / (self.num_pixels * math.log(2))).detach(),
        }

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[tuple[str, Tensor, dict[str, Tensor]]]:
        terms = self.elbo_terms(batch)
        loss = (terms["reconstruction"] + self.config.beta * terms["kl"]).mean()  # = -ELBO when beta = 1
        yield "model", loss, self._summaries(terms)

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        with eval_mode(self):
            terms = self.elbo_terms(batch)
        summaries = self._summaries(terms)
        return {"loss": -summaries["elbo"], **summaries}

    @torch.no_grad()
    def negative_elbo(self, split, *, batch_size: int = 500, seed: int = 0) -> dict[str, float]:
        """Mean -ELBO over a whole data split (e.g. `bundle.test`) in nats and bits/dim, one z per image
        from a seeded generator; the number to report as the VAE's likelihood bound."""
        device = module_device(self)
        totals = {"reconstruction": 0.0, "kl": 0.0}
        with torch.random.fork_rng(), eval_mode(self):
            torch.manual_seed(seed)
            for start in range(0, len(split), batch_size):
                indices = torch.arange(start, min(start + batch_size, len(split)))
                batch = {k: v.to(device) for k, v in split.get_batch(indices).items()}
                terms = self.elbo_terms(batch)
                for key in totals:
                    totals[key] += float(terms[key].double().sum())
        count = len(split)
        nats = (totals["reconstruction"] + totals["kl"]) / count
        return {
            "negative_elbo_nats": nats,
            "bits_per_dim": nats / (self.num_pixels * math.log(2)),
            "reconstruction_nats": totals["reconstruction"] / count,
            "kl_nats": totals["kl"] / count,
            "images": count,
            "decoder": self.config.decoder,
        }

    def _images(self, decoded: Tensor) -> Tensor:
        """Decoder output -> an image in [-1, 1]: the Gaussian mean, or the Bernoulli probability."""
        if self.config.decoder == "bernoulli":
            return torch.sigmoid(decoded) * 2 - 1
        return decoded

    def preview_request(self):
        return preview_request(self, self.config.conditioning)

    @torch.no_grad()
    def generate(self, request: PromptImageRequest, generator: torch.Generator | None = None) -> ImageBatch:
        """Decode z ~ N(0, I) (per-image seeds, or a walk between two seeds with `interpolate`)."""
        request = as_request(request, PromptImageRequest)
        device = module_device(self)
        raw_condition, labels, prompts = resolve_condition(self, request, device)
        latents, seeds, _ = request_noise(request, (self.config.latent_dim,), generator)
        with eval_mode(self):
            condition = self.condition(raw_condition) if raw_condition is not None else None
            images = self._images(self.decoder(latents.to(device), condition))
        return image_batch(self, images, request, seeds, labels, prompts)

    @torch.no_grad()
    def reconstruct(self, images: np.ndarray | Tensor, labels: list[int] | None = None) -> ImageBatch:
        """Encode and decode images (uint8 NHWC or float NCHW in [-1, 1]) with the posterior mean of z.
        The result holds the originals in its first half and the reconstructions in its second."""
        device = module_device(self)
        if isinstance(images, np.ndarray):
            if images.dtype != np.uint8 or images.ndim != 4:
                raise AigcError(f"expected uint8 [N, H, W, C] images, got {images.dtype} {images.shape}", field="images")
            images = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
        expected = (self.config.channels, self.config.image_size, self.config.image_size)
        if tuple(images.shape[1:]) != expected:
            raise AigcError(f"images are {tuple(images.shape[1:])}, the model takes {expected}", field="images", fix="fit them with aigc.data.resize.fit_images first")
        batch = {"images": images.to(device)}
        if self.config.conditioning == "class":
            if labels is None:
                raise AigcError("a class-conditional VAE needs the images' labels to reconstruct them", field="labels")
            batch["labels"] = torch.tensor(labels, device=device)
        elif self.config.conditioning == "text":
            raise AigcError("reconstruction of a text-conditioned VAE needs captions; use a class or unconditional VAE", field="RUN")
        with eval_mode(self):
            condition = self.condition(batch_condition(self.config, batch))
            mean, _ = self.encoder(batch["images"], condition)
            decoded = self._images(self.decoder(mean, condition))
        both = torch.cat([batch["images"], decoded])
        count = images.shape[0]
        return ImageBatch(
            images=to_uint8_images(both).numpy(), seeds=list(range(count)) * 2,
            labels=None if labels is None else list(labels) * 2,
            model=self.family_name,
            parameters={"purpose": "reconstruction: originals (first half), reconstructions (second half)"},
        )


register_variant(
    "vae", VAE, modality="image", config=VAEConfig, request_class=LatentImageRequest,
    description="Convolutional VAE, Gaussian (discretized) or Bernoulli decoder, beta-VAE weight (Kingma & Welling 2013)",
)
register_variant(
    "cvae", VAE, modality="image", config=CVAEConfig, request_class=PromptImageRequest,
    description="Conditional VAE: class label or prompt embedding conditions encoder and decoder (Sohn et al. 2015)",
)

"""Audio VAE: a convolutional variational autoencoder on normalised log-mel spectrograms, and the plain
autoencoder as `beta = 0` (Kingma & Welling 2013, https://arxiv.org/abs/1312.6114; beta-VAE: Higgins et al. 2017).

    representation  the SpecGAN picture (models/audio/specgan.py): log-mel [n_mels, n_mels], each mel bin
                    standardised with moments from the first training batch (kept in the checkpoint),
                    clipped at +-3 standard deviations, in [-1, 1]
    networks        the image VAE's encoder and decoder (models/image/vae.py) at image_size = n_mels
    likelihood      Gaussian with one learned scale: -log p(x|z) = sum over bins of
                    ((x - mu)^2 / (2 sigma^2) + log sigma + log(2 pi) / 2), in nats per clip
    loss            reconstruction + beta * KL(q(z|x) || N(0, I)); beta = 0 trains an autoencoder, whose
                    code is the posterior mean (no sampling: nothing makes q a distribution then)
    to sound        decoder mean -> undo the standardisation -> Griffin-Lim (seeded start phase)
    measured        validation logs the log-spectral distance (dB, on mel magnitudes) of reconstructions

`generate` decodes z ~ N(0, I) per seed (with `interpolate`, a walk between two seeds' z);
`reconstruct(waveforms)` encodes and decodes real clips.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from aigc.config import BaseConfig, OptimConfig, build_optimizer
from aigc.generation.outputs import AudioClip
from aigc.generation.requests import AudioRequest
from aigc.models.audio.specgan import log_mel_to_waveforms
from aigc.models.image.vae import Decoder, Encoder, VAEConfig
from aigc.models.conditioning import resolve_condition
from aigc.models.layers import gaussian_kl
from aigc.models.sampling import eval_mode, module_device, request_noise
from aigc.registry import register_model
from aigc.signal import BinStandardizer, Spectrogram, log_spectral_distance


class AudioVAEConfig(BaseConfig):
    sample_rate: int = Field(16_000, ge=1_000)  # samples per second of the clips
    sample_length: int = Field(16_384, ge=64)  # samples per clip
    n_fft: int = Field(1024, ge=16)  # STFT frame
    hop_length: int = Field(256, ge=1)  # sample_length / hop_length frames = n_mels (the square's side)
    n_mels: int = Field(64, ge=8)  # mel bands: a power of two
    latent_dim: int = Field(32, ge=1)  # length of z
    width: int = Field(32, ge=4)  # channels of the encoder's first conv; doubled at each stride-2 step
    hidden_dim: int = Field(256, ge=8)  # fully connected layer between conv features and z
    beta: float = Field(1.0, ge=0)  # weight of the KL term: 1 = the ELBO, 0 = a plain autoencoder
    clip_std: float = Field(3.0, gt=0)  # normalised log-mel clipped at +-this many standard deviations
    griffin_lim_iterations: int = Field(32, ge=0)  # phase reconstruction at generation

    @model_validator(mode="after")
    def _square_power_of_two(self) -> "AudioVAEConfig":
        frames = self.sample_length // self.hop_length
        if self.n_mels & (self.n_mels - 1) or frames != self.n_mels:
            raise ValueError(f"the log-mel image must be square with a power-of-two side: n_mels ({self.n_mels}) = sample_length / hop_length ({self.sample_length} / {self.hop_length} = {frames})")
        return self


class AudioVAE(nn.Module):
    request_class = AudioRequest
    family_name = "audio-vae"
    num_classes = None  # unconditional

    def __init__(self, config: AudioVAEConfig):
        super().__init__()
        self.config = config
        image = VAEConfig(image_size=config.n_mels, channels=1, latent_dim=config.latent_dim, width=config.width, hidden_dim=config.hidden_dim)
        self.encoder, self.decoder = Encoder(image, 0), Decoder(image, 0)
        self.log_scale = nn.Parameter(torch.zeros(()))  # log sigma of p(x|z), shared by all bins
        self.spectrogram = Spectrogram(config.sample_rate, config.n_fft, config.hop_length, config.n_mels)
        self.standardize = BinStandardizer(config.n_mels, config.clip_std)

    def picture(self, audio: Tensor) -> Tensor:
        """[B, 1, T] clips -> normalised log-mel [B, 1, n_mels, n_mels] (the last frame dropped)."""
        return self.standardize(self.spectrogram.log_mel(audio[:, 0])[..., : self.config.n_mels]).unsqueeze(1)

    def configure_optimizers(self, optim: OptimConfig) -> dict[str, torch.optim.Optimizer]:
        return {"model": build_optimizer(self.parameters(), optim)}

    def terms(self, audio: Tensor) -> dict[str, Tensor]:
        """Per-clip reconstruction (nats), KL (nats), and the pictures, for a batch of clips."""
        pictures = self.picture(audio)
        mean, log_variance = self.encoder(pictures, None)
        if self.config.beta > 0:  # reparameterisation: z = mu + sigma * eps (Kingma & Welling, §2.4)
            latents = mean + torch.exp(0.5 * log_variance) * torch.randn_like(mean)
        else:
            latents = mean
        decoded = self.decoder(latents, None)
        variance = torch.exp(2 * self.log_scale)
        nll = ((pictures - decoded) ** 2 / (2 * variance) + self.log_scale + 0.5 * math.log(2 * math.pi)).flatten(1).sum(dim=1)
        return {"reconstruction": nll, "kl": gaussian_kl(mean, log_variance), "pictures": pictures, "decoded": decoded}

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[tuple[str, Tensor, dict[str, Tensor]]]:
        terms = self.terms(batch["audio"])
        loss = (terms["reconstruction"] + self.config.beta * terms["kl"]).mean()
        yield "model", loss, {"reconstruction": terms["reconstruction"].mean().detach(), "kl": terms["kl"].mean().detach()}

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Loss terms on held-out clips, and the log-spectral distance (dB) of their reconstructions' mel
        magnitudes (posterior mean code) to theirs."""
        with eval_mode(self):
            terms = self.terms(batch["audio"])
            original = torch.exp(self.standardize.inverse(terms["pictures"][:, 0]))
            rebuilt = torch.exp(self.standardize.inverse(self.decoder(self.encoder(terms["pictures"], None)[0], None)[:, 0]))
        return {
            "loss": (terms["reconstruction"] + self.config.beta * terms["kl"]).mean(),
            "reconstruction": terms["reconstruction"].mean(), "kl": terms["kl"].mean(),
            "log_spectral_distance_db": log_spectral_distance(original, rebuilt).mean(),
        }

    def preview_request(self) -> AudioRequest:
        return AudioRequest(count=10, seed=0)

    def _clips(self, decoded: Tensor, generators: list[torch.Generator], seeds: list[int], parameters: dict) -> AudioClip:
        log_mel = self.standardize.inverse(decoded[:, 0].float().clamp(-1, 1))
        waveforms = log_mel_to_waveforms(self.spectrogram, log_mel, self.config, generators).clamp(-1, 1)
        return AudioClip(np.ascontiguousarray(waveforms.cpu().numpy(), dtype=np.float32), self.config.sample_rate, seeds, None, self.family_name, parameters)

    @torch.no_grad()
    def generate(self, request: AudioRequest, generator: torch.Generator | None = None) -> AudioClip:
        """Clip i decodes z ~ N(0, I) drawn from seed `request.seed + i`; `interpolate=(A, B)` walks."""
        device = module_device(self)
        resolve_condition(self, request, device, "none")  # a label or guidance is an error: unconditional
        latents, seeds, generators = request_noise(request, (self.config.latent_dim,))
        with eval_mode(self):
            decoded = self.decoder(latents.to(device), None)
        parameters = {"interpolate": list(request.interpolate)} if request.interpolate is not None else {}
        return self._clips(decoded, generators, seeds, parameters)

    @torch.no_grad()
    def reconstruct(self, waveforms: np.ndarray | Tensor, seed: int = 0) -> AudioClip:
        """Encode and decode clips [N, sample_length] (posterior mean); seeds give Griffin-Lim's start phase."""
        audio = torch.as_tensor(np.asarray(waveforms, dtype=np.float32)).unsqueeze(1).to(module_device(self))
        with eval_mode(self):
            decoded = self.decoder(self.encoder(self.picture(audio), None)[0], None)
        seeds = [seed + index for index in range(len(audio))]
        return self._clips(decoded, [torch.Generator().manual_seed(s) for s in seeds], seeds, {"reconstruction": True})


register_model("audio-vae", modality="audio", config=AudioVAEConfig, description="Convolutional VAE on normalised log-mel, Griffin-Lim to sound; beta=0 is a plain autoencoder")(AudioVAE)

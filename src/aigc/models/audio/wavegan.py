"""WaveGAN: a GAN on raw waveforms (Donahue, McAuley & Puckette 2019, https://arxiv.org/abs/1802.04208).

    generator      z [B, latent] -> dense -> [B, 16d, 16] -> k stride-4 transposed 1-D convs (kernel 25)
                   -> tanh waveform [B, 1, 16 * 4^k]     (k = 5 gives the paper's 16,384 samples)
    discriminator  waveform -> k stride-4 1-D convs (kernel 25, LeakyReLU 0.2), each but the last followed
                   by phase shuffle -> dense -> one critic score
    loss           WGAN-GP (Gulrajani et al. 2017): lambda 10, 5 critic updates per generator update,
                   Adam(1e-4, 0.5, 0.9) as in the paper
    options        `post_filter`: a learned FIR filter of that many taps after the generator (the paper's
                   post-processing, §3.3, 512 taps), which can remove the periodic artefacts that
                   transposed convolutions leave; `conditional`: a class label embedded and appended to z,
                   and seen by the critic by projection (Miyato & Koyama 2018)

`AudioGAN` is the training and sampling shared by WaveGAN and SpecGAN (models/audio/specgan.py): a
subclass says what the networks see (`to_model_space`) and how a sample becomes sound (`to_waveforms`).
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from aigc.config import BaseConfig, OptimConfig, build_optimizer
from aigc.generation.outputs import AudioClip
from aigc.generation.requests import AudioRequest
from aigc.models.conditioning import check_conditioning, resolve_condition
from aigc.models.layers import per_sample_gradient_penalty
from aigc.models.sampling import eval_mode, module_device, request_noise
from aigc.registry import register_model

# ---------------------------------------------------------------------------------------------- config


class WaveGANConfig(BaseConfig):
    sample_rate: int = Field(16_000, ge=1_000)  # samples per second of the clips
    sample_length: int = Field(16_384, ge=64)  # samples per clip: 16 * 4^k (1,024, 4,096, 16,384, 65,536)
    latent_dim: int = Field(100, ge=1)  # length of the noise vector z
    width: int = Field(64, ge=1)  # d: channels of the last generator layer; the first has 16d... halving (paper: 64)
    kernel_size: int = Field(25, ge=5)  # taps of every 1-D convolution, odd (paper: 25)
    phase_shuffle: int = Field(2, ge=0)  # n: the critic's feature maps shift by -n..n samples (paper: 2; 0 = off)
    post_filter: int = Field(0, ge=0)  # taps of the learned post-processing filter (paper tried 512; 0 = off)
    conditional: bool = False  # generate a requested class (needs labelled data)
    num_classes: int | None = Field(None, ge=2)  # filled in from the dataset when left empty
    label_embedding_dim: int = Field(32, ge=1)  # conditional: the label's vector appended to z
    critic_steps: int = Field(5, ge=1)  # critic updates per generator update (n_critic)
    gradient_penalty: float = Field(10.0, ge=0)  # WGAN-GP lambda

    @model_validator(mode="after")
    def _length_is_16_times_a_power_of_4(self) -> "WaveGANConfig":
        if self.stride_layers < 1 or 16 * 4**self.stride_layers != self.sample_length:
            raise ValueError(f"sample_length must be 16 * 4^k (1024, 4096, 16384 or 65536), got {self.sample_length}")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (the paper's is 25), got {self.kernel_size}")
        return self

    @property
    def stride_layers(self) -> int:
        return round(math.log(max(self.sample_length, 1) / 16, 4))


# ------------------------------------------------------------------------------------------ networks


def phase_shuffle(features: Tensor, radius: int) -> Tensor:
    """Shift each sample's feature map [B, C, T] by its own random k in [-radius, radius], filling the edge
    by reflection (WaveGAN §3.2): the critic cannot rely on the exact phase of periodic artefacts."""
    if radius == 0:
        return features
    batch, channels, length = features.shape
    shifts = torch.randint(-radius, radius + 1, (batch,), device=features.device)
    padded = F.pad(features, (radius, radius), mode="reflect")  # [B, C, T + 2r]
    index = torch.arange(length, device=features.device)[None, :] + radius - shifts[:, None]  # [B, T]
    return padded.gather(2, index[:, None, :].expand(batch, channels, length))


class WaveGenerator(nn.Module):
    """z (+ label embedding) [B, in] -> waveform [B, 1, sample_length] in [-1, 1] (then the optional filter)."""

    def __init__(self, config: WaveGANConfig, in_features: int):
        super().__init__()
        layers = config.stride_layers
        self.base_channels = config.width * 2 ** (layers - 1)  # 16d for the paper's 5 layers
        self.project = nn.Linear(in_features, self.base_channels * 16)
        blocks: list[nn.Module] = []
        channels = self.base_channels
        padding = (config.kernel_size - 3) // 2  # with output_padding 1: (T - 1) * 4 - 2p + k + 1 = 4T
        for index in range(layers):
            out = 1 if index == layers - 1 else channels // 2
            blocks.append(nn.ConvTranspose1d(channels, out, config.kernel_size, stride=4, padding=padding, output_padding=1))
            blocks.append(nn.Tanh() if index == layers - 1 else nn.ReLU(True))
            channels = out
        self.body = nn.Sequential(*blocks)
        self.post_filter = nn.Conv1d(1, 1, config.post_filter, padding="same", bias=False) if config.post_filter else None

    def forward(self, inputs: Tensor) -> Tensor:
        hidden = F.relu(self.project(inputs)).view(-1, self.base_channels, 16)  # [B, 16d, 16]
        waveform = self.body(hidden)  # [B, 1, 16 * 4^k]
        return self.post_filter(waveform) if self.post_filter is not None else waveform


class WaveCritic(nn.Module):
    """waveform [B, 1, T] -> stride-4 convs with phase shuffle -> features [B, F]."""

    def __init__(self, config: WaveGANConfig):
        super().__init__()
        layers = config.stride_layers
        padding = (config.kernel_size - 3) // 2  # exactly T / 4: (T + 2p - k) // 4 + 1 with 2p - k = -3
        sizes = [1] + [config.width * 2**index for index in range(layers)]
        self.convs = nn.ModuleList(nn.Conv1d(a, b, config.kernel_size, stride=4, padding=padding) for a, b in zip(sizes, sizes[1:]))
        self.radius = config.phase_shuffle
        self.out_features = sizes[-1] * 16

    def forward(self, waveform: Tensor) -> Tensor:
        hidden = waveform
        for index, conv in enumerate(self.convs):
            hidden = F.leaky_relu(conv(hidden), 0.2)
            if index < len(self.convs) - 1 and self.training:  # shuffling is a training-time regulariser
                hidden = phase_shuffle(hidden, self.radius)
        return hidden.flatten(1)  # [B, 16 * 16d]


class Conditioned(nn.Module):
    """A network with the label handling of a conditional GAN around it.

    Generator side: [z, embed(label)] -> network. Critic side: score = head(phi(x)) + <embed(y), phi(x)>
    (projection discriminator, Miyato & Koyama 2018, eq. 3)."""

    def __init__(self, body: nn.Module, out_features: int | None, num_classes: int | None):
        super().__init__()
        self.body = body
        self.head = nn.Linear(out_features, 1) if out_features else None
        self.projection = nn.Embedding(num_classes, out_features) if (num_classes and out_features) else None

    def forward(self, inputs: Tensor, labels: Tensor | None = None) -> Tensor:
        features = self.body(inputs)
        scores = self.head(features).squeeze(1)  # [B]
        if self.projection is not None:
            scores = scores + (self.projection(labels) * features).sum(dim=1)
        return scores


# --------------------------------------------------------------------------------------------- model


class AudioGAN(nn.Module):
    """A generator and a critic trained with WGAN-GP; the loop steps each optimizer as its loss arrives."""

    request_class = AudioRequest
    training_only = ("discriminator.",)  # a zoo export leaves the critic out
    family_name = "wavegan"

    def __init__(self, config):
        super().__init__()
        if config.conditional:
            check_conditioning(config, "class")
        self.config = config
        self.label_embedding = nn.Embedding(config.num_classes, config.label_embedding_dim) if config.conditional else None
        self.generator, self.discriminator = self.build_networks(config.latent_dim + (config.label_embedding_dim if config.conditional else 0))
        # Label embeddings from N(0, 0.02), as the image GANs' (init_dcgan_weights). Left at PyTorch's N(0, 1),
        # the critic's projection <embed(y), phi(x)> was ~50x its head's score at the start of wavegan-digits
        # (d = 8: 2,048 features): the critic scored the label rather than the sound, and after 767 steps
        # every generated clip was heard as "six" whatever the requested digit.
        for module in self.modules():
            if isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, 0.0, 0.02)
        # Critic updates so far (a buffer: checkpoints keep the critic/generator rhythm across a resume).
        self.register_buffer("discriminator_updates", torch.zeros((), dtype=torch.long))

    # What a subclass changes -------------------------------------------------------------------------

    def build_networks(self, in_features: int) -> tuple[nn.Module, nn.Module]:
        critic = WaveCritic(self.config)
        return WaveGenerator(self.config, in_features), Conditioned(critic, critic.out_features, self.num_classes)

    def to_model_space(self, audio: Tensor) -> Tensor:
        """What the networks see for real clips [B, 1, T]: the waveform itself."""
        return audio

    def to_waveforms(self, samples: Tensor, generators: list[torch.Generator]) -> Tensor:
        """float32 [B, T] waveforms for generator outputs."""
        return samples[:, 0]

    # Shared ------------------------------------------------------------------------------------------

    @property
    def num_classes(self) -> int | None:
        return self.config.num_classes if self.config.conditional else None

    def fake(self, noise: Tensor, labels: Tensor | None) -> Tensor:
        inputs = noise if self.label_embedding is None else torch.cat([noise, self.label_embedding(labels)], dim=1)
        return self.generator(inputs)

    def configure_optimizers(self, optim: OptimConfig) -> dict[str, torch.optim.Optimizer]:
        generator_parameters = list(self.generator.parameters()) + (list(self.label_embedding.parameters()) if self.label_embedding is not None else [])
        return {"discriminator": build_optimizer(self.discriminator.parameters(), optim), "generator": build_optimizer(generator_parameters, optim)}

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[tuple[str, Tensor, dict[str, Tensor]]]:
        config = self.config
        real = self.to_model_space(batch["audio"])
        labels = batch["labels"] if config.conditional else None
        noise = torch.randn(real.shape[0], config.latent_dim, device=real.device)
        update_generator = (int(self.discriminator_updates) + 1) % config.critic_steps == 0

        # 1. Critic: maximise E[D(real)] - E[D(fake)] with the gradient penalty (fakes detached).
        with torch.set_grad_enabled(update_generator):
            fake = self.fake(noise, labels)
        real_scores, fake_scores = self.discriminator(real, labels), self.discriminator(fake.detach(), labels)
        penalty = per_sample_gradient_penalty(self.discriminator, real, fake.detach(), labels)
        loss = fake_scores.mean() - real_scores.mean() + config.gradient_penalty * penalty
        logs = {"wasserstein_estimate": (real_scores.mean() - fake_scores.mean()).detach(), "gradient_penalty": penalty.detach()}
        yield "discriminator", loss, logs
        self.discriminator_updates += 1
        if not update_generator:
            return
        # 2. Generator: through the critic that was just updated.
        yield "generator", -self.discriminator(fake, labels).mean(), {}

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The critic's Wasserstein estimate on held-out clips (it shrinks as the fakes improve)."""
        real = self.to_model_space(batch["audio"])
        labels = batch["labels"] if self.config.conditional else None
        with eval_mode(self):
            fake = self.fake(torch.randn(real.shape[0], self.config.latent_dim, device=real.device), labels)
            real_scores, fake_scores = self.discriminator(real, labels), self.discriminator(fake, labels)
        return {"wasserstein_estimate": real_scores.mean() - fake_scores.mean(), "real_score": real_scores.mean()}

    def preview_request(self) -> AudioRequest:
        """What the loop's samples hold: one clip per class (0..K-1), or ten clips, from fixed seeds."""
        return AudioRequest(count=self.num_classes or 10, seed=0)

    @torch.no_grad()
    def generate(self, request: AudioRequest, generator: torch.Generator | None = None) -> AudioClip:
        """Clips for a request; clip i uses seed `request.seed + i` alone, `interpolate=(A, B)` walks from
        seed A's noise to seed B's."""
        device = module_device(self)
        condition, labels, _ = resolve_condition(self, request, device, "class" if self.config.conditional else "none")
        noise, seeds, generators = request_noise(request, (self.config.latent_dim,))
        if generator is not None:
            noise = torch.randn(request.count, self.config.latent_dim, generator=generator)
        with eval_mode(self):
            samples = self.fake(noise.to(device), condition)
            waveforms = self.to_waveforms(samples, generators).float().clamp(-1, 1)
        parameters = {"interpolate": list(request.interpolate)} if request.interpolate is not None else {}
        return AudioClip(np.ascontiguousarray(waveforms.cpu().numpy(), dtype=np.float32), self.config.sample_rate, seeds, labels, self.family_name, parameters)


register_model("wavegan", modality="audio", config=WaveGANConfig, description="WaveGAN: 1-D transposed convolutions on raw waveforms, phase shuffle, WGAN-GP (Donahue et al. 2019); class-conditional with conditional=true")(AudioGAN)

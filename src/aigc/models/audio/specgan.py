"""SpecGAN: a DCGAN on normalised log-mel spectrograms, inverted to sound with Griffin-Lim
(Donahue, McAuley & Puckette 2019, https://arxiv.org/abs/1802.04208, §4 — the paper's spectrograms are
linear-frequency; mel bands here give the 2-D network a smaller, perceptually spaced image).

    representation  log-mel [n_mels, frames] of a clip (aigc.signal: n_fft, hop_length, n_mels), the last
                    frame dropped so that it is square (n_mels = sample_length / hop_length), each mel bin
                    standardised with its mean and standard deviation over the training clips, clipped to
                    +-3 standard deviations and divided by 3, so it lies in [-1, 1] like the tanh output
    moments         computed from the first training batch (frames x clips of real audio) and stored as
                    buffers (aigc.signal.BinStandardizer), so they travel in the checkpoint
    networks        the DCGAN generator and critic of models/image/gan.py at image_size = n_mels, one
                    channel; no normalisation in the critic (the gradient penalty is per sample)
    loss            WGAN-GP, 5 critic steps (AudioGAN in wavegan.py, as in the paper)
    to sound        undo the scaling and the log, least squares from mel to linear magnitudes, then
                    `griffin_lim_iterations` of fast Griffin-Lim with a seeded random start phase
"""

from __future__ import annotations

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from aigc.config import BaseConfig
from aigc.models.audio.wavegan import AudioGAN, Conditioned
from aigc.models.image.gan import ConvFeatures, ConvGenerator, GANConfig, init_dcgan_weights
from aigc.registry import register_model
from aigc.signal import BinStandardizer, Spectrogram


class SpecGANConfig(BaseConfig):
    sample_rate: int = Field(16_000, ge=1_000)  # samples per second of the clips
    sample_length: int = Field(16_384, ge=64)  # samples per clip
    n_fft: int = Field(1024, ge=16)  # STFT frame length (64 ms at 16 kHz)
    hop_length: int = Field(128, ge=1)  # STFT hop; sample_length / hop_length frames (the square's width)
    n_mels: int = Field(128, ge=8)  # mel bands (the square's height): a power of two
    latent_dim: int = Field(100, ge=1)  # length of the noise vector z
    width: int = Field(64, ge=1)  # channels of the critic's first layer / the generator's last hidden layer
    clip_std: float = Field(3.0, gt=0)  # normalised log-mel values are clipped to +-this many standard deviations
    griffin_lim_iterations: int = Field(32, ge=0)  # phase reconstruction at generation (more: cleaner, slower)
    conditional: bool = False  # generate a requested class (needs labelled data)
    num_classes: int | None = Field(None, ge=2)  # filled in from the dataset when left empty
    label_embedding_dim: int = Field(32, ge=1)  # conditional: the label's vector appended to z
    critic_steps: int = Field(5, ge=1)  # critic updates per generator update
    gradient_penalty: float = Field(10.0, ge=0)  # WGAN-GP lambda

    @model_validator(mode="after")
    def _square_power_of_two(self) -> "SpecGANConfig":
        frames = self.sample_length // self.hop_length
        if self.n_mels & (self.n_mels - 1) or frames != self.n_mels:
            raise ValueError(
                f"the log-mel image must be square with a power-of-two side: n_mels ({self.n_mels}) = sample_length / hop_length "
                f"({self.sample_length} / {self.hop_length} = {frames}); e.g. 16384 samples, hop 128, 128 mels"
            )
        if self.n_fft < self.hop_length:
            raise ValueError(f"n_fft ({self.n_fft}) must be at least hop_length ({self.hop_length}), or frames would skip samples")
        return self


class SpecGAN(AudioGAN):
    family_name = "specgan"

    def __init__(self, config: SpecGANConfig):
        super().__init__(config)
        self.spectrogram = Spectrogram(config.sample_rate, config.n_fft, config.hop_length, config.n_mels)
        self.apply(init_dcgan_weights)
        self.standardize = BinStandardizer(config.n_mels, config.clip_std)  # per-mel-bin moments, in the checkpoint

    def build_networks(self, in_features: int) -> tuple[nn.Module, nn.Module]:
        image = GANConfig(architecture="dcgan", image_size=self.config.n_mels, channels=1, width=self.config.width, discriminator_norm="none")
        features = ConvFeatures(image, 1)
        return ConvGenerator(image, in_features), Conditioned(features, features.out_features, self.num_classes)

    def log_mel(self, audio: Tensor) -> Tensor:
        """[B, 1, T] clips -> [B, n_mels, n_mels] log-mel (the last frame dropped: square)."""
        return self.spectrogram.log_mel(audio[:, 0])[..., : self.config.n_mels]

    def to_model_space(self, audio: Tensor) -> Tensor:
        return self.standardize(self.log_mel(audio)).unsqueeze(1)  # [B, 1, n_mels, frames] in [-1, 1]

    def to_waveforms(self, samples: Tensor, generators: list[torch.Generator]) -> Tensor:
        return log_mel_to_waveforms(self.spectrogram, self.standardize.inverse(samples[:, 0].float()), self.config, generators)


def log_mel_to_waveforms(spectrogram: Spectrogram, log_mel: Tensor, config, generators: list[torch.Generator]) -> Tensor:
    """[B, n_mels, frames - 1] log-mel -> [B, sample_length] waveforms by Griffin-Lim, each clip's start
    phase from its own generator (so clip i depends on its seed alone)."""
    log_mel = torch.cat([log_mel, log_mel[..., -1:]], dim=-1)  # the dropped last frame, repeated
    waveforms = [
        spectrogram.invert_log_mel(spec.cpu(), config.sample_length, iterations=config.griffin_lim_iterations, generator=phase)
        for spec, phase in zip(log_mel, generators)
    ]
    return torch.stack(waveforms)  # [B, T]


register_model("specgan", modality="audio", config=SpecGANConfig, description="SpecGAN: a DCGAN on normalised log-mel spectrograms, inverted with Griffin-Lim, WGAN-GP (Donahue et al. 2019)")(SpecGAN)

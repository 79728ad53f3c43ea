"""An audio classifier: the feature network behind the audio scores (IS-DigitClassifier, FD-DigitClassifier).

Audio metrics usually download a network (VGGish for FAD); this one is trained by the project on the real
spoken digits (`aigc train audio-classifier-digits`) and shipped in `aigc/metrics/weights/`, as the MNIST
classifier is for images. It is the image classifier (models/image/classifier.py) on a log-mel picture:

    clip [B, 1, T] in [-1, 1]
      -> log-mel [B, n_mels, frames] (aigc.signal; the last frame dropped so that frames = n_mels)
      -> per-mel-bin standardisation (BatchNorm without affine: running statistics of the training clips)
      -> the image classifier's conv blocks -> features [B, feature_dim] -> class logits [B, num_classes]

Training shifts each clip by up to `max_shift` samples (zero-filled), so that a word off-centre — as a
generator may place it — is still recognised. Modality "audio-classifier": it trains in the one loop and
saves like any model, but generates nothing.
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from aigc.config import BaseConfig, OptimConfig, build_optimizer
from aigc.models.image.classifier import Classifier, ClassifierConfig
from aigc.models.sampling import eval_mode
from aigc.registry import register_model
from aigc.signal import Spectrogram


class AudioClassifierConfig(BaseConfig):
    sample_rate: int = Field(16_000, ge=1_000)  # samples per second of the clips
    sample_length: int = Field(16_384, ge=64)  # samples per clip
    n_fft: int = Field(512, ge=16)  # STFT frame (32 ms at 16 kHz)
    hop_length: int = Field(256, ge=1)  # STFT hop: sample_length / hop_length frames = n_mels
    n_mels: int = Field(64, ge=4)  # mel bands: the picture is n_mels x n_mels
    num_classes: int | None = Field(None, ge=2)  # filled in from the dataset when left empty
    widths: tuple[int, ...] = (32, 64, 128)  # conv blocks, as the image classifier's
    feature_dim: int = Field(128, ge=2)  # the features Fréchet distances compare
    dropout: float = Field(0.3, ge=0, lt=1)
    max_shift: int = Field(2_000, ge=0)  # training: shift each clip by up to this many samples either way

    @model_validator(mode="after")
    def _square(self) -> "AudioClassifierConfig":
        if self.sample_length // self.hop_length != self.n_mels:
            raise ValueError(f"the log-mel picture must be square: n_mels ({self.n_mels}) = sample_length / hop_length ({self.sample_length} / {self.hop_length})")
        return self


class AudioClassifier(nn.Module):
    family_name = "audio-classifier"

    def __init__(self, config: AudioClassifierConfig):
        super().__init__()
        self.config = config  # no num_classes is refused by the image Classifier below, with the same error
        self.spectrogram = Spectrogram(config.sample_rate, config.n_fft, config.hop_length, config.n_mels)
        self.standardize = nn.BatchNorm1d(config.n_mels, affine=False)  # per mel bin, running statistics
        self.network = Classifier(ClassifierConfig(image_size=config.n_mels, channels=1, num_classes=config.num_classes, widths=config.widths, feature_dim=config.feature_dim, dropout=config.dropout))

    def picture(self, audio: Tensor) -> Tensor:
        """[B, 1, T] clips -> standardised log-mel [B, 1, n_mels, n_mels]."""
        log_mel = self.spectrogram.log_mel(audio[:, 0])[..., : self.config.n_mels]  # [B, M, M]
        return self.standardize(log_mel).unsqueeze(1)

    def features(self, audio: Tensor) -> Tensor:
        return self.network.features(self.picture(audio))  # [B, feature_dim]

    def forward(self, audio: Tensor) -> Tensor:
        return self.network.logits_from_features(self.features(audio))  # [B, K]

    def shifted(self, audio: Tensor) -> Tensor:
        """Each clip moved by a random number of samples in [-max_shift, max_shift], zeros filling in."""
        limit = self.config.max_shift
        if limit == 0:
            return audio
        shifts = torch.randint(-limit, limit + 1, (audio.shape[0],)).tolist()
        padded = F.pad(audio, (limit, limit))  # [B, 1, T + 2 limit]
        length = audio.shape[-1]
        return torch.stack([padded[i, :, limit - shift : limit - shift + length] for i, shift in enumerate(shifts)])

    def configure_optimizers(self, optim: OptimConfig) -> dict[str, torch.optim.Optimizer]:
        return {"classifier": build_optimizer(self.parameters(), optim)}

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[tuple[str, Tensor, dict[str, Tensor]]]:
        logits = self(self.shifted(batch["audio"]))
        loss = F.cross_entropy(logits, batch["labels"])
        yield "classifier", loss, {"accuracy": (logits.argmax(dim=1) == batch["labels"]).float().mean().detach()}

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        with eval_mode(self):
            logits = self(batch["audio"])
        return {"loss": F.cross_entropy(logits.float(), batch["labels"]), "accuracy": (logits.argmax(dim=1) == batch["labels"]).float().mean()}


register_model("audio-classifier", modality="audio-classifier", config=AudioClassifierConfig, description="Log-mel CNN classifier of short clips; the feature network of the audio scores (IS/FD-DigitClassifier)")(AudioClassifier)

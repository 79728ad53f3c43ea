"""Piano-roll VAE: a variational autoencoder over fixed-length four-voice piano rolls (Kingma & Welling 2013,
https://arxiv.org/abs/1312.6114; the voice-by-step categorical roll as in Coconet, Huang et al. 2017,
https://arxiv.org/abs/1903.07227), decoded to notes, a MIDI file and sound.

    representation  roll int [voices, steps] (aigc.signal.music: the MIDI pitch each voice sounds at each
                    eighth, or a rest) -> one-hot over `pitches` = the rest + MIDI low..high
    encoder         one-hot [voices * steps * pitches] -> hidden_dim -> hidden_dim -> (mean, log variance) of z
    decoder         z -> hidden_dim -> hidden_dim -> logits [voices, steps, pitches]
    loss            cross-entropy summed over voices and steps (nats per window) + beta * KL(q(z|x) || N(0, I))
    generate        z ~ N(0, I) per seed -> the most likely pitch per voice and step (temperature 0), or a
                    draw from the softmax at `temperature` > 0 with the clip's own generator -> notes
                    (runs of one pitch merged) -> rendered with fluidsynth (aigc.signal.music.render) ->
                    an AudioClip whose `scores` hold each clip's MIDI file and note-event text
    measured        validation logs the share of voice-steps reconstructed exactly (posterior mean)
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from aigc.config import BaseConfig, OptimConfig, build_optimizer
from aigc.generation.outputs import AudioClip
from aigc.generation.requests import AudioRequest
from aigc.models.conditioning import resolve_condition
from aigc.models.layers import gaussian_kl
from aigc.models.sampling import eval_mode, module_device, request_noise
from aigc.registry import register_model
from aigc.signal.music import REST, ROLL_STEP, midi_bytes, notes_to_events, render, roll_to_notes


class PianoRollVAEConfig(BaseConfig):
    voices: int = Field(4, ge=1)  # parts of the roll (a chorale: soprano, alto, tenor, bass)
    steps: int = Field(32, ge=2)  # eighths per window (32 = four 4/4 bars)
    window_hop: int = Field(8, ge=1)  # data: a training window starts every this many eighths
    low: int = Field(36, ge=0, le=127)  # lowest MIDI pitch of the roll (C2); lower notes move up octaves
    high: int = Field(81, ge=0, le=127)  # highest (A5); higher notes move down octaves
    latent_dim: int = Field(32, ge=1)
    hidden_dim: int = Field(512, ge=8)
    beta: float = Field(1.0, ge=0)  # weight of the KL term (1 = the ELBO)
    temperature: float = Field(0.0, ge=0)  # generation: 0 = the most likely pitch per voice-step
    sample_rate: int = Field(16_000, ge=1_000)  # of the rendered sound
    tempo: int = Field(96, ge=20, le=300)  # quarter notes per minute when rendered
    num_classes: int | None = None  # the data's (mode) labels; this VAE does not use them

    @model_validator(mode="after")
    def _range(self) -> "PianoRollVAEConfig":
        if self.high - self.low < 11:
            raise ValueError(f"the pitch range low..high ({self.low}..{self.high}) must span at least an octave")
        return self

    @property
    def pitches(self) -> int:
        return self.high - self.low + 2  # index 0 is the rest


class PianoRollVAE(nn.Module):
    request_class = AudioRequest
    family_name = "pianoroll-vae"

    def __init__(self, config: PianoRollVAEConfig):
        super().__init__()
        self.config = config
        size = config.voices * config.steps * config.pitches
        self.encoder = nn.Sequential(nn.Linear(size, config.hidden_dim), nn.ReLU(), nn.Linear(config.hidden_dim, config.hidden_dim), nn.ReLU(), nn.Linear(config.hidden_dim, 2 * config.latent_dim))
        self.decoder = nn.Sequential(nn.Linear(config.latent_dim, config.hidden_dim), nn.ReLU(), nn.Linear(config.hidden_dim, config.hidden_dim), nn.ReLU(), nn.Linear(config.hidden_dim, size))

    @property
    def num_classes(self) -> None:
        return None  # unconditional: a label in a request is an error

    def to_classes(self, roll: Tensor) -> Tensor:
        """MIDI pitches / REST [B, V, T] -> class indices (0 = rest, 1.. = low..high, octaves folded in)."""
        low, high = self.config.low, self.config.high
        pitch = roll.clone()
        while bool(((pitch != REST) & (pitch < low)).any()):
            pitch = torch.where((pitch != REST) & (pitch < low), pitch + 12, pitch)
        while bool((pitch > high).any()):
            pitch = torch.where(pitch > high, pitch - 12, pitch)
        return torch.where(pitch == REST, torch.zeros_like(pitch), pitch - low + 1)

    def to_roll(self, classes: Tensor) -> np.ndarray:
        return torch.where(classes == 0, torch.full_like(classes, REST), classes + self.config.low - 1).cpu().numpy()

    def encode(self, classes: Tensor) -> tuple[Tensor, Tensor]:
        one_hot = F.one_hot(classes, self.config.pitches).float().flatten(1)
        mean, log_variance = self.encoder(one_hot).chunk(2, dim=1)
        return mean, log_variance

    def logits(self, latents: Tensor) -> Tensor:
        return self.decoder(latents).view(-1, self.config.voices, self.config.steps, self.config.pitches)

    def configure_optimizers(self, optim: OptimConfig) -> dict[str, torch.optim.Optimizer]:
        return {"model": build_optimizer(self.parameters(), optim)}

    def terms(self, roll: Tensor) -> dict[str, Tensor]:
        classes = self.to_classes(roll)
        mean, log_variance = self.encode(classes)
        latents = mean + torch.exp(0.5 * log_variance) * torch.randn_like(mean)
        logits = self.logits(latents)
        reconstruction = F.cross_entropy(logits.flatten(0, 2), classes.flatten(), reduction="none").view(len(roll), -1).sum(dim=1)
        return {"reconstruction": reconstruction, "kl": gaussian_kl(mean, log_variance), "classes": classes, "mean": mean}

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[tuple[str, Tensor, dict[str, Tensor]]]:
        terms = self.terms(batch["roll"])
        yield "model", (terms["reconstruction"] + self.config.beta * terms["kl"]).mean(), {"reconstruction": terms["reconstruction"].mean().detach(), "kl": terms["kl"].mean().detach()}

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        with eval_mode(self):
            terms = self.terms(batch["roll"])
            exact = (self.logits(terms["mean"]).argmax(dim=-1) == terms["classes"]).float().mean()
        return {"loss": (terms["reconstruction"] + self.config.beta * terms["kl"]).mean(), "reconstruction": terms["reconstruction"].mean(), "kl": terms["kl"].mean(), "exact_steps": exact}

    def preview_request(self) -> AudioRequest:
        return AudioRequest(count=4, seed=0)

    @torch.no_grad()
    def generate_rolls(self, request: AudioRequest) -> tuple[np.ndarray, list[int]]:
        """(piano rolls int [N, voices, steps], seeds) for a request."""
        device = module_device(self)
        resolve_condition(self, request, device, "none")
        latents, seeds, generators = request_noise(request, (self.config.latent_dim,))
        with eval_mode(self):
            logits = self.logits(latents.to(device)).float().cpu()
        if self.config.temperature == 0:
            classes = logits.argmax(dim=-1)
        else:
            probabilities = torch.softmax(logits / self.config.temperature, dim=-1)
            classes = torch.stack([torch.multinomial(p.flatten(0, 1), 1, generator=g).view(p.shape[:2]) for p, g in zip(probabilities, generators)])
        return self.to_roll(classes), seeds

    def generate(self, request: AudioRequest, generator: torch.Generator | None = None) -> AudioClip:
        rolls, seeds = self.generate_rolls(request)
        pieces = [roll_to_notes(roll, step=ROLL_STEP) for roll in rolls]
        rendered = [render(notes, self.config.sample_rate, tempo=self.config.tempo) for notes in pieces]
        length = max(len(waveform) for waveform, _ in rendered)
        waveforms = np.stack([np.pad(waveform, (0, length - len(waveform))) for waveform, _ in rendered]).astype(np.float32)
        parameters = {"rendered": rendered[0][1], "tempo": self.config.tempo}
        if request.interpolate is not None:
            parameters["interpolate"] = list(request.interpolate)
        scores = [(midi_bytes(notes, tempo=self.config.tempo), notes_to_events(notes)) for notes in pieces]
        return AudioClip(waveforms, self.config.sample_rate, seeds, None, self.family_name, parameters, scores=scores)


register_model("pianoroll-vae", modality="audio", config=PianoRollVAEConfig, description="VAE over four-voice piano rolls (Bach chorales), decoded to MIDI and rendered with fluidsynth")(PianoRollVAE)

"""STFT/iSTFT, the Slaney mel filterbank, log-mel and Griffin-Lim in torch (no torchaudio, no librosa).

Conventions, so that data, models and metrics agree without guessing:
- The window is the periodic Hann window (scipy's `get_window("hann", n)`, torch's `hann_window`), and
  frames are centred: the signal is reflect-padded by n_fft // 2 on both sides, so a clip of T samples has
  1 + T // hop_length frames and frame k is centred on sample k * hop_length (librosa's default).
- Spectrograms are magnitudes |X| (not power); the mel spectrogram is filterbank @ |X|, and log-mel is
  log(mel + floor) in natural log units.
- The mel scale is Slaney's (Auditory Toolbox; librosa's default, `htk=False`): linear below 1 kHz at
  3 mel per 200 Hz, logarithmic above, and each triangular filter is scaled to unit area ("slaney" norm).
Shapes: waveforms [..., T]; spectrograms [..., freq, frames].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "BinStandardizer",
    "Spectrogram",
    "frame_count",
    "griffin_lim",
    "hz_to_mel",
    "istft",
    "log_spectral_distance",
    "mel_filterbank",
    "mel_to_hz",
    "mel_to_linear",
    "spectral_convergence",
    "stft",
]

# ------------------------------------------------------------------------------------------------- STFT


def _window(n_fft: int, like: Tensor) -> Tensor:
    real = like.real.dtype if like.is_complex() else like.dtype
    return torch.hann_window(n_fft, periodic=True, dtype=real, device=like.device)


def stft(waveform: Tensor, n_fft: int, hop_length: int, *, center: bool = True) -> Tensor:
    """Complex STFT [..., n_fft // 2 + 1, frames] of waveforms [..., T] (periodic Hann window)."""
    shape = waveform.shape
    flat = waveform.reshape(-1, shape[-1])  # torch.stft takes [B, T]
    spectrum = torch.stft(flat, n_fft, hop_length, window=_window(n_fft, flat), center=center, pad_mode="reflect", return_complex=True)
    return spectrum.reshape(*shape[:-1], *spectrum.shape[-2:])


def istft(spectrum: Tensor, n_fft: int, hop_length: int, *, length: int | None = None, center: bool = True) -> Tensor:
    """Inverse of `stft` by weighted overlap-add: waveforms [..., T] (T = `length` when given)."""
    shape = spectrum.shape
    flat = spectrum.reshape(-1, *shape[-2:])
    waveform = torch.istft(flat, n_fft, hop_length, window=_window(n_fft, flat), center=center, length=length)
    return waveform.reshape(*shape[:-2], waveform.shape[-1])


def frame_count(samples: int, hop_length: int) -> int:
    """Frames of a centred STFT of `samples` samples."""
    return 1 + samples // hop_length


# ------------------------------------------------------------------------------------------- mel scale

_F_SP = 200.0 / 3  # Hz per mel on the linear part (Slaney)
_MIN_LOG_HZ = 1000.0  # where the log part starts
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP  # = 15 mel
_LOG_STEP = math.log(6.4) / 27.0  # 27 mel per factor 6.4 in frequency above 1 kHz


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (Slaney 1998, Auditory Toolbox `fft2melmx`)."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _F_SP
    logarithmic = _MIN_LOG_MEL + np.log(np.maximum(hz, 1e-10) / _MIN_LOG_HZ) / _LOG_STEP
    return np.where(hz >= _MIN_LOG_HZ, logarithmic, linear)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOG_STEP * (mel - _MIN_LOG_MEL)), _F_SP * mel)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> Tensor:
    """float32 [n_mels, n_fft // 2 + 1]: triangular filters equally spaced on the mel scale, each of unit area.

    Filter m rises from edge m to edge m+1 and falls to edge m+2, where the n_mels + 2 edges are equally
    spaced in mel between fmin and fmax; it is scaled by 2 / (edge[m+2] - edge[m]) (Hz), so that its area
    is one and wide high filters do not outweigh narrow low ones (librosa `filters.mel`, norm="slaney")."""
    fmax = sample_rate / 2 if fmax is None else fmax
    if not 0 <= fmin < fmax <= sample_rate / 2:
        raise ValueError(f"need 0 <= fmin < fmax <= sample_rate / 2, got fmin={fmin}, fmax={fmax}, sample_rate={sample_rate}")
    bin_hz = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)  # centre frequency of each FFT bin
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))  # [n_mels + 2] in Hz
    widths = np.diff(edges)  # [n_mels + 1]
    distances = edges[:, None] - bin_hz[None, :]  # [n_mels + 2, bins]
    rising = -distances[:-2] / widths[:-1, None]  # (f - lower) / (centre - lower)
    falling = distances[2:] / widths[1:, None]  # (upper - f) / (upper - centre)
    weights = np.maximum(0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # unit area
    return torch.from_numpy(weights.astype(np.float32))


def mel_to_linear(mel: Tensor, filterbank: Tensor) -> Tensor:
    """Magnitudes [..., bins, frames] whose mel spectrogram is closest to `mel` [..., n_mels, frames]:
    the least-squares solution (pseudo-inverse of the filterbank), clipped at zero since magnitudes are
    non-negative. Lossy where filters are wider than a bin; Griffin-Lim works from this."""
    inverse = torch.linalg.pinv(filterbank.to(mel))  # [bins, n_mels]
    return torch.clamp(inverse @ mel, min=0.0)


# ----------------------------------------------------------------------------------------- Griffin-Lim


def griffin_lim(
    magnitude: Tensor,
    n_fft: int,
    hop_length: int,
    *,
    iterations: int = 32,
    momentum: float = 0.99,
    length: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """A waveform [..., T] whose STFT magnitude approximates `magnitude` [..., bins, frames].

    Griffin & Lim 1984 alternate between the signals with the target magnitude and the signals that are
    the STFT of a waveform; the "fast" variant adds momentum to the phase update (Perraudin, Balazs &
    Søndergaard 2013, https://arxiv.org/abs/1306.2856, Algorithm 2; momentum 0 is the original).
    The starting phase is random from `generator` (seeded: the same seed gives the same waveform), or
    zero when no generator is given."""
    if generator is None:
        angles = torch.ones_like(magnitude, dtype=torch.complex64 if magnitude.dtype != torch.float64 else torch.complex128)
    else:
        phase = torch.rand(magnitude.shape, generator=generator, dtype=magnitude.dtype).to(magnitude.device) * (2 * math.pi)
        angles = torch.polar(torch.ones_like(magnitude), phase)
    previous = torch.zeros_like(angles)
    for _ in range(iterations):
        # 1. The waveform whose STFT is closest to magnitude x current phase (least squares = iSTFT).
        waveform = istft(magnitude * angles, n_fft, hop_length, length=length)
        # 2. Its STFT (consistent), and 3. the phase step with momentum over the last estimate.
        rebuilt = stft(waveform, n_fft, hop_length)
        angles = rebuilt - previous * (momentum / (1 + momentum))
        angles = angles / (angles.abs() + 1e-16)
        previous = rebuilt
    return istft(magnitude * angles, n_fft, hop_length, length=length)


# ------------------------------------------------------------------------------------------- distances


def spectral_convergence(reference: Tensor, estimate: Tensor) -> Tensor:
    """||S_ref - S_est||_F / ||S_ref||_F of two magnitude spectrograms [..., bins, frames], per item [...]."""
    return (reference - estimate).flatten(-2).norm(dim=-1) / reference.flatten(-2).norm(dim=-1).clamp_min(1e-12)


def log_spectral_distance(reference: Tensor, estimate: Tensor, floor: float = 1e-10) -> Tensor:
    """Log-spectral distance in dB per item [...]: the root mean square over frequency of
    10 log10(P_ref / P_est), averaged over frames (P = magnitude squared). 0 for identical spectra."""
    ratio = 10 * torch.log10((reference**2 + floor) / (estimate**2 + floor))  # [..., bins, frames]
    return ratio.pow(2).mean(dim=-2).sqrt().mean(dim=-1)


# ------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Spectrogram:
    """One set of spectrogram settings and the transforms that use them (the filterbank is built once).

    The defaults fit 1 s clips at 16 kHz: 1024-point frames (64 ms), hop 128 (8 ms), 64 mel bands."""

    sample_rate: int = 16_000
    n_fft: int = 1024
    hop_length: int = 128
    n_mels: int = 64
    fmin: float = 0.0
    fmax: float | None = None
    floor: float = 1e-5  # added before the log: silence becomes log(1e-5) = -11.5, not -inf

    def __post_init__(self) -> None:
        object.__setattr__(self, "_filterbank", mel_filterbank(self.sample_rate, self.n_fft, self.n_mels, self.fmin, self.fmax))

    @property
    def filterbank(self) -> Tensor:
        return self._filterbank  # [n_mels, bins]

    def frames(self, samples: int) -> int:
        return frame_count(samples, self.hop_length)

    def magnitude(self, waveform: Tensor) -> Tensor:
        """|STFT| [..., bins, frames]."""
        return stft(waveform, self.n_fft, self.hop_length).abs()

    def mel(self, waveform: Tensor) -> Tensor:
        """Mel spectrogram (magnitudes) [..., n_mels, frames]."""
        return self.filterbank.to(waveform) @ self.magnitude(waveform)

    def log_mel(self, waveform: Tensor) -> Tensor:
        """log(mel + floor) [..., n_mels, frames]."""
        return torch.log(self.mel(waveform) + self.floor)

    def invert_log_mel(self, log_mel: Tensor, length: int, *, iterations: int = 32, generator: torch.Generator | None = None) -> Tensor:
        """A waveform [..., length] for a log-mel spectrogram: undo the log, least-squares back to linear
        magnitudes, then Griffin-Lim for the phase."""
        magnitude = mel_to_linear(torch.clamp(torch.exp(log_mel) - self.floor, min=0.0), self.filterbank)
        return griffin_lim(magnitude, self.n_fft, self.hop_length, iterations=iterations, length=length, generator=generator)


class BinStandardizer(torch.nn.Module):
    """Per-frequency-bin standardisation of log spectrograms [B, bins, frames], with the moments kept.

    SpecGAN (Donahue et al. 2019, §4) normalises each bin by its mean and standard deviation over the
    training data, clips at +-`clip` standard deviations and divides by `clip`, so values lie in [-1, 1].
    The moments are set from the first batch seen in training mode (frames x clips of real audio) and
    are buffers: they travel in the checkpoint, and generation needs no data."""

    def __init__(self, bins: int, clip: float = 3.0):
        super().__init__()
        self.clip = clip
        self.register_buffer("mean", torch.zeros(bins))
        self.register_buffer("std", torch.ones(bins))
        self.register_buffer("ready", torch.zeros((), dtype=torch.bool))

    def forward(self, spectrogram: Tensor) -> Tensor:
        if self.training and not bool(self.ready):
            self.mean.copy_(spectrogram.mean(dim=(0, 2)))
            self.std.copy_(spectrogram.std(dim=(0, 2)).clamp_min(1e-3))  # a constant bin (silence) must not divide by 0
            self.ready.fill_(True)
        normalised = (spectrogram - self.mean[:, None]) / self.std[:, None]
        return normalised.clamp(-self.clip, self.clip) / self.clip

    def inverse(self, normalised: Tensor) -> Tensor:
        return normalised * self.clip * self.std[:, None] + self.mean[:, None]

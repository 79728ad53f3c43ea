"""Signal processing for audio, with no torchaudio: STFT/iSTFT, mel filterbank, log-mel, Griffin-Lim.

It sits below data, models and metrics (import-linter layer "signal"), so all three compute spectrograms
the same way. Everything is in `aigc.signal.spectral`; the names below are its public part.
"""

from aigc.signal.spectral import (
    BinStandardizer,
    Spectrogram,
    frame_count,
    griffin_lim,
    hz_to_mel,
    istft,
    log_spectral_distance,
    mel_filterbank,
    mel_to_hz,
    mel_to_linear,
    spectral_convergence,
    stft,
)

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

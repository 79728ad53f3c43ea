"""aigc.signal against independent references: scipy's STFT, a numpy STFT, Slaney's mel scale, and
Griffin-Lim's defining property (it makes the spectrogram of its waveform closer to the target)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from aigc.signal import (
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
from conftest import has_module


def chirp(samples: int = 4096, rate: int = 16_000, seed: int = 0) -> np.ndarray:
    """A rising tone plus a little noise: energy across the band, and a phase that matters."""
    t = np.arange(samples) / rate
    noise = np.random.default_rng(seed).normal(0, 0.01, samples)
    return (0.5 * scipy.signal.chirp(t, 200, t[-1], 4000) + noise).astype(np.float64)


def test_stft_matches_scipy_without_padding():
    x = chirp()
    n_fft, hop = 256, 64
    ours = stft(torch.from_numpy(x), n_fft, hop, center=False).numpy()
    # scipy scales by 1 / sum(window) with scaling="spectrum"; same periodic Hann, same frames.
    _, _, theirs = scipy.signal.stft(x, window="hann", nperseg=n_fft, noverlap=n_fft - hop, boundary=None, padded=False, detrend=False, scaling="spectrum")
    window_sum = scipy.signal.get_window("hann", n_fft).sum()
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours / window_sum, theirs, atol=1e-10)


def test_centred_stft_matches_a_numpy_reference():
    x = chirp(2000)
    n_fft, hop = 128, 32
    padded = np.pad(x, n_fft // 2, mode="reflect")
    frames = np.stack([padded[k * hop : k * hop + n_fft] for k in range(1 + len(x) // hop)])
    reference = np.fft.rfft(frames * scipy.signal.get_window("hann", n_fft), axis=1).T  # [bins, frames]
    ours = stft(torch.from_numpy(x), n_fft, hop).numpy()
    assert ours.shape == reference.shape == (n_fft // 2 + 1, frame_count(len(x), hop))
    np.testing.assert_allclose(ours, reference, atol=1e-9)


def test_stft_keeps_leading_dimensions_and_istft_round_trips():
    x = torch.from_numpy(np.stack([chirp(seed=0), chirp(seed=1)])).reshape(2, 1, -1).float()
    spectrum = stft(x, 512, 128)
    assert spectrum.shape[:2] == (2, 1) and spectrum.shape[2] == 257
    back = istft(spectrum, 512, 128, length=x.shape[-1])
    assert back.shape == x.shape
    torch.testing.assert_close(back, x, atol=1e-5, rtol=0)


def test_slaney_mel_scale_known_points():
    # Slaney: 200/3 Hz per mel up to 1 kHz (= 15 mel), then 27 mel per factor 6.4.
    np.testing.assert_allclose(hz_to_mel([0, 200 / 3, 500, 1000, 6400]), [0, 1, 7.5, 15, 42], atol=1e-9)
    hz = np.array([0.0, 123.0, 999.0, 1000.0, 2500.0, 7999.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(hz)), hz, rtol=1e-12, atol=1e-9)


def test_mel_filterbank_matches_an_interpolated_triangle_reference():
    rate, n_fft, n_mels = 16_000, 512, 40
    ours = mel_filterbank(rate, n_fft, n_mels, fmin=30, fmax=7600).numpy()
    # Reference, written differently: each filter is np.interp of the triangle (0, 1, 0) at its three
    # mel-spaced edges, scaled to unit area 2 / (upper - lower).
    edges = mel_to_hz(np.linspace(hz_to_mel(30), hz_to_mel(7600), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1 / rate)
    reference = np.stack([np.interp(bins, edges[m : m + 3], [0, 1, 0], left=0, right=0) * 2 / (edges[m + 2] - edges[m]) for m in range(n_mels)])
    assert ours.shape == (n_mels, n_fft // 2 + 1) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-8)
    # Unit area: a filter's sum times the bin width is ~1 once it spans several bins (the high ones).
    areas = ours.sum(axis=1) * rate / n_fft
    np.testing.assert_allclose(areas[n_mels // 2 :], 1.0, rtol=0.02)
    assert (ours >= 0).all() and (ours.sum(axis=0)[bins > 7600] == 0).all()


def test_mel_filterbank_equals_values_recorded_from_librosa():
    # librosa 0.11.0, filters.mel(sr=16000, n_fft=512, n_mels=40, fmin=30, fmax=7600): rows 0, 10, 20, 39
    # (the whole matrix agreed to 1e-9 when recorded; librosa is not a dependency).
    ours = mel_filterbank(16_000, 512, 40, fmin=30, fmax=7600).numpy()
    rows = [0, 10, 20, 39]
    np.testing.assert_allclose(ours.sum(axis=1)[rows], [0.031724244356155396, 0.03221091628074646, 0.031932007521390915, 0.032006554305553436], rtol=1e-5)
    assert ours.argmax(axis=1)[rows].tolist() == [3, 26, 56, 226]


def test_mel_filterbank_rejects_a_band_above_nyquist():
    with pytest.raises(ValueError, match="fmax"):
        mel_filterbank(16_000, 512, 40, fmax=9000)


def test_mel_filterbank_matches_librosa_when_installed():
    if not has_module("librosa"):
        pytest.skip("librosa is not installed (optional: the references above cover the formula)")
    import librosa

    ours = mel_filterbank(22_050, 2048, 128).numpy()
    np.testing.assert_allclose(ours, librosa.filters.mel(sr=22_050, n_fft=2048, n_mels=128), rtol=1e-4, atol=1e-7)


def test_log_mel_shape_floor_and_loudness():
    settings = Spectrogram(n_fft=512, hop_length=128, n_mels=32)
    x = torch.from_numpy(chirp(16_384)).float()
    log_mel = settings.log_mel(x[None])
    assert log_mel.shape == (1, 32, frame_count(16_384, 128))
    silence = settings.log_mel(torch.zeros(1, 16_384))
    torch.testing.assert_close(silence, torch.full_like(silence, np.log(settings.floor)))
    # Twice the amplitude adds log 2 wherever the signal is well above the floor.
    louder = settings.log_mel(2 * x[None])
    strong = log_mel > -3
    torch.testing.assert_close((louder - log_mel)[strong], torch.full_like(log_mel[strong], np.log(2)), atol=1e-3, rtol=0)


def test_mel_to_linear_is_a_least_squares_inverse():
    settings = Spectrogram(n_fft=256, hop_length=64, n_mels=128)  # more bands than bins: invertible
    x = torch.from_numpy(chirp(4096)).float()
    magnitude = settings.magnitude(x)
    back = mel_to_linear(settings.filterbank @ magnitude, settings.filterbank)
    assert (back >= 0).all()
    assert spectral_convergence(magnitude, back) < 0.05


def test_griffin_lim_reduces_spectral_convergence_and_is_seeded():
    n_fft, hop = 512, 128
    x = torch.from_numpy(chirp(8192)).float()
    target = stft(x, n_fft, hop).abs()

    def convergence(iterations: int) -> float:
        waveform = griffin_lim(target, n_fft, hop, iterations=iterations, length=len(x), generator=torch.Generator().manual_seed(0))
        return float(spectral_convergence(target, stft(waveform, n_fft, hop).abs()))

    start, after_8, after_64 = convergence(0), convergence(8), convergence(64)
    assert after_8 < start and after_64 < after_8
    assert after_64 < 0.25 < start  # random phase starts far off
    first = griffin_lim(target, n_fft, hop, iterations=4, generator=torch.Generator().manual_seed(3))
    again = griffin_lim(target, n_fft, hop, iterations=4, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, again, atol=0, rtol=0)


def test_log_spectral_distance_is_zero_for_equal_spectra_and_grows_with_gain():
    spectrum = torch.rand(3, 65, 20) + 0.1
    torch.testing.assert_close(log_spectral_distance(spectrum, spectrum), torch.zeros(3))
    # A uniform gain g moves every bin by 20 log10(g) dB, so LSD is exactly that.
    torch.testing.assert_close(log_spectral_distance(spectrum * 10, spectrum), torch.full((3,), 20.0), atol=1e-3, rtol=0)


def test_spectrogram_inverts_log_mel_to_a_close_waveform():
    settings = Spectrogram(n_fft=512, hop_length=128, n_mels=80)
    x = torch.from_numpy(chirp(8192)).float()
    waveform = settings.invert_log_mel(settings.log_mel(x), len(x), iterations=48, generator=torch.Generator().manual_seed(0))
    assert waveform.shape == x.shape
    assert float(spectral_convergence(settings.magnitude(x), settings.magnitude(waveform))) < 0.4

"""An inaudible-as-possible, keyed audio watermark (spread spectrum) that survives resampling, MP3 and Ogg
encoding, added noise and trimming, with a detector whose false-positive rate follows from its statistic.

Embedding (direct-sequence spread spectrum, Cox et al. 1997, https://doi.org/10.1109/83.650120; Kirovski &
Malvar 2003, "Spread-spectrum watermarking of audio signals", https://doi.org/10.1109/TSP.2003.809384):
    1. the key draws a pseudo-noise sequence of PERIOD samples at REFERENCE_RATE (16 kHz), band-limited to
       BAND (300-3400 Hz: the telephone band, which resampling to 8 kHz, MP3 and Vorbis all keep) and made
       periodic, so that any stretch of PERIOD samples holds the whole sequence, shifted
    2. the sequence is repeated over the clip and scaled by STRENGTH times the clip's own short-time loudness
       (its RMS over ENVELOPE_SECONDS): loud passages hide more, silence stays silent
    3. a clip at another sample rate gets the mark made at 16 kHz and resampled to its rate
Detection (`detect`), for a clip of any rate and length:
    1. resample to 16 kHz, whiten (divide the spectrum by its smoothed magnitude, keep BAND), and divide by the
       short-time loudness (so a loud host passage does not drown the rest), weighting down the stretches no
       louder than the background (the quietest twentieth), which hold noise but no mark
    2. fold onto one period (sum of PERIOD-sample stretches) and correlate circularly with the key's sequence
       at every shift (FFT): a trimmed clip shows its mark at another shift, so no alignment is needed
    3. z = (peak - median) / robust spread over the PERIOD shifts. On unmarked audio each shift is close to
       N(0, 1), so the chance of a z this high anywhere is at most PERIOD x P(N(0,1) >= z) (times the stretches
       tried); the mark is present when that bound is <= FALSE_POSITIVE_LIMIT (1e-6: z >= 6.3 for one
       stretch). Measured on unmarked clips and with other keys in benchmarks/safety_audio_watermark.py.
The mark is a keyed "present or not" (zero-bit) mark; it carries no payload beyond the key itself.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage, signal

REFERENCE_RATE = 16000  # Hz: the rate the sequence is defined at
PERIOD = 4096  # samples at 16 kHz (0.256 s)
BAND = (300.0, 3400.0)  # Hz
STRENGTH = 0.1  # the mark's RMS relative to the clip's short-time RMS (-20 dB)
ENVELOPE_SECONDS = 0.02
FALSE_POSITIVE_LIMIT = 1e-6  # present when the chance of the z found, on unmarked audio, is at most this
WINDOW_SECONDS = 1.0
MIN_SECONDS = 0.5  # shorter clips hold under two periods: marked all the same, but found less reliably (verify says so)
SCHEME = "aigc-audio-ss-v1"


def _seed(key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{SCHEME}|sequence|{key}".encode()).digest()[:8], "little")


def _band_mask(length: int, rate: int) -> np.ndarray:
    frequencies = np.fft.rfftfreq(length, 1.0 / rate)
    return (frequencies >= BAND[0]) & (frequencies <= BAND[1])


@lru_cache(maxsize=8)
def sequence(key: str) -> np.ndarray:
    """The key's band-limited periodic pseudo-noise sequence, float64 [PERIOD] with unit RMS."""
    chips = np.random.default_rng(_seed(key)).choice([-1.0, 1.0], PERIOD)
    spectrum = np.fft.rfft(chips) * _band_mask(PERIOD, REFERENCE_RATE)  # circular: the period repeats seamlessly
    pn = np.fft.irfft(spectrum, PERIOD)
    return pn / np.sqrt(np.mean(pn**2))


def _envelope(samples: np.ndarray, rate: int) -> np.ndarray:
    """Short-time RMS (ENVELOPE_SECONDS window), same length."""
    width = max(1, int(round(ENVELOPE_SECONDS * rate)))
    return np.sqrt(np.maximum(ndimage.uniform_filter1d(samples.astype(np.float64) ** 2, width, mode="nearest"), 0.0))


def _resample(samples: np.ndarray, source: int, target: int) -> np.ndarray:
    if source == target:
        return samples.astype(np.float64)
    divisor = math.gcd(source, target)
    return signal.resample_poly(samples.astype(np.float64), target // divisor, source // divisor)


def embed(waveform: np.ndarray, sample_rate: int, key: str, strength: float = STRENGTH) -> np.ndarray:
    """A mono float waveform [T] in [-1, 1] with the key's mark added (float32, same length, clipped to [-1, 1])."""
    samples = np.asarray(waveform, dtype=np.float64)
    reference_length = int(math.ceil(len(samples) * REFERENCE_RATE / sample_rate)) + 1
    pn = np.tile(sequence(key), reference_length // PERIOD + 1)[:reference_length]
    pattern = _resample(pn, REFERENCE_RATE, sample_rate)[: len(samples)]
    pattern = np.pad(pattern, (0, len(samples) - len(pattern)))
    marked = samples + strength * _envelope(samples, sample_rate) * pattern
    return np.clip(marked, -1.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class AudioDetection:
    present: bool  # false_positive_bound <= FALSE_POSITIVE_LIMIT
    z: float  # the correlation peak in robust standard deviations
    shift: int  # where the period starts, in 16 kHz samples (a trimmed clip moves it)
    seconds: float  # of audio examined
    false_positive_bound: float  # chance of this z or more on unmarked audio (PERIOD shifts tried)

    def explain(self) -> str:
        verdict = "present" if self.present else "not found"
        return f"audio watermark {SCHEME}: {verdict} (z = {self.z:.1f}; chance of this on unmarked audio <= {self.false_positive_bound:.1e}, present at <= {FALSE_POSITIVE_LIMIT:.0e}; {self.seconds:.2f} s read)"


def _tail(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def _score(samples: np.ndarray, key: str) -> tuple[float, int]:
    """(z, shift) of the key's sequence in 16 kHz samples: steps 1-3 of the module docstring."""
    # 1. whiten: the spectrum divided by its smoothed magnitude, inside the band only; then even out loudness
    spectrum = np.fft.rfft(samples)
    magnitude = ndimage.uniform_filter1d(np.abs(spectrum), max(3, len(spectrum) // 512), mode="nearest")
    white = np.fft.irfft(spectrum / (magnitude + 1e-12) * _band_mask(len(samples), REFERENCE_RATE), len(samples))
    envelope = _envelope(white, REFERENCE_RATE)
    floor = np.percentile(envelope, 5)  # the quietest twentieth: background noise (or silence), which holds no mark
    gain = np.sqrt(np.clip(1.0 - (floor / (envelope + 1e-12)) ** 2, 0.0, 1.0))  # the mark's share of the loudness above the floor
    white = white * gain / (envelope + 1e-3 * (envelope.max() + 1e-12))
    # 2. fold onto one period and correlate at every circular shift
    folded = np.pad(white, (0, (-len(white)) % PERIOD)).reshape(-1, PERIOD).sum(axis=0)
    correlation = np.fft.irfft(np.fft.rfft(folded) * np.conj(np.fft.rfft(sequence(key))), PERIOD)
    # 3. the peak against the spread of the other shifts
    shift = int(np.argmax(correlation))
    centre = np.median(correlation)
    spread = 1.4826 * np.median(np.abs(correlation - centre)) + 1e-12
    return float((correlation[shift] - centre) / spread), shift


def detect(waveform: np.ndarray, sample_rate: int, key: str) -> AudioDetection:
    """Whether a waveform ([T] or [T, C]; channels are averaged) carries the key's mark (module docstring).

    The whole clip is scored, and when it is longer than 2 s also each WINDOW_SECONDS stretch (half
    overlapping), since clips joined into one file (AudioClip.save) each start their sequence afresh; the
    bound counts every stretch and shift tried."""
    samples = np.asarray(waveform, dtype=np.float64)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    samples = _resample(samples, sample_rate, REFERENCE_RATE)
    seconds = len(samples) / REFERENCE_RATE
    if len(samples) < PERIOD or not np.any(samples):
        return AudioDetection(False, 0.0, 0, round(seconds, 3), 1.0)
    stretches = [samples]
    window = int(WINDOW_SECONDS * REFERENCE_RATE)
    if len(samples) > 2 * window:
        stretches += [samples[start : start + window] for start in range(0, len(samples) - window + 1, window // 2)]
    z, shift = max((_score(stretch, key) for stretch in stretches if np.any(stretch)), key=lambda found: found[0])
    bound = min(1.0, len(stretches) * PERIOD * _tail(z))
    return AudioDetection(bound <= FALSE_POSITIVE_LIMIT, round(z, 2), shift, round(seconds, 3), bound)


# ------------------------------------------------------------------------------------------ the pipeline hook


@dataclass(frozen=True)
class AudioWatermark:
    """An artifact hook for `GenerationPolicy.after`: marks every clip of an AudioClip and records the scheme
    in its parameters (so the WAV says it is marked)."""

    key: str

    def __call__(self, artifact, request=None, info=None):
        import dataclasses

        from aigc.generation.outputs import AudioClip

        if not isinstance(artifact, AudioClip):
            return artifact
        marked = np.stack([embed(clip, artifact.sample_rate, self.key) for clip in artifact.waveforms])
        return dataclasses.replace(artifact, waveforms=marked, parameters={**artifact.parameters, "watermark": SCHEME})

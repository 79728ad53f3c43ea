"""The audio watermark (aigc/safety/watermark/audio.py): about 20 dB below the sound, found after the edits
it claims to survive (resampling, MP3 and Ogg through the Debian encoders, noise, trimming), not found on
unmarked sound or with another key, and applied by default to the WAVs a trained model generates."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile
from scipy import signal

from aigc.generation.outputs import AudioClip
from aigc.safety import SafetySettings, default_policy
from aigc.safety.verify import verify
from aigc.safety.watermark.audio import SCHEME, AudioWatermark, detect, embed

KEY = "an-audio-test-key"
RATE = 16000


def _voice_like(seconds: float, seed: int) -> np.ndarray:
    """Harmonics of a wandering pitch under a syllable-rate envelope, plus a little breath noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 3.1 * t + rng.uniform(0, 6)), 0, None) ** 2
    return (0.25 * envelope * voiced + 0.005 * rng.normal(size=len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def clip():
    return _voice_like(1.5, 0)


@pytest.fixture(scope="module")
def marked(clip):
    return embed(clip, RATE, KEY)


def _codec(samples: np.ndarray, tmp_path, command: list[str], suffix: str) -> tuple[np.ndarray, int]:
    source, encoded = tmp_path / "in.wav", tmp_path / f"out{suffix}"
    soundfile.write(source, samples, RATE, subtype="PCM_16")
    subprocess.run([part.format(source=source, out=encoded) for part in command], check=True, capture_output=True)
    decoded, rate = soundfile.read(encoded, dtype="float32")
    return decoded, rate


def test_the_mark_is_20_db_down_and_found_exactly_where_made(clip, marked):
    noise = marked.astype(np.float64) - clip
    assert 19 < 10 * np.log10(np.sum(clip.astype(np.float64) ** 2) / np.sum(noise**2)) < 21
    found = detect(marked, RATE, KEY)
    assert found.present and found.z > 15 and found.false_positive_bound < 1e-20
    assert not detect(clip, RATE, KEY).present and not detect(marked, RATE, "another-key-entirely").present


@pytest.mark.parametrize("attack", ["resample_8k", "resample_22k", "noise_20db", "trim", "gain_and_clip"])
def test_the_mark_survives(marked, attack):
    rng = np.random.default_rng(1)
    attacked, rate = {
        "resample_8k": lambda: (signal.resample_poly(signal.resample_poly(marked, 1, 2), 2, 1), RATE),  # 16k -> 8k -> 16k
        "resample_22k": lambda: (signal.resample_poly(marked, 441, 320), 22050),
        "noise_20db": lambda: (marked + rng.normal(0, np.sqrt(np.mean(marked**2)) / 10, len(marked)), RATE),
        "trim": lambda: (marked[3001 : len(marked) - 2500], RATE),  # 0.19 s off the start, 0.16 s off the end
        "gain_and_clip": lambda: (np.clip(marked * 3.0, -0.5, 0.5), RATE),
    }[attack]()
    assert detect(attacked, rate, KEY).present, attack


@pytest.mark.parametrize("codec", ["mp3_64k", "ogg_q2"])
def test_the_mark_survives_lossy_encoding(marked, tmp_path, codec):
    command, suffix = {
        "mp3_64k": (["lame", "--quiet", "-b", "64", "{source}", "{out}"], ".mp3"),
        "ogg_q2": (["sox", "{source}", "-C", "2", "{out}"], ".ogg"),
    }[codec]
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} is not installed (apt-get install {'lame' if command[0] == 'lame' else 'sox'})")
    decoded, rate = _codec(marked, tmp_path, command, suffix)
    assert detect(decoded, rate, KEY).present, codec


def test_no_false_positives_on_unmarked_sound_or_other_keys(marked):
    hosts = [_voice_like(1.0, seed) for seed in range(1, 11)] + [np.random.default_rng(seed).normal(0, 0.1, RATE).astype(np.float32) for seed in range(10)]
    zs = [detect(host, RATE, f"key-{index}").z for index, host in enumerate(hosts)] + [detect(marked, RATE, f"other-{index}").z for index in range(20)]
    assert max(zs) < 5.5, max(zs)  # present needs about 6.3
    silence = detect(np.zeros(RATE, np.float32), RATE, KEY)
    short = detect(marked[:1000], RATE, KEY)
    assert not silence.present and not short.present and short.false_positive_bound == 1.0


def test_generated_wavs_are_marked_by_default_and_verify_finds_it(tmp_path):
    from helpers import train_tiny

    import aigc

    model = aigc.load(str(train_tiny("wavegan", tmp_path / "wavegan", "model.sample_length=16384").run_dir))  # 1.02 s clips
    clip = model.generate({"count": 3, "seed": 2}, policy=default_policy(SafetySettings(moderation=False)))
    assert isinstance(clip, AudioClip) and clip.parameters["watermark"] == SCHEME
    report = verify(clip.files()[0].data, "one.wav")
    assert report.kind == "audio" and report.marked and report.proven and "public key" in report.statements[1], report.statements
    joined = clip.save(tmp_path / "all.wav")  # three clips, each marked from its own start, with gaps between
    assert verify(joined.read_bytes(), "all.wav").marked
    plain = model.generate({"count": 1, "seed": 2}, policy=default_policy(SafetySettings(moderation=False, watermark=False)))
    unmarked = verify(plain.files()[0].data, "plain.wav")
    assert not unmarked.marked and not unmarked.proven and "watermark" not in plain.parameters


def test_the_hook_leaves_other_artifacts_alone():
    from aigc.generation.outputs import ImageBatch

    batch = ImageBatch(images=np.zeros((1, 8, 8, 1), np.uint8), seeds=[0], labels=None, model="m")
    assert AudioWatermark(KEY)(batch) is batch

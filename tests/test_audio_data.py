"""Audio data: the spoken digits built with espeak-ng (small recipes), the built-in tones, and user folders
of WAV/FLAC with each kind of bad input."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import soundfile
import torch

from aigc.config import DataConfig
from aigc.data import load_dataset
from aigc.data.audio import AudioDataset, fit_length, make_tones, read_audio_folder, resample
from aigc.data.prepare import prepare, read_manifest
from aigc.data.prepare import spoken_digits as sd
from aigc.errors import AigcWarning, DataError
from conftest import require


class Geometry:
    """What a model tells audio data: its sample rate and clip length."""

    def __init__(self, sample_rate=16_000, sample_length=16_384):
        self.sample_rate, self.sample_length = sample_rate, sample_length


def needs_espeak():
    require(shutil.which("espeak-ng") is not None, "espeak-ng (apt-get install espeak-ng)")


# ------------------------------------------------------------------------------------------ spoken digits


def test_mandarin_digits_are_read_as_pinyin_not_english():
    needs_espeak()
    # The plain cmn voice switches to English for Latin letters; cmn-latn-pinyin reads each as one syllable.
    assert "(en)" in sd.phonemes("cmn", "qi1")
    assert sd.phonemes(sd.MANDARIN_VOICE, "qi1") == "tS;h'i55_|"
    for word in sd.MANDARIN_PINYIN:
        said = sd.phonemes(sd.MANDARIN_VOICE, word)
        assert "(en)" not in said and any(tone in said for tone in ("55", "35", "214", "51")), (word, said)


def test_the_plan_splits_by_speaker_variant_and_is_deterministic():
    recipe = {**sd.DEFAULT_RECIPE, "english_voices": ["en-us", "en-gb"], "variants": [f"v{i}" for i in range(20)]}
    clips = sd.plan(recipe)
    assert len(clips) == 3 * 20 * 10  # two English voices and Mandarin, 20 variants, 10 digits
    by_split = {split: {clip["variant"] for clip in clips if clip["split"] == split} for split in ("train", "val", "test")}
    assert len(by_split["test"]) == 2 and len(by_split["val"]) == 2 and len(by_split["train"]) == 16
    assert not (by_split["test"] & by_split["train"]) and not (by_split["val"] & by_split["train"])
    assert clips == sd.plan(recipe)
    assert {clip["word"] for clip in clips if clip["language"] == "zh" and clip["digit"] == 7} == {"七 (qi1)"}
    assert all(25 <= clip["pitch"] <= 75 and 130 <= clip["speed"] <= 210 for clip in clips)


def test_prepare_builds_a_small_recipe_with_a_manifest_caches_it_and_the_loader_reads_it(tmp_path, monkeypatch):
    needs_espeak()
    monkeypatch.setenv("AIGC_CACHE_DIR", str(tmp_path / "cache"))
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"english_voices": ["en-us"], "variants": ["Alex", "Annie", "klatt", "m3", "f2"], "val_fraction": 0.2, "test_fraction": 0.2}))
    folder = prepare(sd.CORPUS, source=recipe, log=lambda text: None)
    manifest = read_manifest("spoken-digits")
    assert manifest["versions"]["espeak-ng"] == sd.espeak_version() and manifest["parameters"]["variants"] == ["Alex", "Annie", "klatt", "m3", "f2"]
    assert set(manifest["outputs"]) == {"clips.npy", "clips.jsonl"} and len(manifest["outputs"]["clips.npy"]["sha256"]) == 64
    clips = np.load(folder / "clips.npy")
    assert clips.dtype == np.int16 and clips.shape == (2 * 5 * 10, 16_384)
    peaks = np.abs(clips.astype(np.float32) / 32768).max(axis=1)
    np.testing.assert_allclose(peaks, 0.9, atol=2e-3)  # every clip holds a normalised word, none is silent
    # Cached: a second prepare does nothing and says so.
    said = []
    prepare(sd.CORPUS, source=recipe, log=said.append)
    assert "already prepared" in said[0]

    bundle = load_dataset(DataConfig(name="spoken-digits"), Geometry())
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (60, 20, 20)
    batch = bundle.train.get_batch(torch.arange(4))
    assert batch["audio"].shape == (4, 1, 16_384) and batch["audio"].dtype == torch.float32
    assert len(load_dataset(DataConfig(name="spoken-digits-zh"), Geometry()).train) == 30
    # Another model geometry: resampled to 8 kHz and centred in 4,096 samples.
    small = load_dataset(DataConfig(name="spoken-digits-en"), Geometry(8_000, 4_096))
    assert small.train.clips.shape == (30, 4_096) and small.train.sample_rate == 8_000
    # A changed file is caught by its hash.
    (folder / "clips.jsonl").write_text("{}\n")
    with pytest.raises(DataError, match="sha256"):
        load_dataset(DataConfig(name="spoken-digits"), Geometry())


def test_without_espeak_the_error_names_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no espeak-ng on it
    with pytest.raises(DataError, match="apt-get install espeak-ng"):
        sd.fetch(tmp_path)


def test_unprepared_spoken_digits_say_how_to_prepare(tmp_path, monkeypatch):
    monkeypatch.setenv("AIGC_CACHE_DIR", str(tmp_path))
    with pytest.raises(DataError, match="aigc data prepare spoken-digits"):
        load_dataset(DataConfig(name="spoken-digits"), Geometry())


def test_a_recipe_with_an_unknown_key_is_refused(tmp_path):
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"voices": ["en"]}))
    with pytest.raises(DataError, match="unknown keys: voices"):
        sd.build(recipe, tmp_path)


# ------------------------------------------------------------------------------------------ built-in tones


def test_tones_are_deterministic_labelled_and_at_the_model_geometry():
    bundle = load_dataset(DataConfig(name="tones", val_fraction=0.1), Geometry(16_000, 1_024))
    assert bundle.num_classes == 10 and len(bundle.train) == 900 and len(bundle.val) == 100 and len(bundle.test) == 200
    assert bundle.train.clips.shape[1] == 1_024
    again = load_dataset(DataConfig(name="tones", val_fraction=0.1), Geometry(16_000, 1_024))
    assert again.train.fingerprint == bundle.train.fingerprint
    # Class k's strongest frequency is its note 220 * 2^(k/4) Hz or a harmonic of it (within the +-2% detune).
    clips, labels = make_tones(20, 16_000, 16_384, seed=3)
    for clip, label in zip(clips, labels):
        spectrum = np.abs(np.fft.rfft(clip.astype(np.float64)))
        peak_hz = np.fft.rfftfreq(16_384, 1 / 16_000)[spectrum.argmax()]
        assert min(abs(peak_hz / (220 * 2 ** (label / 4) * h) - 1) for h in (1, 2, 3)) < 0.03


def test_audio_dataset_batches_floats_in_range_and_fingerprints_content():
    clips = torch.tensor([[0, 16_384, -32_768, 32_767]], dtype=torch.int16)
    data = AudioDataset(clips, torch.tensor([3]), 16_000)
    batch = data.get_batch(torch.tensor([0]))
    torch.testing.assert_close(batch["audio"], torch.tensor([[[0.0, 0.5, -1.0, 32_767 / 32_768]]]))
    changed = AudioDataset(clips, torch.tensor([4]), 16_000)
    assert changed.fingerprint != data.fingerprint


def test_fit_length_centres_cuts_and_pads():
    np.testing.assert_array_equal(fit_length(np.arange(6.0), 4), [1, 2, 3, 4])
    np.testing.assert_array_equal(fit_length(np.ones(2), 5), [0, 1, 1, 0, 0])
    tone = np.sin(2 * np.pi * 440 * np.arange(44_100) / 44_100).astype(np.float32)
    down = resample(tone, 44_100, 16_000)
    assert len(down) == 16_000
    assert np.abs(np.fft.rfft(down)).argmax() == 440  # 1 Hz bins: the tone stays at 440 Hz


# ------------------------------------------------------------------------------------------ user folders


def tone(seconds=0.5, rate=16_000, channels=1, amplitude=0.5):
    wave = amplitude * np.sin(2 * np.pi * 330 * np.arange(int(seconds * rate)) / rate)
    return np.repeat(wave[:, None], channels, axis=1) if channels > 1 else wave


def test_a_folder_with_every_kind_of_bad_file(tmp_path):
    for name in ("yes", "no"):
        (tmp_path / name).mkdir()
    soundfile.write(tmp_path / "yes" / "good.wav", tone(), 16_000)
    soundfile.write(tmp_path / "yes" / "cd.flac", tone(rate=44_100, channels=2), 44_100)  # stereo 44.1 kHz
    soundfile.write(tmp_path / "yes" / "long.wav", tone(seconds=2.0), 16_000)  # longer than a clip: cut
    soundfile.write(tmp_path / "no" / "quiet.wav", tone(amplitude=1e-5), 16_000)  # silent
    soundfile.write(tmp_path / "no" / "empty.wav", np.zeros((0,)), 16_000)
    (tmp_path / "no" / "broken.wav").write_bytes(b"RIFF not really a wave file")
    soundfile.write(tmp_path / "no" / "speech.wav", tone(seconds=10.0), 16_000)  # far too long
    soundfile.write(tmp_path / "no" / "ok.flac", tone(), 16_000)
    (tmp_path / "no" / "notes.txt").write_text("not audio: ignored")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clips, labels, names, skipped = read_audio_folder(tmp_path, 16_000, 16_384)
    said = " | ".join(str(warning.message) for warning in caught if issubclass(warning.category, AigcWarning))
    assert names == ["no", "yes"] and labels.tolist() == [0, 1, 1, 1] and clips.shape == (4, 16_384)
    assert "1 of the files" in said and "averaged to mono" in said and "resampled to 16000 Hz" in said and "cut" in said
    reasons = {path.rsplit("/", 1)[-1]: reason for path, reason in skipped}
    assert set(reasons) == {"quiet.wav", "empty.wav", "broken.wav", "speech.wav"}
    assert reasons["quiet.wav"].startswith("silent") and reasons["empty.wav"].startswith("empty")
    assert reasons["broken.wav"].startswith("unreadable") and reasons["speech.wav"].startswith("too long")
    # The resampled stereo file still holds its 330 Hz tone.
    cd = clips[list(labels).index(1)].astype(np.float32)
    assert abs(np.fft.rfftfreq(16_384, 1 / 16_000)[np.abs(np.fft.rfft(cd)).argmax()] - 330) < 2


def test_folders_without_usable_audio_are_errors(tmp_path):
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match="holds no audio files"):
        read_audio_folder(tmp_path, 16_000, 16_384)
    soundfile.write(tmp_path / "silence.wav", np.zeros(1_000), 16_000)
    with pytest.raises(DataError, match="none of the 1 audio files") as error:
        read_audio_folder(tmp_path, 16_000, 16_384)
    assert "silent" in str(error.value)
    (tmp_path / "class").mkdir()
    soundfile.write(tmp_path / "class" / "a.wav", tone(), 16_000)
    with pytest.raises(DataError, match="loose files"):
        read_audio_folder(tmp_path, 16_000, 16_384)


def test_audio_folder_dataset_needs_a_path_and_splits_validation(tmp_path):
    with pytest.raises(DataError, match="data.path"):
        load_dataset(DataConfig(name="audio-folder"), Geometry())
    for index in range(10):
        soundfile.write(tmp_path / f"clip{index}.wav", tone(amplitude=0.1 + index / 20), 16_000)
    bundle = load_dataset(DataConfig(name="audio-folder", path=str(tmp_path), val_fraction=0.2), Geometry())
    assert (len(bundle.train), len(bundle.val), bundle.test) == (8, 2, None)
    assert bundle.class_names == [tmp_path.name] and bundle.model_fields()["num_classes"] is None  # one class: unconditional


def test_the_cli_prepares_a_recipe_and_shows_the_splits(tmp_path):
    import os
    import subprocess
    import sys

    needs_espeak()
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"english_voices": ["en-gb"], "mandarin": False, "variants": ["Alex", "klatt", "f2"], "val_fraction": 0.3, "test_fraction": 0.3}))
    env = {**os.environ, "AIGC_CACHE_DIR": str(tmp_path / "cache")}
    run = lambda *args: subprocess.run([sys.executable, "-m", "aigc", "data", *args], capture_output=True, text=True, timeout=300, env=env)  # noqa: E731
    built = run("prepare", "spoken-digits", "--source", str(recipe))
    assert built.returncode == 0, built.stderr
    assert "clips.npy" in built.stdout and "clips 30" in built.stdout
    shown = run("show", "spoken-digits")
    assert shown.returncode == 0, shown.stderr
    assert "train: 10" in shown.stdout and "val: 10" in shown.stdout and "test: 10" in shown.stdout and "'seven'" in shown.stdout
    missing = run("show", "spoken-digits-zh")  # the recipe had no Mandarin
    assert missing.returncode == 2 and "has no training clips" in missing.stderr and "Traceback" not in missing.stderr

"""Music: notes <-> note-event text <-> piano rolls, MIDI files (read back by music21 when installed), keys,
rendering with fluidsynth (and the built-in synth without it), the music metrics, the event tokenizer, the
piano-roll VAE and `aigc render`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

import aigc
from aigc.data.music import roll_windows, toy_chorales
from aigc.data.tokenizers import tokenizer_from_json, train_tokenizer
from aigc.errors import AigcWarning, DataError
from aigc.generation.requests import AudioRequest
from aigc.metrics.music import music_scores, share_in_key
from aigc.signal import music
from aigc.signal.music import REST, Note, estimate_key, events_to_notes, midi_bytes, notes_to_events, notes_to_roll, render, roll_to_notes
from helpers import train_tiny

PIECE = [Note(67, 0.0, 1.0, 0), Note(64, 0.0, 2.0, 1), Note(48, 0.0, 4.0, 2), Note(69, 1.0, 0.5, 0), Note(71, 1.5, 0.5, 0), Note(72, 2.0, 2.0, 0), Note(65, 2.0, 2.0, 1)]
needs_fluidsynth = pytest.mark.skipif(shutil.which("fluidsynth") is None or not music.DEFAULT_SOUNDFONT.is_file(), reason="needs Debian fluidsynth and timgm6mb-soundfont (apt-get install fluidsynth timgm6mb-soundfont)")


def by_time(notes):
    return sorted((n.start, n.pitch, n.duration) for n in notes)


def test_note_events_round_trip_and_bad_tokens_are_counted():
    text = notes_to_events(PIECE)
    assert text.startswith("t0 p67 d4 p64 d8 p48 d16 t4 p69 d2")
    reading = events_to_notes(text)
    assert reading.skipped == 0 and by_time(reading.notes) == by_time(PIECE)
    broken = events_to_notes("t0 p60 d4 x7 d3 p61 p62 d2 p300 d1 t2 p64")
    assert [(n.pitch, n.start) for n in broken.notes] == [(60, 0.0), (62, 0.0)]
    assert broken.skipped == 6  # x7, d3 without a pitch, p61 without a duration, p300 and its d1, the trailing p64


def test_piano_roll_round_trip_merges_repeated_steps():
    roll = notes_to_roll(PIECE, 3, 8)
    assert roll.shape == (3, 8) and roll[0].tolist() == [67, 67, 69, 71, 72, 72, 72, 72] and roll[1, 4:].tolist() == [65] * 4
    assert by_time(roll_to_notes(roll)) == by_time(PIECE)
    assert roll_to_notes(np.full((2, 4), REST)) == []


def test_keys_major_and_harmonic_minor():
    c_major = [Note(p, i, 1.0) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60])]
    a_minor = [Note(p, i, 1.0) for i, p in enumerate([57, 59, 60, 62, 64, 65, 68, 69, 64, 60, 57, 68, 69])]
    assert estimate_key(c_major) == (0, "major") and estimate_key(a_minor) == (9, "minor")
    assert share_in_key(c_major) == 1.0 and share_in_key(a_minor) == 1.0  # G# is in harmonic minor
    assert share_in_key(c_major + [Note(61, 20, 1.0)]) == pytest.approx(11 / 12)
    shifted = music.to_common_key(music.transpose(c_major, 7), 7, "major")  # G major -> C major: up 5 (not down 7)
    assert [n.pitch for n in shifted] == [n.pitch + 12 for n in c_major]


def test_midi_file_holds_the_notes():
    data = midi_bytes(PIECE, tempo=120)
    assert data[:4] == b"MThd" and data.count(b"MTrk") == 1 + 3  # tempo track + one per voice
    music21 = pytest.importorskip("music21", reason="reads the MIDI file back with music21 (pip install music21)")
    score = music21.converter.parseData(data, format="midi")
    notes = sorted((float(n.offset), n.pitch.midi, float(n.quarterLength)) for part in score.parts for n in part.flatten().notes)
    assert notes == by_time(PIECE)


@needs_fluidsynth
def test_fluidsynth_renders_mono_trimmed_and_normalised():
    waveform, how = render([Note(69, 0.0, 2.0)], 16_000, tempo=120)  # A4 for one second
    assert "fluidsynth" in how and waveform.dtype == np.float32 and waveform.ndim == 1
    assert len(waveform) == int((1.0 + music.RELEASE_SECONDS) * 16_000)  # the release tail cut
    assert np.abs(waveform).max() == pytest.approx(music.PEAK, abs=1e-3)
    spectrum = np.abs(np.fft.rfft(waveform[:16_000]))
    peak = float(np.argmax(spectrum))  # Hz: one-second window
    assert min(abs(peak / 440 - round(peak / 440)), 1) < 0.02 and round(peak / 440) >= 1  # a harmonic of 440 Hz


def test_without_fluidsynth_the_built_in_synth_is_used_and_said(monkeypatch):
    monkeypatch.setattr(music.shutil, "which", lambda name: None)
    with pytest.warns(AigcWarning, match="apt-get install fluidsynth timgm6mb-soundfont"):
        waveform, how = render([Note(69, 0.0, 1.0)], 8_000)
    assert how.startswith("built-in synth") and np.abs(waveform).max() == pytest.approx(music.PEAK, abs=1e-3)
    spectrum = np.abs(np.fft.rfft(waveform))
    assert abs(np.argmax(spectrum) * 8_000 / len(waveform) - 440) < 5


def test_a_named_soundfont_that_does_not_exist_is_an_error(tmp_path):
    with pytest.raises(DataError, match="does not exist") as error:
        render(PIECE, soundfont=tmp_path / "none.sf2")
    assert "timgm6mb-soundfont" in error.value.fix


def test_music_scores_compare_with_the_reference():
    pieces = [record["notes"] for record in toy_chorales(20, seed=0)]
    same = music_scores(pieces, pieces)
    assert same["pitch_class_histogram_distance"] == 0 and same["generated"]["share_in_key"] > 0.95  # the key is estimated per piece
    chromatic = [[Note(60 + i, i * 0.5, 0.5) for i in range(12)]]
    other = music_scores(chromatic + [[]], pieces)
    assert other["pitch_class_histogram_distance"] > 0.3 and other["generated"]["empty"] == 1
    assert other["generated"]["note_density"] == pytest.approx(2.0) and other["generated"]["share_in_key"] < 0.7


def test_the_event_tokenizer_has_one_token_per_symbol():
    text = notes_to_events(PIECE) + "\n" + notes_to_events(PIECE[:2]) + "\n"
    tokenizer = train_tokenizer("event", text, 1000)
    ids = tokenizer.encode(text)
    assert len(ids) == len(text.split()) + 2  # symbols plus two line breaks, no space tokens
    again = tokenizer_from_json(tokenizer.to_json())
    assert again.decode(ids).split() == text.split() and again.decode(ids).count("\n") == 2
    assert again.decode(ids[:5]) + again.decode(ids[5:]) == again.decode(ids)  # decoded piece by piece as generated
    assert again.encode("t0 p67 q1")[-1] == 3  # an unknown symbol is <unk>


def test_roll_windows_skip_mostly_silent_windows():
    records = toy_chorales(10, seed=1)
    rolls, labels = roll_windows(records, 16, 8)
    assert rolls.shape[1:] == (4, 16) and set(labels.tolist()) == {0, 1}
    assert ((rolls == REST).mean(axis=(1, 2)) <= 0.25).all()
    with pytest.raises(DataError, match="model.steps"):
        roll_windows(records, 10_000, 8)


@pytest.fixture(scope="module")
def roll_run(tmp_path_factory):
    return train_tiny("pianoroll-vae", tmp_path_factory.mktemp("roll") / "run").run_dir


def test_pianoroll_vae_generates_per_seed_with_midi(roll_run, tmp_path):
    model = aigc.load(roll_run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AigcWarning)  # without fluidsynth: the built-in synth
        clip = model.generate(AudioRequest(count=3, seed=5))
        alone = model.generate(AudioRequest(count=1, seed=6))
    assert clip.waveforms.shape[0] == 3 and clip.seeds == [5, 6, 7] and clip.sample_rate == 16_000
    np.testing.assert_array_equal(clip.waveforms[1, : alone.waveforms.shape[1]], alone.waveforms[0])
    midi, events = clip.scores[1]
    assert midi == alone.scores[0][0] and midi[:4] == b"MThd" and events_to_notes(events).skipped == 0
    paths = clip.save_each(tmp_path, "piece")
    assert sorted(p.name for p in paths) == sorted([f"piece-seed{s}.wav" for s in (5, 6, 7)] + [f"piece-seed{s}.mid" for s in (5, 6, 7)])
    with pytest.raises(aigc.errors.AigcError, match="unconditional"):
        model.generate(AudioRequest(count=1, seed=0, labels=[1]))


def test_render_command_writes_wav_and_midi(tmp_path):
    source = tmp_path / "piece.txt"
    source.write_text(notes_to_events(PIECE) + "\n" + notes_to_events(PIECE) + "\n", encoding="utf-8")
    out = tmp_path / "piece.wav"
    command = [sys.executable, "-m", "aigc", "render", str(source), "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "14 notes (0 tokens skipped)" in done.stderr and out.is_file() and out.with_suffix(".mid").read_bytes()[:4] == b"MThd"
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode != 0 and "--force" in again.stderr
    source.write_text("hello world\n", encoding="utf-8")
    empty = subprocess.run(command + ["--force"], capture_output=True, text=True)
    assert empty.returncode != 0 and "holds no notes" in empty.stderr


def test_aigc_eval_scores_a_music_run(roll_run, tmp_path):
    done = subprocess.run([sys.executable, "-m", "aigc", "eval", str(roll_run), "-n", "6", "--reference-split", "test", "--out", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "pitch-class histogram distance" in done.stdout and "in key" in done.stdout
    import json

    document = json.loads((tmp_path / "eval.json").read_text())
    assert document["generated"]["pieces"] == 6 and document["reference"]["pieces"] == 40  # toy-chorales' test split
    assert 0 <= document["pitch_class_histogram_distance"] <= 1

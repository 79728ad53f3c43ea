"""Symbolic music, with no music library at run time: notes, keys, piano rolls, note-event text, Standard
MIDI files, and rendering to sound (Debian `fluidsynth` + a General MIDI soundfont, or a built-in synth).

    notes = events_to_notes("t0 p67 d4 p62 d4 t4 p69 d2")     # note-event text -> [Note, ...]
    midi = midi_bytes(notes)                                    # a Standard MIDI File (format 1)
    waveform, how = render(notes, sample_rate=16_000)          # float32 mono, trimmed, peak 0.9

It sits in the "signal" layer (numpy only): data (the chorale corpus and its datasets), the music models
and the music metrics all read and write notes the same way.

- **Time** is in quarter notes (crotchets). The event text counts in sixteenths (`EVENT_UNIT` = 0.25).
- **Note-event text** (what the music language models learn; one piece per line): for each onset time in
  order, `tN` (N sixteenths after the previous onset; `t0` for the first), then for every note starting
  there, highest first, `pP dD` (MIDI pitch P, D sixteenths long). Reading is forgiving: a token that does
  not parse, a `d` without its `p` or a pitch outside 0-127 is skipped and counted (`EventReading`).
- **Piano roll** (what the piano-roll models learn): int [voices, steps], the MIDI pitch sounding in each
  voice at each step (`ROLL_STEP` = an eighth), or `REST` (-1). Reading one back merges a voice's
  repeated steps of one pitch into one note (a roll cannot tell a held note from a repeated one).
- **Keys**: Krumhansl-Schmuckler, the Krumhansl-Kessler profiles correlated with the duration-weighted
  pitch-class histogram; the key's notes are the major scale or the harmonic minor (natural minor plus the
  raised seventh, as chorales use it).
- **Rendering**: `fluidsynth -ni -g GAIN -F out.wav -r RATE SOUNDFONT FILE.mid`, then downmixed to mono
  (fluidsynth writes stereo), the release tail cut RELEASE_SECONDS after the last note ends, and
  peak-normalised. Without fluidsynth or the default soundfont it falls back to `synth` (additive
  harmonics with an attack/decay envelope) and says so in `how` and a warning; a soundfont you name that
  does not exist is an error.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from aigc.errors import AigcWarning, DataError

EVENT_UNIT = 0.25  # quarter notes per event-text time unit (a sixteenth)
ROLL_STEP = 0.5  # quarter notes per piano-roll step (an eighth)
REST = -1
TICKS_PER_QUARTER = 480
DEFAULT_TEMPO = 96  # quarter notes per minute
DEFAULT_SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
SOUND_PACKAGES = "apt-get install fluidsynth timgm6mb-soundfont"
CHURCH_ORGAN = 19  # General MIDI program (0-based): what the chorales are rendered with
FLUIDSYNTH_GAIN = 1.0  # fluidsynth's default (0.2) is quiet; the result is peak-normalised anyway
RELEASE_SECONDS = 0.5  # of the soundfont's release tail kept after the last note ends
PEAK = 0.9


@dataclass(frozen=True)
class Note:
    pitch: int  # MIDI note number, 60 = middle C
    start: float  # quarter notes from the beginning
    duration: float  # quarter notes
    voice: int = 0  # 0 = the highest part (soprano in a chorale)

    @property
    def end(self) -> float:
        return self.start + self.duration


def transpose(notes: Iterable[Note], semitones: int) -> list[Note]:
    return [Note(n.pitch + semitones, n.start, n.duration, n.voice) for n in notes]


def length_in_quarters(notes: Sequence[Note]) -> float:
    return max((n.end for n in notes), default=0.0)


# ------------------------------------------------------------------------------------------------ keys

# Krumhansl & Kessler (1982) probe-tone profiles, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
HARMONIC_MINOR = (0, 2, 3, 5, 7, 8, 10, 11)  # natural minor plus the raised seventh
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def pitch_class_histogram(notes: Sequence[Note], *, weighted: bool = False) -> np.ndarray:
    """float [12] summing to 1 (zeros without notes): how often (or, `weighted`, how long) each pitch class sounds."""
    histogram = np.zeros(12)
    for note in notes:
        histogram[note.pitch % 12] += note.duration if weighted else 1.0
    total = histogram.sum()
    return histogram / total if total > 0 else histogram


def estimate_key(notes: Sequence[Note]) -> tuple[int, str]:
    """(tonic pitch class 0-11, "major" or "minor") by Krumhansl-Schmuckler; (0, "major") without notes or
    when all twelve pitch classes sound equally long."""
    histogram = pitch_class_histogram(notes, weighted=True)
    if np.ptp(histogram) == 0:  # no notes, or every pitch class alike: no key to find
        return 0, "major"
    best = (-2.0, 0, "major")
    for mode, profile in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
        for tonic in range(12):
            correlation = float(np.corrcoef(histogram, np.roll(profile, tonic))[0, 1])
            if correlation > best[0]:
                best = (correlation, tonic, mode)
    return best[1], best[2]


def key_name(tonic: int, mode: str) -> str:
    return f"{PITCH_NAMES[tonic % 12]} {mode}"


def key_pitch_classes(tonic: int, mode: str) -> set[int]:
    return {(tonic + step) % 12 for step in (MAJOR_SCALE if mode == "major" else HARMONIC_MINOR)}


def to_common_key(notes: Sequence[Note], tonic: int, mode: str) -> list[Note]:
    """Transposed to C major or A minor by the smallest shift (-6..+5 semitones)."""
    target = 0 if mode == "major" else 9
    shift = (target - tonic) % 12
    return transpose(notes, shift - 12 if shift > 5 else shift)


# ---------------------------------------------------------------------------------------- note-event text

_EVENT = re.compile(r"([tpd])(\d+)$")


@dataclass
class EventReading:
    notes: list[Note]
    skipped: int  # tokens that did not parse or made no sense where they stood


def notes_to_events(notes: Sequence[Note], unit: float = EVENT_UNIT) -> str:
    """Note-event text of one piece (see the module docstring); times and durations rounded to `unit`."""
    onsets: dict[int, list[Note]] = {}
    for note in notes:
        onsets.setdefault(int(round(note.start / unit)), []).append(note)
    tokens, previous = [], None
    for time in sorted(onsets):
        tokens.append(f"t{0 if previous is None else time - previous}")
        previous = time
        for note in sorted(onsets[time], key=lambda n: (-n.pitch, n.voice)):
            tokens += [f"p{note.pitch}", f"d{max(1, int(round(note.duration / unit)))}"]
    return " ".join(tokens)


def events_to_notes(text: str, unit: float = EVENT_UNIT) -> EventReading:
    """Notes of note-event text, voices numbered by their order within an onset (0 = highest)."""
    notes, skipped, time, voice, pitch = [], 0, 0, 0, None
    for token in text.split():
        match = _EVENT.match(token)
        if match is None:
            skipped += 1
            continue
        kind, value = match.group(1), int(match.group(2))
        if kind == "t":
            time, voice, pitch = time + value, 0, None
        elif kind == "p":
            if pitch is not None:
                skipped += 1  # a pitch with no duration
            pitch = value if value <= 127 else None
            skipped += value > 127
        elif pitch is None or value == 0:
            skipped += 1  # a duration with no pitch before it
        else:
            notes.append(Note(pitch, time * unit, value * unit, voice))
            voice, pitch = voice + 1, None
    return EventReading(notes, skipped + (pitch is not None))


# ---------------------------------------------------------------------------------------------- piano roll


def notes_to_roll(notes: Sequence[Note], voices: int, steps: int, *, step: float = ROLL_STEP, start: float = 0.0) -> np.ndarray:
    """int64 [voices, steps]: the pitch each voice sounds at each step from `start` (REST where silent)."""
    roll = np.full((voices, steps), REST, np.int64)
    for note in notes:
        if note.voice >= voices:
            continue
        first = max(0, int(np.ceil((note.start - start) / step - 1e-6)))
        last = min(steps, int(np.ceil((note.end - start) / step - 1e-6)))
        roll[note.voice, first:last] = note.pitch
    return roll


def roll_to_notes(roll: np.ndarray, *, step: float = ROLL_STEP) -> list[Note]:
    """Notes of a piano roll [voices, steps]: each run of one pitch in a voice is one note."""
    notes = []
    for voice, line in enumerate(np.asarray(roll)):
        begin = 0
        for index in range(1, len(line) + 1):
            if index == len(line) or line[index] != line[begin]:
                if line[begin] != REST:
                    notes.append(Note(int(line[begin]), begin * step, (index - begin) * step, voice))
                begin = index
    return sorted(notes, key=lambda n: (n.start, n.voice))


# ---------------------------------------------------------------------------------------------- MIDI files


def _variable_length(value: int) -> bytes:
    data = [value & 0x7F]
    value >>= 7
    while value:
        data.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(data))


def _track(events: list[tuple[int, bytes]]) -> bytes:
    body, now = b"", 0
    for tick, message in sorted(events, key=lambda event: (event[0], event[1][0] & 0xF0 != 0x80)):  # offs before ons
        body += _variable_length(tick - now) + message
        now = tick
    body += b"\x00\xff\x2f\x00"  # end of track
    return b"MTrk" + struct.pack(">I", len(body)) + body


def midi_bytes(notes: Sequence[Note], *, tempo: int = DEFAULT_TEMPO, program: int = CHURCH_ORGAN, velocity: int = 80) -> bytes:
    """A Standard MIDI File (format 1): a tempo track, then one track and channel per voice."""
    microseconds = int(round(60_000_000 / tempo))
    tracks = [_track([(0, b"\xff\x51\x03" + microseconds.to_bytes(3, "big")), (0, b"\xff\x58\x04\x04\x02\x18\x08")])]
    for voice in sorted({n.voice for n in notes}):
        channel = voice % 16 if voice % 16 != 9 else 10  # channel 10 (index 9) is percussion in General MIDI
        events = [(0, bytes([0xC0 | channel, program]))]
        for note in (n for n in notes if n.voice == voice):
            on, off = int(round(note.start * TICKS_PER_QUARTER)), int(round(note.end * TICKS_PER_QUARTER))
            events += [(on, bytes([0x90 | channel, note.pitch, velocity])), (max(off, on + 1), bytes([0x80 | channel, note.pitch, 0]))]
        tracks.append(_track(events))
    return b"MThd" + struct.pack(">IHHH", 6, 1, len(tracks), TICKS_PER_QUARTER) + b"".join(tracks)


# ---------------------------------------------------------------------------------------------- rendering


def synth(notes: Sequence[Note], sample_rate: int, *, tempo: int = DEFAULT_TEMPO) -> np.ndarray:
    """The built-in fallback: each note a sum of four harmonics (1, 1/2, 1/3, 1/4) under a 10 ms attack
    and an exponential decay, float32 mono, not normalised."""
    seconds_per_quarter = 60.0 / tempo
    total = int((length_in_quarters(notes) * seconds_per_quarter + RELEASE_SECONDS) * sample_rate) + 1
    out = np.zeros(total, np.float32)
    for note in notes:
        begin = int(note.start * seconds_per_quarter * sample_rate)
        length = max(1, int(note.duration * seconds_per_quarter * sample_rate))
        t = np.arange(length) / sample_rate
        frequency = 440.0 * 2 ** ((note.pitch - 69) / 12)
        tone = sum(np.sin(2 * np.pi * frequency * h * t) / h for h in range(1, 5) if frequency * h < sample_rate / 2)
        envelope = np.minimum(1.0, t / 0.01) * np.exp(-t / max(0.3, 0.6 * length / sample_rate)) * np.minimum(1.0, (length - np.arange(length)) / (0.01 * sample_rate))
        out[begin : begin + length] += (0.25 * envelope * tone).astype(np.float32)[: total - begin]
    return out


def fluidsynth_wav(midi: bytes, sample_rate: int, soundfont: Path) -> np.ndarray:
    """fluidsynth's rendering of a MIDI file, float32 [T, channels]."""
    import soundfile

    with tempfile.TemporaryDirectory(prefix="aigc-render-") as folder:
        source, target = Path(folder) / "in.mid", Path(folder) / "out.wav"
        source.write_bytes(midi)
        command = [shutil.which("fluidsynth") or "fluidsynth", "-ni", "-q", "-g", str(FLUIDSYNTH_GAIN), "-r", str(sample_rate), "-F", str(target), str(soundfont), str(source)]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if completed.returncode != 0 or not target.is_file():
            raise DataError(f"fluidsynth failed: {(completed.stderr or completed.stdout).strip()[-300:]}", field="render", fix=f"check the soundfont {soundfont}")
        waveform, rate = soundfile.read(str(target), dtype="float32", always_2d=True)
    if rate != sample_rate:
        from scipy.signal import resample_poly

        waveform = resample_poly(waveform, sample_rate, rate, axis=0).astype(np.float32)
    return waveform


def render(notes: Sequence[Note], sample_rate: int = 16_000, *, soundfont: str | Path | None = None, tempo: int = DEFAULT_TEMPO) -> tuple[np.ndarray, str]:
    """(float32 mono waveform, how it was made) for notes: fluidsynth with the soundfont (default: Debian's
    TimGM6mb), downmixed, cut RELEASE_SECONDS after the last note, peak-normalised to PEAK; or the built-in
    synth, with a warning, when fluidsynth or the default soundfont is missing."""
    named = soundfont is not None
    soundfont = Path(soundfont).expanduser() if named else DEFAULT_SOUNDFONT
    if named and not soundfont.is_file():
        raise DataError(f"the soundfont {soundfont} does not exist", field="soundfont", fix=f"give an .sf2 file, or leave it out to use {DEFAULT_SOUNDFONT} ({SOUND_PACKAGES})")
    missing = "fluidsynth is not installed" if shutil.which("fluidsynth") is None else (None if soundfont.is_file() else f"the soundfont {soundfont} is missing")
    if missing:
        warnings.warn(f"{missing}: rendered with aigc's simple built-in synth instead (for General MIDI organ sound: {SOUND_PACKAGES})", AigcWarning, stacklevel=2)
        waveform, how = synth(notes, sample_rate, tempo=tempo), f"built-in synth ({missing})"
    else:
        waveform = fluidsynth_wav(midi_bytes(notes, tempo=tempo), sample_rate, soundfont).mean(axis=1)
        how = f"fluidsynth, {soundfont.name}, program {CHURCH_ORGAN + 1} (church organ)"
    end = int((length_in_quarters(notes) * 60.0 / tempo + RELEASE_SECONDS) * sample_rate)
    waveform = waveform[: max(end, 1)]
    peak = float(np.abs(waveform).max(initial=0.0))
    return (waveform * (PEAK / peak) if peak > 0 else waveform).astype(np.float32), how

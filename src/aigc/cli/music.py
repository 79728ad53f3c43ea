"""`aigc render EVENTS.txt --out piece.wav` — note-event text (what a chorale language model writes) to a
MIDI file and sound, with Debian fluidsynth and its General MIDI soundfont (or the built-in synth)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

console = Console(stderr=True)


def render_command(
    source: Path = typer.Argument(..., help="A note-event text file (`aigc generate RUN --out x.txt` of a chorale model), or - for stdin."),
    out: Path = typer.Option(..., "--out", help="The WAV to write; the MIDI file goes beside it (same name, .mid)."),
    soundfont: Optional[Path] = typer.Option(None, "--soundfont", help="A General MIDI .sf2 (default /usr/share/sounds/sf2/TimGM6mb.sf2, Debian timgm6mb-soundfont)."),
    tempo: int = typer.Option(96, "--tempo", min=20, max=300, help="Quarter notes per minute."),
    sample_rate: int = typer.Option(16_000, "--sample-rate", min=8_000, max=96_000),
    force: bool = typer.Option(False, "--force", help="Replace files that already exist."),
) -> None:
    """Render note-event text: each line is one piece, played one after another with a bar's rest between."""
    from aigc.errors import DataError
    from aigc.files import atomic_write_bytes
    from aigc.generation.metadata import wav_bytes
    from aigc.signal.music import Note, events_to_notes, length_in_quarters, midi_bytes, render

    text = sys.stdin.read() if str(source) == "-" else _read(source)
    notes, skipped, offset = [], 0, 0.0
    for line in (line for line in text.splitlines() if line.strip()):
        reading = events_to_notes(line)
        notes += [Note(n.pitch, n.start + offset, n.duration, n.voice) for n in reading.notes]
        skipped += reading.skipped
        offset = length_in_quarters(notes) + 4.0
    if not notes:
        raise DataError(f"{source} holds no notes (expected note-event text such as `t0 p67 d4 p60 d4`)", field="SOURCE", fix="give the text a chorale model generated")
    targets = [out, out.with_suffix(".mid")]
    for target in targets:
        if target.exists() and not force:
            raise DataError(f"{target} already exists", field="--out", fix="choose another --out, or add --force")
    waveform, how = render(notes, sample_rate, soundfont=soundfont, tempo=tempo)
    atomic_write_bytes(targets[1], midi_bytes(notes, tempo=tempo))
    atomic_write_bytes(targets[0], wav_bytes(waveform, sample_rate, {"software": "aigc render", "parameters": f"tempo {tempo}, {how}"}))
    console.print(f"{len(notes)} notes ({skipped} tokens skipped), {len(waveform) / sample_rate:.1f} s, {how}")
    console.print(f"wrote {targets[0]} and {targets[1]}")


def _read(source: Path) -> str:
    from aigc.errors import DataError

    try:
        return source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read {source}: {error}", field="SOURCE", fix="give a UTF-8 note-event text file") from None

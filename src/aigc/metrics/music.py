"""Music scores on notes, against held-out pieces (Yang & Lerch 2020, "On the evaluation of generative
models in music", https://doi.org/10.1007/s00521-018-3849-7, use the same kind of statistics):

    pitch-class histogram distance  total variation (half the L1 distance, 0 = same, 1 = disjoint) between
                                    the pooled pitch-class histograms (note counts) of the generated and
                                    the reference pieces
    note density                    notes per quarter note (all voices), mean over pieces
    share in key                    of each piece's notes, the share whose pitch class is in its own
                                    estimated key (Krumhansl-Schmuckler; major scale or harmonic minor),
                                    mean over pieces
    empty                           pieces with no notes (left out of the per-piece means)

    scores = music_scores(generated_pieces, reference_pieces)     # pieces: lists of aigc.signal.music.Note

The reference is usually the test split of the chorales (`aigc.data.music.read_chorales("test")`, in C
major / A minor like the training data); the validation chorales scored against it are the ceiling
(`benchmarks/audio_scores.py --real MUSIC_RUN`). `evaluate_music_run` (also `aigc eval RUN` on a music run)
generates pieces with a piano-roll VAE or a chorale language model through the one generation path.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from aigc.signal.music import Note, estimate_key, key_pitch_classes, length_in_quarters, pitch_class_histogram

Piece = Sequence[Note]


def pooled_histogram(pieces: Sequence[Piece]) -> np.ndarray:
    return pitch_class_histogram([note for piece in pieces for note in piece])


def share_in_key(piece: Piece) -> float:
    scale = key_pitch_classes(*estimate_key(piece))
    return float(np.mean([note.pitch % 12 in scale for note in piece]))


def note_density(piece: Piece) -> float:
    return len(piece) / max(length_in_quarters(piece), 1e-9)


def music_scores(generated: Sequence[Piece], reference: Sequence[Piece]) -> dict[str, Any]:
    """The scores of `generated` pieces, and the same statistics of `reference` beside them."""
    def describe(pieces):
        kept = [piece for piece in pieces if piece]
        return {
            "pieces": len(pieces), "empty": len(pieces) - len(kept),
            "note_density": float(np.mean([note_density(p) for p in kept])) if kept else 0.0,
            "share_in_key": float(np.mean([share_in_key(p) for p in kept])) if kept else 0.0,
            "pitch_class_histogram": [round(float(v), 4) for v in pooled_histogram(kept)],
        }

    ours, theirs = describe(generated), describe(reference)
    distance = 0.5 * float(np.abs(np.array(ours["pitch_class_histogram"]) - np.array(theirs["pitch_class_histogram"])).sum())
    return {"pitch_class_histogram_distance": distance, "generated": ours, "reference": theirs}


def is_music_run(path: str | Path) -> bool:
    """Whether a run folder, checkpoint or zoo name holds a music model: a piano-roll VAE, or a language
    model trained on the chorales' note-event text (so `aigc eval` scores it here)."""
    from aigc import checkpoint as ckpt
    from aigc import zoo
    from aigc.errors import AigcError

    try:
        config = ckpt.read_sidecar(ckpt.resolve_checkpoint(zoo.resolve(path)))["config"]
    except (AigcError, KeyError, TypeError):
        return False
    return config.get("family") == "pianoroll-vae" or config.get("data", {}).get("name") == "bach-chorales"


def generate_pieces(run: str | Path, *, count: int, seed: int = 0, tokens: int = 300) -> tuple[list[list[Note]], dict[str, Any]]:
    """`count` pieces (lists of notes) from a music run, with what was generated: a piano-roll VAE's clips
    (seeds seed..), or a language model's lines (prompt `t0`, temperature 1, up to `tokens` new tokens,
    stopping at the line's end; tokens that make no sense are counted)."""
    from aigc.errors import AigcWarning
    from aigc.generation import pipeline
    from aigc.loading import load
    from aigc.signal.music import events_to_notes

    model = load(run)
    request_class = model.module.request_class
    began = time.perf_counter()
    details: dict[str, Any] = {"model": model.info.model_name, "step": model.info.step, "seed": seed}
    if model.info.family == "pianoroll-vae":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AigcWarning)  # the built-in synth's note: only the notes are scored
            clip = pipeline.generate(model, request_class(count=count, seed=seed))
        pieces = [events_to_notes(events).notes for _, events in clip.scores]
        details.update(rendered=clip.parameters.get("rendered"), audio_seconds=round(clip.waveforms.size / clip.sample_rate, 1))
    else:
        pieces, skipped = [], 0
        for index in range(count):
            sample = pipeline.generate(model, request_class(prompt="t0", seed=seed + index, max_tokens=tokens, temperature=1.0, stop=["\n"]))
            reading = events_to_notes("t0 " + sample.text)
            pieces.append(reading.notes)
            skipped += reading.skipped
        details["tokens_skipped"] = skipped
    details["generation_seconds"] = round(time.perf_counter() - began, 2)
    return pieces, details


def evaluate_music_run(run: str | Path, *, count: int = 100, seed: int = 0, tokens: int = 300, reference_split: str = "test") -> dict[str, Any]:
    """Music scores of `count` generated pieces against the chorales of `reference_split`."""
    from aigc import checkpoint as ckpt
    from aigc import zoo
    from aigc.data.music import reference_pieces

    dataset = ckpt.read_sidecar(ckpt.resolve_checkpoint(zoo.resolve(run)))["config"]["data"]["name"]
    dataset = "bach-chorales" if dataset == "bach-chorale-rolls" else dataset
    pieces, details = generate_pieces(run, count=count, seed=seed, tokens=tokens)
    reference = reference_pieces(dataset, reference_split)
    return {**music_scores(pieces, reference), **details, "reference_split": f"{dataset} {reference_split} split ({len(reference)} pieces, C major / A minor)"}


def music_summary(document: dict[str, Any]) -> str:
    ours, theirs = document["generated"], document["reference"]
    return (f"pitch-class histogram distance {document['pitch_class_histogram_distance']:.3f}, note density {ours['note_density']:.2f} "
            f"(reference {theirs['note_density']:.2f}) notes per quarter, in key {ours['share_in_key']:.1%} (reference {theirs['share_in_key']:.1%}), "
            f"{ours['empty']} of {ours['pieces']} pieces empty")


def write_music_eval(run: str | Path, *, out: Path | None = None, **settings: Any) -> tuple[dict[str, Any], Path | None]:
    """`aigc eval` for a music run: the scores, written as eval.json into `out` or the run folder."""
    import json

    from aigc.files import atomic_write_text

    document = evaluate_music_run(run, **settings)
    folder = out if out is not None else (Path(run) if Path(run).is_dir() else None)
    if folder is None:
        return document, None
    return document, atomic_write_text(Path(folder) / "eval.json", json.dumps(document, indent=2) + "\n")

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
major / A minor like the training data); score the reference against itself split in two halves for the
ceiling (`benchmarks/music_scores.py --real`).
"""

from __future__ import annotations

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

"""Bach's four-part chorales from the corpus that ships inside PyPI `music21`'s wheel, as notes.

    aigc data prepare bach-chorales        parses them once (about a minute), into chorales.jsonl

music21 is needed only here (`pip install music21`, or the `music` extra); the datasets, models and
metrics read the prepared notes. Every chorale `music21.corpus.chorales.Iterator()` yields (Riemenschneider
numbering, 371) whose score has exactly four parts is kept, each part one voice (0 = soprano .. 3 =
bass; a chord inside a part keeps its top note); the rest are counted in the manifest. Each record holds
its key (Krumhansl-Schmuckler on its notes, `aigc.signal.music.estimate_key`) and split: chorales are
shuffled (seeded) and 10% go to test, 10% to validation, so a test chorale is never seen in training.

Record: {"id": "bwv269", "split", "key": [tonic pitch class, "major" | "minor"], "quarters": length,
"notes": [[voice, pitch, start, duration], ...]} with times in quarter notes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from aigc.data.prepare import Corpus, write_outputs
from aigc.errors import DataError
from aigc.files import atomic_write_text, sha256_file

PREPARE_COMMAND = "aigc data prepare bach-chorales"
FILES = ("chorales.jsonl",)
RECIPE = {"numbering": "riemenschneider", "voices": 4, "val_fraction": 0.1, "test_fraction": 0.1, "seed": 0}


def music21_module():
    try:
        import music21
    except ImportError:
        raise DataError("the Bach chorales come from PyPI music21's bundled corpus, which is not installed", field="bach-chorales", fix="pip install music21 (or: pip install 'aigc[music]')") from None
    return music21


def chorale_notes(score) -> list[list] | None:
    """[[voice, pitch, start, duration], ...] of a four-part score, or None when it has another number of parts."""
    if len(score.parts) != RECIPE["voices"]:
        return None
    notes = []
    for voice, part in enumerate(score.parts):
        for element in part.flatten().notes:
            pitch = element.pitch.midi if hasattr(element, "pitch") else max(p.midi for p in element.pitches)
            duration = float(element.quarterLength)
            if duration > 0:
                notes.append([voice, int(pitch), float(element.offset), duration])
    return sorted(notes, key=lambda n: (n[2], n[0]))


def fetch(folder: Path) -> Path:
    """Nothing to download: the recipe, with the music21 version whose corpus is read."""
    music21 = music21_module()
    path = folder / "bach-chorales-recipe.json"
    atomic_write_text(path, json.dumps({**RECIPE, "music21": music21.__version__}, indent=2) + "\n")
    return path


def build(source: Path, folder: Path) -> dict:
    from aigc.signal.music import Note, estimate_key

    music21 = music21_module()
    recipe = {**RECIPE, **json.loads(source.read_text(encoding="utf-8"))}
    names = list(music21.corpus.chorales.Iterator(numberingSystem=recipe["numbering"], returnType="filename"))
    records, other_parts = [], 0
    for name in names:
        notes = chorale_notes(music21.corpus.parse(name))
        if notes is None:
            other_parts += 1
            continue
        tonic, mode = estimate_key([Note(p, s, d, v) for v, p, s, d in notes])
        records.append({"id": name.split("/")[-1], "key": [tonic, mode], "quarters": max(s + d for _, _, s, d in notes), "notes": notes})
    if not records:
        raise DataError(f"music21 {music21.__version__} yielded no four-part chorales", field="bach-chorales", fix="pip install music21 (its wheel bundles the corpus)")
    order = np.random.default_rng(recipe["seed"]).permutation(len(records))
    test_count, val_count = round(len(records) * recipe["test_fraction"]), round(len(records) * recipe["val_fraction"])
    for rank, index in enumerate(order):
        records[index]["split"] = "test" if rank < test_count else "val" if rank < test_count + val_count else "train"
    lines = "".join(json.dumps(record) + "\n" for record in records).encode("utf-8")
    outputs = write_outputs(folder, {"chorales.jsonl": lines})
    outputs["chorales.jsonl"].update(chorales=len(records), notes=sum(len(r["notes"]) for r in records))
    return {
        "archive_sha256": sha256_file(source),
        "versions": {"music21": music21.__version__, "numpy": np.__version__},
        "parameters": recipe,
        "counts": {**{split: sum(r["split"] == split for r in records) for split in ("train", "val", "test")}, "not_four_parts": other_parts, "listed": len(names)},
        "outputs": outputs,
    }


CORPUS = Corpus("bach-chorales", "the Bach chorales bundled in PyPI music21 (pip install music21)", fetch, build, FILES)

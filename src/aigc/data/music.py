"""Music datasets: Bach's chorales (prepared once from music21's bundled corpus by `aigc data prepare
bach-chorales`) as note-event text for the language-model families and as piano-roll windows for the
piano-roll VAE, and a built-in set of toy chorales for tests and tiny runs.

Every chorale is transposed to C major or A minor first (by its estimated key, the smallest shift), the
usual practice for small chorale models: the models learn harmony, not twelve copies of it; the music
metrics compare with the held-out (test) chorales transposed the same way.

    bach-chorales          text: one chorale per line as note-event text (aigc.signal.music), train
                           chorales then validation chorales (`data.val_fraction` of the text is the tail);
                           use the `event` tokenizer (model.tokenizer_kind = "event")
    bach-chorale-rolls     piano rolls [4 voices, `model.steps` eighths] cut from the train (val) chorales
                           every `model.window_hop` steps; label = the mode (0 major, 1 minor)
    toy-chorales           built in: 400 four-part cadences (I-IV-V-I and i-iv-V-i in C major / A minor,
                           random voicings and rhythms), for tests
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

from aigc.data.bundle import DatasetBundle, LabelledTensors
from aigc.data.prepare import built_file, is_prepared
from aigc.data.text import make_language_model_bundle
from aigc.errors import DataError
from aigc.registry import register_dataset
from aigc.signal.music import REST, Note, notes_to_events, notes_to_roll, to_common_key

VOICES = 4
MODES = ["major", "minor"]


def _chorales_available() -> str | None:
    from aigc.data.prepare import chorales

    if is_prepared(chorales.CORPUS.name, chorales.FILES):
        return None
    return f"not prepared yet: run `{chorales.PREPARE_COMMAND}` (needs PyPI music21)"


def read_chorales(split: str | None = None) -> list[dict]:
    """Prepared chorale records (hash checked), each with "notes" as [Note] in C major / A minor."""
    from aigc.data.prepare import chorales

    path = built_file(chorales.CORPUS.name, "chorales.jsonl", chorales.PREPARE_COMMAND)
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    for record in records:
        tonic, mode = record["key"]
        record["notes"] = to_common_key([Note(p, s, d, v) for v, p, s, d in record["notes"]], tonic, mode)
    return [r for r in records if split is None or r["split"] == split]


def toy_chorales(count: int, seed: int) -> list[dict]:
    """Records like read_chorales' of four-part cadences in C major / A minor (always available)."""
    rng = np.random.default_rng(seed)
    chords = {"major": [(0, 4, 7), (5, 9, 0), (7, 11, 2), (0, 4, 7)], "minor": [(9, 0, 4), (2, 5, 9), (4, 8, 11), (9, 0, 4)]}
    ranges = [(60, 79), (55, 72), (48, 67), (36, 55)]  # soprano .. bass
    records = []
    for index in range(count):
        mode = MODES[index % 2]
        notes, time = [], 0.0
        for bar in range(4):
            for chord in chords[mode]:
                duration = float(rng.choice([1.0, 2.0]))
                for voice, (low, high) in enumerate(ranges):
                    pitch_class = chord[0] if voice == 3 else chord[int(rng.integers(3))]
                    choices = [p for p in range(low, high + 1) if p % 12 == pitch_class]
                    notes.append(Note(int(rng.choice(choices)), time, duration, voice))
                time += duration
        records.append({"id": f"toy{index}", "split": "test" if index % 10 == 0 else "val" if index % 10 == 1 else "train", "key": [0 if mode == "major" else 9, mode], "notes": notes})
    return records


def reference_pieces(dataset: str, split: str) -> list[list[Note]]:
    """The notes of each piece of a music dataset's split (what music metrics compare with)."""
    records = toy_chorales(400, seed=0) if dataset == "toy-chorales" else read_chorales()
    pieces = [record["notes"] for record in records if record["split"] == split]
    if not pieces:
        raise DataError(f"{dataset} has no {split} pieces", field="--reference-split", fix="use train, val or test")
    return pieces


# ---------------------------------------------------------------------------------------------- event text


def chorale_text(records: list[dict]) -> str:
    return "".join(notes_to_events(record["notes"]) + "\n" for record in records)


def _event_bundle(records: list[dict], data_config: Any, model_config: Any, source: str) -> DatasetBundle:
    if getattr(model_config, "tokenizer_kind", "event") != "event":
        raise DataError(f"{data_config.name} is note-event text: its tokens are space-separated events", field="model.tokenizer_kind", fix="--set model.tokenizer_kind=event")
    ordered = [r for r in records if r["split"] == "train"] + [r for r in records if r["split"] == "val"]
    return make_language_model_bundle(chorale_text(ordered), data_config=data_config, model_config=model_config, source=source)


# ---------------------------------------------------------------------------------------------- piano rolls


class RollDataset(LabelledTensors):
    """Piano-roll windows `rolls` int64 [N, voices, steps] (MIDI pitch or REST) with their mode labels."""

    def __init__(self, rolls: torch.Tensor, labels: torch.Tensor):
        super().__init__("rolls", rolls, labels, dtype=torch.int64, axes="N, voices, steps")
        self.rolls = self.examples

    def get_batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"roll": self.rolls[indices], "labels": self.labels[indices]}


def roll_windows(records: list[dict], steps: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """(int64 [N, VOICES, steps] windows every `hop` steps of each piece, int64 [N] mode labels); windows
    more than a quarter rests are left out (a piece's end)."""
    windows, labels = [], []
    for record in records:
        notes = record["notes"]
        end = max((n.end for n in notes), default=0.0)
        roll = notes_to_roll(notes, VOICES, int(np.ceil(end / 0.5)))
        for begin in range(0, max(1, roll.shape[1] - steps + 1), hop):
            window = roll[:, begin : begin + steps]
            if window.shape[1] == steps and (window == REST).mean() <= 0.25:
                windows.append(window)
                labels.append(MODES.index(record["key"][1]))
    if not windows:
        raise DataError(f"no piano-roll windows of {steps} steps in {len(records)} pieces", field="model.steps", fix="lower model.steps")
    return np.stack(windows), np.array(labels, np.int64)


def _roll_bundle(records: list[dict], model_config: Any, source: str) -> DatasetBundle:
    steps, hop = int(getattr(model_config, "steps", 32)), int(getattr(model_config, "window_hop", 8))

    def split(name):
        part = [r for r in records if r["split"] == name]
        if not part:
            return None
        rolls, labels = roll_windows(part, steps, hop)
        return RollDataset(torch.from_numpy(rolls), torch.from_numpy(labels))

    return DatasetBundle(split("train"), split("val"), split("test"), num_classes=2, class_names=MODES, source=source)


# ---------------------------------------------------------------------------------------------- registrations

_CHORALES = "Bach chorales from PyPI music21's bundled corpus, via `aigc data prepare bach-chorales`"


def _no_path(data_config: Any) -> None:
    if data_config.path is not None:
        raise DataError(f"{data_config.name} reads the prepared or built-in chorales, so data.path would be ignored", field="data.path", fix="remove data.path")


@register_dataset("bach-chorales", modality="text", available=_chorales_available, source=_CHORALES,
                  description="Bach's four-part chorales as note-event text (one per line, in C major / A minor), for lstm/gpt with tokenizer_kind=event")
def load_chorale_events(data_config: Any, model_config: Any) -> DatasetBundle:
    _no_path(data_config)
    return _event_bundle(read_chorales(), data_config, model_config, "Bach chorales (music21 corpus), note events")


@register_dataset("bach-chorale-rolls", modality="audio", available=_chorales_available, source=_CHORALES, num_classes=2,
                  description="Bach's four-part chorales as piano-roll windows [4 voices, model.steps eighths], C major / A minor; label = mode")
def load_chorale_rolls(data_config: Any, model_config: Any) -> DatasetBundle:
    _no_path(data_config)
    return _roll_bundle(read_chorales(), model_config, "Bach chorales (music21 corpus), piano rolls")


@register_dataset("toy-chorales", modality="audio", source="made by aigc (numpy), always available", num_classes=2,
                  description="400 built-in four-part cadences (C major / A minor) as piano rolls, for tests and tiny runs")
def load_toy_rolls(data_config: Any, model_config: Any) -> DatasetBundle:
    _no_path(data_config)
    return _roll_bundle(toy_chorales(400, seed=0), model_config, "aigc toy chorales (synthetic cadences)")

"""Audio datasets: spoken digits (synthesised by `aigc data prepare spoken-digits`), a built-in set of
tones for tests and tiny runs, and a folder of your own WAV/FLAC/OGG files.

Every loader ends in `make_audio_bundle`, so all sound reaches the loop the same way:

    float waveforms  --fit_length-->  int16 [N, sample_length] at the model's sample_rate
                     --AudioDataset.get_batch-->  {"audio": float32 [B, 1, T] in [-1, 1], "labels": int64 [B]}

Clips stay int16 in memory (half of float32; 10,000 one-second clips are 330 MB) and become floats one
batch at a time. The model says the geometry (`model.sample_rate`, default 16,000 Hz, and
`model.sample_length`, default 16,384 samples); clips of another length are centred and cut or padded
with silence, clips at another rate are resampled (scipy `resample_poly`).

Audio folders (`data.name = "audio-folder"`, `data.path = DIR`): one subfolder per class (sorted names are
the class names) or files directly in the folder (one class). Hidden entries are ignored, and so are
files without an audio extension (`AUDIO_EXTENSIONS`). Each file is read with soundfile; then
- unreadable (not audio, corrupt), empty (no samples), or silent (peak below 1/1000): a *counted skip*
  (`bundle.skipped`, with the reason, and one warning); every file skipped is a DataError;
- stereo or more channels: averaged to mono, and said (one warning with the count);
- another sample rate: resampled to the model's, and said;
- longer than the model's clip: silence trimmed at both ends, then centred and cut, and said; a file
  over `MAX_SECONDS_PER_CLIP` times the clip length is a counted skip (cut it into clips first).
There is no test split; validation is `data.val_fraction` of the files.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from aigc.data.bundle import DatasetBundle, LabelledTensors, split_indices
from aigc.data.prepare import built_file, is_prepared
from aigc.errors import AigcWarning, DataError
from aigc.files import data_files, is_hidden, visible_files
from aigc.registry import register_dataset

SAMPLE_RATE = 16_000
SAMPLE_LENGTH = 16_384  # SC09's clip: a power of two just over one second at 16 kHz
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg"})
SILENT_PEAK = 1e-3  # below this peak a file holds nothing to learn from
MAX_SECONDS_PER_CLIP = 4  # files longer than this many clips are not one utterance
DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


# ------------------------------------------------------------------------------------- waveform helpers


def resample(waveform: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """float32 waveform [..., T] from one rate to another by polyphase filtering (scipy `resample_poly`)."""
    if from_rate == to_rate:
        return waveform.astype(np.float32)
    from scipy.signal import resample_poly

    step = math.gcd(int(from_rate), int(to_rate))
    return resample_poly(waveform, to_rate // step, from_rate // step, axis=-1).astype(np.float32)


def fit_length(waveform: np.ndarray, length: int) -> np.ndarray:
    """[T] -> [length]: centred, cut evenly at both ends or padded with silence at both ends."""
    excess = len(waveform) - length
    if excess >= 0:
        return waveform[excess // 2 : excess // 2 + length]
    before = -excess // 2
    return np.pad(waveform, (before, -excess - before))


def trim_silence(waveform: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """The waveform from its first to its last sample above `threshold` x its peak (all of it if silent)."""
    loud = np.flatnonzero(np.abs(waveform) > threshold * np.abs(waveform).max(initial=0.0))
    return waveform[loud[0] : loud[-1] + 1] if len(loud) else waveform


def to_int16(waveform: np.ndarray) -> np.ndarray:
    return (np.clip(waveform, -1.0, 1.0) * 32767).round().astype(np.int16)


def audio_geometry(model_config: Any) -> tuple[int, int]:
    """(sample_rate, sample_length) the model asks for; the defaults when it does not say."""
    return int(getattr(model_config, "sample_rate", None) or SAMPLE_RATE), int(getattr(model_config, "sample_length", None) or SAMPLE_LENGTH)


# ------------------------------------------------------------------------------------- the split the loop batches


class AudioDataset(LabelledTensors):
    """Labelled clips in memory: `clips` int16 [N, T], `labels` int64 [N]; `fingerprint` = sha256 of both
    and the sample rate."""

    def __init__(self, clips: torch.Tensor, labels: torch.Tensor, sample_rate: int):
        super().__init__("clips", clips, labels, dtype=torch.int16, axes="N, T", extra=str(sample_rate).encode())
        self.clips, self.sample_rate = self.examples, sample_rate

    def get_batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        """Clips at `indices` as float32 [B, 1, T] in [-1, 1] (x / 32768), with their labels."""
        audio = self.clips[indices].to(torch.float32).div_(32768.0).unsqueeze(1)
        return {"audio": audio, "labels": self.labels[indices]}


def make_audio_bundle(
    clips: np.ndarray,
    labels: np.ndarray,
    *,
    data_config: Any,
    sample_rate: int,
    class_names: Sequence[str],
    source: str,
    splits: np.ndarray | None = None,
    skipped: list[tuple[str, str]] | None = None,
) -> DatasetBundle:
    """int16 clips [N, T] and labels [N] -> train/val(/test) splits. `splits` ("train"/"val"/"test" per clip)
    keeps a dataset's own split; without it validation is a seeded `data.val_fraction` of the clips."""
    clips_t, labels_t = torch.from_numpy(np.ascontiguousarray(clips)), torch.from_numpy(labels.astype(np.int64))
    test = None
    if splits is not None:
        train_index = torch.from_numpy(np.flatnonzero(splits == "train"))
        val_index = torch.from_numpy(np.flatnonzero(splits == "val"))
        test_index = torch.from_numpy(np.flatnonzero(splits == "test"))
        test = AudioDataset(clips_t[test_index], labels_t[test_index], sample_rate) if len(test_index) else None
    else:
        train_index, val_index = split_indices(len(clips_t), data_config.val_fraction, data_config.split_seed)
    if data_config.limit is not None:
        train_index = train_index[: data_config.limit]
    if len(train_index) == 0:
        raise DataError(f"{source} has no training clips", field="data.name", fix="use a dataset (or recipe) that has them, e.g. spoken-digits-en when the corpus was built without Mandarin")
    train = AudioDataset(clips_t[train_index], labels_t[train_index], sample_rate)
    val = AudioDataset(clips_t[val_index], labels_t[val_index], sample_rate) if len(val_index) else None
    return DatasetBundle(train, val, test, num_classes=len(class_names), class_names=list(class_names), source=source, skipped=skipped or [])


# ------------------------------------------------------------------------------------- built in: tones


def make_tones(count: int, sample_rate: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` clips of ten classes of notes: class k is a harmonic tone at 220 * 2^(k/4) Hz (a minor third
    apart), with a random onset, length, decay, detune (+-2%), harmonic mix and a little noise.
    A dataset that needs nothing installed and that a tiny model can learn in seconds."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / sample_rate
    clips = np.zeros((count, length), np.float32)
    labels = np.arange(count) % 10
    for index, label in enumerate(labels):
        frequency = 220.0 * 2 ** (label / 4) * rng.uniform(0.98, 1.02)
        onset, duration = rng.uniform(0, 0.3) * t[-1], rng.uniform(0.3, 0.7) * t[-1]
        envelope = np.where(t >= onset, np.exp(-(t - onset) / (duration / 3)), 0.0) * (t < onset + duration)
        harmonics = rng.dirichlet(np.ones(3))
        tone = sum(weight * np.sin(2 * np.pi * frequency * (h + 1) * t + rng.uniform(0, 2 * np.pi)) for h, weight in enumerate(harmonics))
        clips[index] = 0.8 * envelope * tone + rng.normal(0, 0.005, length)
    return to_int16(clips), labels


@register_dataset(
    "tones",
    modality="audio",
    description="ten classes of synthetic harmonic notes (class k at 220 * 2^(k/4) Hz): 1,000 train + 200 test clips, built in",
    source="made by aigc (numpy), always available",
    num_classes=10,
)
def load_tones(data_config: Any, model_config: Any) -> DatasetBundle:
    if data_config.path is not None:
        raise DataError("tones are made by aigc, so data.path would be ignored", field="data.path", fix="remove data.path, or use data.name=audio-folder for your own files")
    rate, length = audio_geometry(model_config)
    train_clips, train_labels = make_tones(1000, rate, length, seed=0)
    test_clips, test_labels = make_tones(200, rate, length, seed=1)
    bundle = make_audio_bundle(train_clips, train_labels, data_config=data_config, sample_rate=rate, class_names=[f"note {k}" for k in range(10)], source="aigc tones (synthetic)")
    bundle.test = AudioDataset(torch.from_numpy(test_clips), torch.from_numpy(test_labels.astype(np.int64)), rate)
    return bundle


# ------------------------------------------------------------------------------------- spoken digits


def _spoken_digits_available() -> str | None:
    from aigc.data.prepare import spoken_digits

    if is_prepared(spoken_digits.CORPUS.name, spoken_digits.FILES):
        return None
    return f"not prepared yet: run `{spoken_digits.PREPARE_COMMAND}` (synthesises it with Debian espeak-ng)"


def read_spoken_digits(language: str | None) -> tuple[np.ndarray, list[dict], dict, str]:
    """(int16 clips, records, manifest parameters, where) of the prepared corpus, hashes checked;
    `language` "en" or "zh" keeps that language's clips only."""
    from aigc.data.prepare import read_manifest, spoken_digits

    clips_path = built_file(spoken_digits.CORPUS.name, "clips.npy", spoken_digits.PREPARE_COMMAND)
    records_path = built_file(spoken_digits.CORPUS.name, "clips.jsonl", spoken_digits.PREPARE_COMMAND)
    clips = np.load(clips_path, allow_pickle=False)
    records = [json.loads(line) for line in records_path.read_text(encoding="utf-8").splitlines() if line]
    if len(records) != len(clips):
        raise DataError(f"{records_path} describes {len(records)} clips but {clips_path} holds {len(clips)}", field="data.name", fix=f"rebuild: {spoken_digits.PREPARE_COMMAND} --force")
    if language is not None:
        keep = np.array([record["language"] == language for record in records], bool)
        clips, records = clips[keep], [record for record, kept in zip(records, keep) if kept]
    manifest = read_manifest(spoken_digits.CORPUS.name) or {}
    return clips, records, manifest.get("parameters", {}), str(clips_path.parent)


def fit_clips(clips: np.ndarray, rate: int, to_rate: int, to_length: int) -> np.ndarray:
    """int16 clips [N, T] at `rate` -> int16 [N, to_length] at `to_rate` (the model's geometry)."""
    if rate == to_rate and clips.shape[1] == to_length:
        return clips
    waveforms = resample(clips.astype(np.float32) / 32768.0, rate, to_rate)
    return np.stack([to_int16(fit_length(waveform, to_length)) for waveform in waveforms]) if len(waveforms) else np.zeros((0, to_length), np.int16)


def _register_spoken_digits(name: str, language: str | None, what: str) -> None:
    @register_dataset(
        name, modality="audio", num_classes=10, available=_spoken_digits_available,
        description=f"spoken digits 0-9, {what}, 16 kHz, 16,384 samples; train/val/test split by speaker (test speakers unheard in training)",
        source="Debian espeak-ng via `aigc data prepare spoken-digits`",
    )
    def load(data_config: Any, model_config: Any) -> DatasetBundle:
        if data_config.path is not None:
            raise DataError(f"{name} reads the prepared corpus, so data.path would be ignored", field="data.path", fix="remove data.path, or use data.name=audio-folder for your own files")
        clips, records, parameters, where = read_spoken_digits(language)
        rate, length = audio_geometry(model_config)
        clips = fit_clips(clips, int(parameters.get("sample_rate", SAMPLE_RATE)), rate, length)
        labels = np.array([record["digit"] for record in records], np.int64)
        splits = np.array([record["split"] for record in records])
        return make_audio_bundle(clips, labels, data_config=data_config, sample_rate=rate, class_names=DIGIT_NAMES, source=f"spoken digits ({what}) in {where}", splits=splits)


_register_spoken_digits("spoken-digits", None, "English and Mandarin")
_register_spoken_digits("spoken-digits-en", "en", "English only")
_register_spoken_digits("spoken-digits-zh", "zh", "Mandarin only")


# ------------------------------------------------------------------------------------- your own folder


class _Skip(Exception):
    """A file that cannot be used, with the reason (counted, not fatal)."""


def read_audio_file(path: Path, rate: int, length: int) -> tuple[np.ndarray, list[str]]:
    """(float32 mono waveform [length] at `rate`, what was changed: "downmixed", "resampled", "cut")."""
    import soundfile

    try:
        waveform, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)  # [T, C]
    except (RuntimeError, soundfile.LibsndfileError, OSError, ValueError) as error:
        raise _Skip(f"unreadable: {error}") from None
    if waveform.shape[0] == 0:
        raise _Skip("empty: it holds no samples")
    changes = []
    if waveform.shape[1] > 1:
        changes.append("downmixed")
    mono = waveform.mean(axis=1)
    if np.abs(mono).max() < SILENT_PEAK:
        raise _Skip(f"silent: its peak is below {SILENT_PEAK}")
    if file_rate != rate:
        changes.append("resampled")
        mono = resample(mono, file_rate, rate)
    if len(mono) > length:
        mono = trim_silence(mono)
        if len(mono) > MAX_SECONDS_PER_CLIP * length:
            raise _Skip(f"too long: {len(mono) / rate:.1f} s of sound, the model's clips are {length / rate:.2f} s; cut it into clips")
        if len(mono) > length:
            changes.append("cut")
    return fit_length(mono, length), changes


def scan_audio_folder(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """(class names, [(file, label)]): one subfolder per class, or a flat folder of one class."""
    if not root.is_dir():
        raise DataError(f"{root} is not a folder", field="data.path", fix="point data.path at a folder of WAV/FLAC files (one subfolder per class, or flat)")
    extensions = ", ".join(sorted(AUDIO_EXTENSIONS))
    classes = sorted(entry for entry in root.iterdir() if entry.is_dir() and not is_hidden(entry.name))
    loose = [path for path in visible_files(root, AUDIO_EXTENSIONS) if path.parent == root]
    if classes and loose:
        raise DataError(f"{root} holds both class subfolders and {len(loose)} loose files ({loose[0].name}, ...), so their class is unknown", field="data.path", fix="move the loose files into a class subfolder, or remove them")
    if not classes:
        if not loose:
            raise DataError(f"{root} holds no audio files (recognised extensions: {extensions}, any case)", field="data.path", fix="point data.path at a folder of audio files, one subfolder per class or flat")
        return [root.resolve().name or "audio"], [(path, 0) for path in loose]
    files = []
    for label, folder in enumerate(classes):
        found = data_files(folder, AUDIO_EXTENSIONS, none=f"class folder {folder} holds no audio files (recognised extensions: {extensions})", fix="add files to it or remove it: every subfolder of data.path is a class")
        files += [(path, label) for path in found]
    return [folder.name for folder in classes], files


def read_audio_folder(root: Path, rate: int, length: int, limit: int | None = None) -> tuple[np.ndarray, np.ndarray, list[str], list[tuple[str, str]]]:
    """(int16 clips, labels, class names, skipped) of a folder, with one warning per kind of change."""
    class_names, files = scan_audio_folder(root)
    clips, labels, skipped = [], [], []
    changed: dict[str, int] = {}
    for path, label in files:
        if limit is not None and len(clips) >= limit:
            break
        try:
            waveform, changes = read_audio_file(path, rate, length)
        except _Skip as reason:
            skipped.append((str(path), str(reason)))
            continue
        for change in changes:
            changed[change] = changed.get(change, 0) + 1
        clips.append(to_int16(waveform))
        labels.append(label)
    if not clips:
        reasons = "; ".join(f"{Path(path).name}: {reason}" for path, reason in skipped[:3])
        raise DataError(f"none of the {len(files)} audio files in {root} can be used ({reasons})", field="data.path", fix="give readable, non-silent WAV/FLAC/OGG files")
    said = {"downmixed": "had several channels and were averaged to mono", "resampled": f"were resampled to {rate} Hz", "cut": f"were longer than {length / rate:.2f} s and were cut to their middle"}
    for change, count in changed.items():
        warnings.warn(f"{count} of the files in {root} {said[change]}", AigcWarning, stacklevel=2)
    if skipped:
        warnings.warn(f"skipped {len(skipped)} of {len(files)} files in {root}: " + "; ".join(f"{Path(p).name}: {r}" for p, r in skipped[:5]), AigcWarning, stacklevel=2)
    return np.stack(clips), np.array(labels, np.int64), class_names, skipped


@register_dataset(
    "audio-folder",
    modality="audio",
    description="your own sound: WAV/FLAC/OGG files, one subfolder per class or flat; resampled, mono, cut or padded to the model's clip",
    source="data.path = a folder of audio files",
)
def load_audio_folder(data_config: Any, model_config: Any) -> DatasetBundle:
    if data_config.path is None:
        raise DataError("audio-folder reads your own files, but no path was given", field="data.path", fix="--set data.path=DIR (one subfolder of WAV/FLAC files per class, or flat)")
    root = Path(data_config.path).expanduser()
    rate, length = audio_geometry(model_config)
    clips, labels, class_names, skipped = read_audio_folder(root, rate, length, limit=data_config.limit)
    return make_audio_bundle(clips, labels, data_config=data_config, sample_rate=rate, class_names=class_names, source=f"audio folder {root}", skipped=skipped)

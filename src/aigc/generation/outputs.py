"""Typed artifacts returned by `generate`: `ImageBatch` (uint8 NHWC), `AudioClip` (float waveforms) and
`TextSample` (generation/text.py), each with its provenance attached and ONE way to become files,
`files()` (bytes, media type, metadata per sample): the studio stores exactly what the CLI saves.

Every PNG written here carries text chunks `model`, `seed`, `label`, `parameters` (the AUTOMATIC1111-style
text that generation UIs read) and `aigc` (all of it as JSON), written by `generation/metadata.py` as the
studio writes them, and holds no timestamp, so the same seed gives byte-identical files.

The policy's artifact hooks may leave `file_hooks` on an artifact (applied to every encoded file: content
credentials sign it) and `picture_hooks` on an ImageBatch (applied to a grid before it is encoded: its
watermark); `files()`, `save`, `save_each` and `save_grid` all go through them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from aigc.files import atomic_write_bytes
from aigc.generation.metadata import png_bytes, provenance_texts, wav_bytes


@dataclass(frozen=True)
class ArtifactFile:
    """One encoded sample of an artifact: the bytes a file holds and what to index it by."""

    kind: str  # "image" | "text" | "audio"
    media_type: str  # e.g. "image/png"
    suffix: str  # e.g. ".png"
    data: bytes
    seed: int | None = None
    label: int | None = None
    width: int | None = None  # images: pixels
    height: int | None = None
    record: dict[str, Any] = field(default_factory=dict)  # the provenance the file carries, as data


FileHook = Callable[[ArtifactFile], ArtifactFile]  # an encoded file -> the file to write (content credentials sign it)
PictureHook = Callable[[np.ndarray, dict], tuple[np.ndarray, dict]]  # (a composed picture, its parameters) -> both, before encoding


def _finished(file: ArtifactFile, hooks: tuple[FileHook, ...]) -> ArtifactFile:
    """The encoded file after the policy's file hooks, in order (what files(), save and save_grid write)."""
    for hook in hooks:
        file = hook(file)
    return file


def provenance_record(model: str, seeds: list[int], labels: list[int] | None, parameters: dict[str, Any]) -> dict[str, Any]:
    """The `aigc` JSON record a file carries (and the studio indexes), as a dict."""
    return {"model": model, "seeds": seeds, "labels": labels, **parameters}


@dataclass(frozen=True)
class ImageBatch:
    images: np.ndarray  # uint8 [N, H, W, C], C = 1 or 3
    seeds: list[int]  # seed of each image (request seed + index)
    labels: list[int] | None  # class of each image, for conditional models
    model: str  # family name, plus checkpoint when loaded from one
    parameters: dict[str, Any] = field(default_factory=dict)  # everything else needed to make them again
    # Set by the policy's artifact hooks (generation/pipeline.py), applied when files are encoded:
    file_hooks: tuple[FileHook, ...] = ()  # each encoded PNG (safety/credentials.py signs it)
    picture_hooks: tuple[PictureHook, ...] = ()  # a grid composed by save_grid (the watermark of a grid of small images)

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[-1] not in (1, 3):
            raise ValueError(f"ImageBatch.images must be uint8 [N, H, W, 1|3], got {self.images.dtype} {self.images.shape}")

    def __len__(self) -> int:
        return len(self.images)

    def image(self, index: int) -> Image.Image:
        array = self.images[index]
        return Image.fromarray(array[..., 0], "L") if array.shape[-1] == 1 else Image.fromarray(array, "RGB")

    def grid(self, columns: int | None = None, padding: int = 2) -> Image.Image:
        count, height, width, channels = self.images.shape
        if columns is None and self.labels is not None and 1 < len(set(self.labels)) <= 16:
            columns = len(set(self.labels))  # labels cycle 0..K-1, so each column is one class
        columns = columns or math.ceil(math.sqrt(count))
        rows = math.ceil(count / columns)
        canvas = np.zeros((rows * (height + padding) + padding, columns * (width + padding) + padding, channels), np.uint8)
        for index, array in enumerate(self.images):
            top = padding + (index // columns) * (height + padding)
            left = padding + (index % columns) * (width + padding)
            canvas[top : top + height, left : left + width] = array
        return Image.fromarray(canvas[..., 0], "L") if channels == 1 else Image.fromarray(canvas, "RGB")

    def _png(self, picture: Image.Image, seeds: list[int], labels: list[int] | None, parameters: dict[str, Any] | None = None) -> bytes:
        size = {"Size": f"{picture.width}x{picture.height}"}
        return png_bytes(picture, provenance_texts(self.model, seeds, labels, self.parameters if parameters is None else parameters, size))

    def part(self, start: int, stop: int) -> "ImageBatch":
        """Images start .. stop-1 as a batch of their own (a merged request's share of one request)."""
        prompts = self.parameters.get("prompts")
        parameters = {**self.parameters, "prompts": prompts[start:stop]} if isinstance(prompts, list) else self.parameters
        labels = None if self.labels is None else self.labels[start:stop]
        return dataclasses.replace(self, images=self.images[start:stop], seeds=self.seeds[start:stop], labels=labels, parameters=parameters)

    def parameters_of(self, index: int) -> dict[str, Any]:
        """The parameters of image `index` alone: with one prompt per image, its own prompt."""
        prompts = self.parameters.get("prompts")
        return {**self.parameters, "prompts": prompts[index]} if isinstance(prompts, list) else self.parameters

    def files(self) -> list[ArtifactFile]:
        """One PNG per image, each carrying its own seed and label: what the studio stores and `save_each` writes."""
        files = []
        for index in range(len(self)):
            picture, seed = self.image(index), self.seeds[index]
            label = None if self.labels is None else self.labels[index]
            labels = None if label is None else [label]
            parameters = self.parameters_of(index)
            record = provenance_record(self.model, [seed], labels, parameters)
            file = ArtifactFile("image", "image/png", ".png", self._png(picture, [seed], labels, parameters), seed, label, picture.width, picture.height, record)
            files.append(_finished(file, self.file_hooks))
        return files

    def save_grid(self, path: str | Path, columns: int | None = None) -> Path:
        """All images in one PNG, after the picture hooks (a grid large enough gets the watermark) and file hooks."""
        picture, parameters = self.grid(columns), self.parameters
        for hook in self.picture_hooks:
            array, parameters = hook(np.asarray(picture), parameters)
            picture = Image.fromarray(array)
        record = provenance_record(self.model, self.seeds, self.labels, parameters)
        file = ArtifactFile("image", "image/png", ".png", self._png(picture, self.seeds, self.labels, parameters), None, None, picture.width, picture.height, record)
        return atomic_write_bytes(path, _finished(file, self.file_hooks).data)

    def save_each(self, folder: str | Path, stem: str = "sample") -> list[Path]:
        """One PNG per image, named by its seed, each carrying its own seed and label."""
        return [atomic_write_bytes(Path(folder) / f"{stem}-seed{file.seed}{file.suffix}", file.data) for file in self.files()]

    def save(self, path: str | Path) -> Path:
        return self.save_grid(path)

    @property
    def suffix(self) -> str:
        return ".png"


@dataclass(frozen=True)
class AudioClip:
    """Generated sound: float waveforms in [-1, 1], one row per clip, at one sample rate."""

    waveforms: np.ndarray  # float32 [N, T]
    sample_rate: int  # samples per second, e.g. 16000
    seeds: list[int]  # seed of each clip (request seed + index)
    labels: list[int] | None  # class of each clip, for conditional models
    model: str
    parameters: dict[str, Any] = field(default_factory=dict)
    file_hooks: tuple[FileHook, ...] = ()  # set by the policy, applied to each encoded WAV (safety/credentials.py signs it)
    scores: list[tuple[bytes, str]] | None = None  # music models: each clip's (MIDI file, note-event text)

    GAP_SECONDS = 0.25  # silence between clips when `save` joins them into one file

    def __post_init__(self) -> None:
        if self.waveforms.dtype != np.float32 or self.waveforms.ndim != 2:
            raise ValueError(f"AudioClip.waveforms must be float32 [N, T], got {self.waveforms.dtype} {self.waveforms.shape}")

    def __len__(self) -> int:
        return len(self.waveforms)

    @property
    def suffix(self) -> str:
        return ".wav"

    @property
    def seconds(self) -> float:
        """Length of one clip."""
        return self.waveforms.shape[1] / self.sample_rate

    def _wav(self, waveform: np.ndarray, seeds: list[int], labels: list[int] | None) -> bytes:
        size = {"Duration": f"{len(waveform) / self.sample_rate:.3f} s", "Sample rate": self.sample_rate}
        texts = provenance_texts(self.model, seeds, labels, self.parameters, size)
        from aigc import __version__

        info = {"model": texts["model"], "parameters": texts["parameters"], "software": f"aigc {__version__}", "aigc": texts["aigc"]}
        return wav_bytes(waveform, self.sample_rate, info)

    def part(self, start: int, stop: int) -> "AudioClip":
        """Clips start .. stop-1 on their own (a merged request's share of one request)."""
        labels = None if self.labels is None else self.labels[start:stop]
        scores = None if self.scores is None else self.scores[start:stop]
        return dataclasses.replace(self, waveforms=self.waveforms[start:stop], seeds=self.seeds[start:stop], labels=labels, scores=scores)

    def files(self) -> list[ArtifactFile]:
        """One 16-bit WAV per clip with the provenance in its INFO chunk."""
        files = []
        for index, seed in enumerate(self.seeds):
            label = None if self.labels is None else self.labels[index]
            labels = None if label is None else [label]
            record = provenance_record(self.model, [seed], labels, self.parameters)
            file = ArtifactFile("audio", "audio/wav", ".wav", self._wav(self.waveforms[index], [seed], labels), seed, label, None, None, record)
            files.append(_finished(file, self.file_hooks))
        return files

    def save(self, path: str | Path) -> Path:
        """All clips in one WAV, in order, with GAP_SECONDS of silence between them."""
        gap = np.zeros(int(self.GAP_SECONDS * self.sample_rate), np.float32)
        joined = np.concatenate([part for clip in self.waveforms for part in (clip, gap)][:-1])
        file = ArtifactFile("audio", "audio/wav", ".wav", self._wav(joined, self.seeds, self.labels), None, None, None, None, provenance_record(self.model, self.seeds, self.labels, self.parameters))
        written = atomic_write_bytes(path, _finished(file, self.file_hooks).data)
        self.save_scores(Path(path).parent, Path(path).stem)
        return written

    def save_each(self, folder: str | Path, stem: str = "sample") -> list[Path]:
        return [atomic_write_bytes(Path(folder) / f"{stem}-seed{file.seed}{file.suffix}", file.data) for file in self.files()] + self.save_scores(folder, stem)

    def save_scores(self, folder: str | Path, stem: str) -> list[Path]:
        """A music model's scores: one MIDI file per clip, `STEM-seedN.mid` (nothing for other models)."""
        return [atomic_write_bytes(Path(folder) / f"{stem}-seed{seed}.mid", midi) for seed, (midi, _) in zip(self.seeds, self.scores or [])]


def read_png_text(path: str | Path) -> dict[str, str]:
    """The text chunks of a PNG, e.g. to check or reuse the settings an image was made with."""
    with Image.open(path) as picture:
        return dict(picture.text)

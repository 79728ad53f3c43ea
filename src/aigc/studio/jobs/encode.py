"""Turn what `generate` returns into stored files that carry their own provenance.

Images become one PNG each with the `parameters` (AUTOMATIC1111-style) and `aigc` (JSON) text chunks of
`aigc.generation.metadata`, as the CLI writes them. Audio becomes WAV with the same text in its INFO chunk;
text becomes UTF-8. Anything else with `save(path)` and `suffix` is stored as the file it writes.
"""

from __future__ import annotations

import json
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aigc import __version__
from aigc.generation.metadata import a1111_parameters, png_bytes


@dataclass
class Encoded:
    kind: str  # image | audio | text | file
    media_type: str
    suffix: str
    data: bytes
    seed: int | None = None
    label: int | None = None
    width: int | None = None
    height: int | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


def wav_bytes(waveform: np.ndarray, sample_rate: int, info: dict[str, str]) -> bytes:
    """16-bit PCM WAV with a LIST/INFO chunk (INAM title, ICMT comment, ISFT software)."""
    samples = np.asarray(waveform, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[:, None]  # [T] -> [T, 1]
    elif samples.ndim == 2 and samples.shape[0] < samples.shape[1]:
        samples = samples.T  # [C, T] -> [T, C]
    channels = samples.shape[1]
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).round().astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, channels, sample_rate, sample_rate * channels * 2, channels * 2, 16)
    entries = b""
    for tag, text in info.items():
        data = text.encode("utf-8") + b"\x00"
        entries += tag.encode("ascii") + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"LIST" + struct.pack("<I", 4 + len(entries)) + b"INFO" + entries
    chunks += b"data" + struct.pack("<I", len(pcm)) + pcm + (b"\x00" if len(pcm) % 2 else b"")
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def read_wav_info(data: bytes) -> dict[str, str]:
    info = {}
    position = 12
    while position + 8 <= len(data):
        tag, size = data[position : position + 4], struct.unpack("<I", data[position + 4 : position + 8])[0]
        body = data[position + 8 : position + 8 + size]
        if tag == b"LIST" and body[:4] == b"INFO":
            inner = 4
            while inner + 8 <= len(body):
                key, length = body[inner : inner + 4].decode("ascii"), struct.unpack("<I", body[inner + 4 : inner + 8])[0]
                info[key] = body[inner + 8 : inner + 8 + length].rstrip(b"\x00").decode("utf-8")
                inner += 8 + length + (length % 2)
        position += 8 + size + (size % 2)
    return info


def encode(output: Any, *, model_name: str, family: str, checkpoint_sha256: str, step: int | None, params: dict[str, Any], first_index: int = 0) -> list[Encoded]:
    """Files for one `generate` result; `params` is the job's validated request (prompt, seed, ...)."""
    from aigc.generation.outputs import ImageBatch

    prompt = str(params.get("prompt") or "")
    negative = str(params.get("negative_prompt") or "")
    common = {"Model hash": checkpoint_sha256, "Model": model_name, "Family": family, "Step": step}
    if isinstance(output, ImageBatch):
        files = []
        for index in range(len(output)):
            picture = output.image(index)
            seed = output.seeds[index]
            label = None if output.labels is None else output.labels[index]
            settings = {"Seed": seed, "Size": f"{picture.width}x{picture.height}", **common, "Label": label, "Version": f"aigc {__version__}"}
            provenance = {"prompt": prompt, "negative_prompt": negative, "seed": seed, "label": label, "model": model_name, "family": family, "checkpoint_sha256": checkpoint_sha256, "step": step, "source": output.model, "request": params, "index": first_index + index, "software": f"aigc {__version__}"}
            texts = {"parameters": a1111_parameters(prompt, negative, settings), "aigc": json.dumps(provenance, sort_keys=True, default=str)}
            files.append(Encoded("image", "image/png", ".png", png_bytes(picture, texts), seed, label, picture.width, picture.height, provenance))
        return files
    seed = params.get("seed")
    provenance = {"prompt": prompt, "negative_prompt": negative, "seed": seed, "model": model_name, "family": family, "checkpoint_sha256": checkpoint_sha256, "step": step, "request": params, "software": f"aigc {__version__}"}
    settings = {"Seed": seed, **common, "Version": f"aigc {__version__}"}
    if hasattr(output, "waveform") and hasattr(output, "sample_rate"):
        waveform = np.asarray(output.waveform)
        clips = waveform if waveform.ndim == 2 and waveform.shape[0] > 2 else [waveform]  # a batch of mono clips, or one clip
        info = {"INAM": model_name, "ICMT": a1111_parameters(prompt, negative, settings), "ISFT": f"aigc {__version__}"}
        return [Encoded("audio", "audio/wav", ".wav", wav_bytes(clip, int(output.sample_rate), info), seed, None, None, None, provenance) for clip in clips]
    texts = getattr(output, "texts", None) or ([output.text] if isinstance(getattr(output, "text", None), str) else None)
    if texts is not None:
        return [Encoded("text", "text/plain; charset=utf-8", ".txt", str(text).encode("utf-8"), seed, None, None, None, provenance) for text in texts]
    if hasattr(output, "save") and hasattr(output, "suffix"):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(output.save(Path(folder) / f"artifact{output.suffix}"))
            data = path.read_bytes()
        media = {".png": "image/png", ".wav": "audio/wav", ".txt": "text/plain; charset=utf-8", ".json": "application/json"}.get(output.suffix, "application/octet-stream")
        return [Encoded("file", media, output.suffix, data, seed, None, None, None, provenance)]
    raise TypeError(f"the studio cannot store a {type(output).__name__}: give it save(path) and suffix")

"""Provenance inside generated files, one format for the CLI, the Python API and the studio.

PNG images carry it as text chunks, WAV clips as a LIST/INFO chunk with the same texts.

Every PNG carries a `parameters` text chunk in the format popular generation UIs write and read
(AUTOMATIC1111 and the tools built on it), so their "PNG info" readers show how an image was made:

    a prompt, when there is one
    Negative prompt: what to avoid
    Seed: 5, Size: 28x28, Model hash: b861dadd13fd2232, Model: cgan-mnist, Label: 7, ..., Version: aigc 0.1.0

and an `aigc` chunk holding everything as JSON (request, seeds, labels, checkpoint, ...) for programs.
No timestamp is written, so the same request gives byte-identical files.
"""

from __future__ import annotations

import io
import json
import re
import struct
from typing import Any

import numpy as np

from PIL import Image, PngImagePlugin


def _quote(value: Any) -> str:
    """A1111 quotes a value that holds a comma, colon or newline as a JSON string."""
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ",:\n") else text


def a1111_parameters(prompt: str, negative_prompt: str, settings: dict[str, Any]) -> str:
    lines = []
    if prompt:
        lines.append(prompt)
    if negative_prompt:
        lines.append(f"Negative prompt: {negative_prompt}")
    lines.append(", ".join(f"{key}: {_quote(value)}" for key, value in settings.items() if value is not None and value != ""))
    return "\n".join(lines)


def parse_a1111_parameters(text: str) -> dict[str, str]:
    """The reader's side (as A1111's `parse_generation_parameters`): prompt, negative prompt, then key: value pairs."""
    *lines, last = text.strip().split("\n")
    result: dict[str, str] = {}
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:") :].strip()
        (negative if in_negative else prompt).append(line)
    result["Prompt"] = "\n".join(prompt)
    result["Negative prompt"] = "\n".join(negative)
    for key, value in re.findall(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)', last):
        result[key] = json.loads(value) if value.startswith('"') else value
    return result


def png_bytes(picture: Image.Image, texts: dict[str, str]) -> bytes:
    """The picture as PNG with these text chunks (iTXt when a value needs more than Latin-1)."""
    info = PngImagePlugin.PngInfo()
    for key, value in texts.items():
        info.add_itxt(key, value) if any(ord(c) > 255 for c in value) else info.add_text(key, value)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", pnginfo=info, optimize=False)
    return buffer.getvalue()


def provenance_texts(model: str, seeds: list[int], labels: list[int] | None, parameters: dict[str, Any], size: dict[str, Any]) -> dict[str, str]:
    """The texts a generated file carries: `model`, `seed`, `label`, `parameters` (A1111 style) and `aigc` (JSON).

    `size` is the modality's shape in words, placed after the seed ({"Size": "28x28"}, {"Duration": "1.02 s", ...}).
    """
    from aigc import __version__

    record = {"model": model, "seeds": seeds, "labels": labels, **parameters}
    prompts = parameters.get("prompts") or ""
    settings = {
        "Seed": seeds[0], **size, "Batch size": len(seeds) if len(seeds) > 1 else None,
        "Steps": parameters.get("sample_steps"), "Sampler": parameters.get("sampler"), "CFG scale": parameters.get("guidance"),
        "Model hash": parameters.get("checkpoint_sha256"), "Model": model, "Step": parameters.get("step"),
        "Label": None if labels is None else ",".join(map(str, labels)), "Version": f"aigc {__version__}",
    }
    return {
        "model": model,
        "seed": ",".join(map(str, seeds)),
        "label": "" if labels is None else ",".join(map(str, labels)),
        "parameters": a1111_parameters(prompts if isinstance(prompts, str) else prompts[0], "", settings),
        "aigc": json.dumps(record, sort_keys=True, ensure_ascii=False, default=str),
    }


# WAV INFO tags: the standard ones for name, comment and software, and one of ours for the JSON record.
WAV_INFO_TAGS = {"model": "INAM", "parameters": "ICMT", "software": "ISFT", "aigc": "AIGC"}


def wav_bytes(waveform: np.ndarray, sample_rate: int, texts: dict[str, str]) -> bytes:
    """16-bit PCM WAV (mono [T] or [T, C]) with a LIST/INFO chunk holding `texts` (keys of WAV_INFO_TAGS)."""
    samples = np.asarray(waveform, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[:, None]  # [T] -> [T, 1]
    channels = samples.shape[1]
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).round().astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, channels, sample_rate, sample_rate * channels * 2, channels * 2, 16)
    entries = b""
    for key, text in texts.items():
        data = text.encode("utf-8") + b"\x00"
        entries += WAV_INFO_TAGS[key].encode("ascii") + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"LIST" + struct.pack("<I", 4 + len(entries)) + b"INFO" + entries
    chunks += b"data" + struct.pack("<I", len(pcm)) + pcm + (b"\x00" if len(pcm) % 2 else b"")
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def read_wav_info(data: bytes) -> dict[str, str]:
    """The INFO texts of a WAV file, by our key names (unknown tags by their four letters)."""
    names = {tag: key for key, tag in WAV_INFO_TAGS.items()}
    info = {}
    position = 12
    while position + 8 <= len(data):
        tag, size = data[position : position + 4], struct.unpack("<I", data[position + 4 : position + 8])[0]
        body = data[position + 8 : position + 8 + size]
        if tag == b"LIST" and body[:4] == b"INFO":
            inner = 4
            while inner + 8 <= len(body):
                key, length = body[inner : inner + 4].decode("ascii", "replace"), struct.unpack("<I", body[inner + 4 : inner + 8])[0]
                info[names.get(key, key)] = body[inner + 8 : inner + 8 + length].rstrip(b"\x00").decode("utf-8", "replace")
                inner += 8 + length + (length % 2)
        position += 8 + size + (size % 2)
    return info

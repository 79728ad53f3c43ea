"""Provenance inside generated files, one format for the CLI, the Python API and the studio.

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
from typing import Any

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

"""What a file can prove about where it came from: `verify(data, name, key)` reads an image (any format
Pillow opens) and reports its invisible watermark and the provenance text it carries, each with what it
proves; `verify_text(text, tokenizer, vocab, key)` does the same for text from a language model.
`aigc verify FILE` prints it; the studio can call it on an upload.
"""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from aigc.errors import AigcError
from aigc.safety.settings import PUBLIC_WATERMARK_KEY


@dataclass(frozen=True)
class Verification:
    kind: str  # "image"
    watermark: dict[str, Any]  # the detection, as data
    metadata: dict[str, Any] = field(default_factory=dict)  # the `aigc` record the file carries, if any
    statements: list[str] = field(default_factory=list)  # what each part proves, in words

    @property
    def marked(self) -> bool:
        return bool(self.watermark.get("present"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify(data: bytes, name: str, key: str = PUBLIC_WATERMARK_KEY) -> Verification:
    """Check the bytes of file `name` for the key's watermark and read its provenance record."""
    from PIL import Image, UnidentifiedImageError

    from aigc.safety.watermark.image import MIN_SIDE, SCHEME, detect

    try:
        picture = Image.open(io.BytesIO(data))
        picture.load()
    except (UnidentifiedImageError, OSError, ValueError):
        raise AigcError(f"{name} is not an image this can read (PNG, JPEG, WebP, ...)", field="file",
                        fix="give a generated image; audio and text are not verified yet") from None
    texts = dict(getattr(picture, "text", {}) or {})
    metadata: dict[str, Any] = {}
    if "aigc" in texts:
        try:
            metadata = json.loads(texts["aigc"])
        except ValueError:
            metadata = {"unreadable": texts["aigc"][:200]}
    array = np.asarray(picture.convert("RGB"))
    result = detect(array, key)
    public = key == PUBLIC_WATERMARK_KEY
    statements = []
    if result.present:
        statements.append(
            f"watermark {SCHEME}: present, {result.bits_correct}/48 bits match the {'public' if public else 'given'} key's payload "
            f"(chance on an unmarked image <= {result.false_positive_bound:.1e}); found at scale {result.scale}, rotation {result.rotation_degrees} degrees. "
            + ("It shows the image was marked with aigc's public key: anyone can detect this mark, and anyone could add it." if public
               else "It shows the image was marked by someone holding this key.")
        )
    else:
        small = min(array.shape[:2]) < MIN_SIDE
        statements.append(
            f"watermark {SCHEME}: not found ({result.bits_correct}/48 bits, as chance would give). "
            + (f"The image is smaller than {MIN_SIDE} px, so it may never have been marked (small images are not). " if small else "")
            + "Absence does not prove a human made it: the mark can be removed by heavy edits, and other tools do not add it."
        )
    if metadata:
        statements.append(f"metadata: the file says it was made by {metadata.get('model', '?')} with seeds {metadata.get('seeds')}; "
                          "this text is not signed, anyone can edit or strip it.")
    else:
        statements.append("metadata: none (stripped, or not made by aigc).")
    detection = {**asdict(result), "scheme": SCHEME, "key": "public" if public else "given"}
    return Verification("image", detection, metadata, statements)


def verify_text(text: str, tokenizer: Any, vocab: int, key: str = PUBLIC_WATERMARK_KEY) -> Verification:
    """Check a text for the key's green-list watermark, retokenised with the tokenizer of the model that
    may have written it (the green lists are over that model's vocabulary)."""
    from aigc.safety.watermark.text import SCHEME, detect_text

    if not text.strip():
        raise AigcError("the text is empty", field="file", fix="give a generated text file")
    result = detect_text(tokenizer.encode(text), vocab, key)
    public = key == PUBLIC_WATERMARK_KEY
    if result.present:
        statement = result.explain() + (". It shows the text was sampled with aigc's public key (anyone can detect it, and anyone could add it)."
                                        if public else ". It shows the text was sampled with this key.")
    else:
        statement = result.explain() + ". Short texts (under ~50 tokens), edited text or another model's tokenizer give low z; absence proves nothing."
    detection = {**dataclasses.asdict(result), "scheme": SCHEME, "key": "public" if public else "given"}
    return Verification("text", detection, {}, [statement])

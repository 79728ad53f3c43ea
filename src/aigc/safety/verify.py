"""What a file can prove about where it came from: `verify(data, name, key, trust_pem)` reads an image (any
format Pillow opens) or a WAV and reports, each with what it proves, its content credentials (a signed C2PA
manifest: safety/credentials.py), its invisible watermark and the provenance text it carries;
`verify_text(text, tokenizer, vocab, key)` does the same for text from a language model.
`aigc verify FILE` prints it; the studio's `POST /api/v1/verify` returns it as JSON.
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

IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif", "TIFF": "image/tiff"}


@dataclass(frozen=True)
class Verification:
    kind: str  # "image" | "audio" | "text"
    watermark: dict[str, Any]  # the detection, as data
    metadata: dict[str, Any] = field(default_factory=dict)  # the `aigc` record the file carries, if any
    statements: list[str] = field(default_factory=list)  # what each part proves, in words
    credentials: dict[str, Any] = field(default_factory=dict)  # the C2PA check (CredentialCheck as data); {} for text

    @property
    def marked(self) -> bool:
        return bool(self.watermark.get("present"))

    @property
    def proven(self) -> bool:
        """Something ties the file to aigc (its watermark, or intact credentials) and nothing is invalid."""
        state = self.credentials.get("state")
        return state != "Invalid" and (self.marked or state in ("Valid", "Trusted"))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "proven": self.proven}


def _record(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return {"unreadable": text[:200]}


def _metadata_statement(metadata: dict[str, Any]) -> str:
    if not metadata:
        return "metadata: none (stripped, or not made by aigc)."
    return (f"metadata: the file says it was made by {metadata.get('model', '?')} with seeds {metadata.get('seeds')}; "
            "this text is not signed (the content credentials are), anyone can edit or strip it.")


def verify(data: bytes, name: str, key: str = PUBLIC_WATERMARK_KEY, trust_pem: bytes | None = None) -> Verification:
    """Check the bytes of file `name`: content credentials (trusted when they chain to a CA in `trust_pem`),
    the key's watermark, and the provenance record it carries."""
    from aigc.safety.credentials import read_credentials

    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        media_type, kind = "audio/wav", "audio"
        detection, metadata, watermark_statement = _audio_watermark(data, name, key)
    else:
        media_type, kind = _image_type(data, name), "image"
        detection, metadata, watermark_statement = _image_watermark(data, key)
    check = read_credentials(data, media_type, trust_pem)
    statements = [check.explain(trust_pem is not None), watermark_statement, _metadata_statement(metadata)]
    return Verification(kind, detection, metadata, statements, asdict(check))


def _image_type(data: bytes, name: str) -> str:
    """The media type by the file's header, so a damaged file is still named (and its credentials read)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as picture:  # reads the header only
            return IMAGE_TYPES.get(picture.format or "", "image/png")
    except (UnidentifiedImageError, OSError, ValueError):
        raise AigcError(f"{name} is not an image or WAV this can read (PNG, JPEG, WebP, WAV, ...)", field="file",
                        fix="give a generated image or WAV clip (text: a .txt file with --model)") from None


def _image_watermark(data: bytes, key: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    from PIL import Image

    from aigc.safety.watermark.image import MIN_SIDE, SCHEME, detect

    try:
        with Image.open(io.BytesIO(data)) as picture:
            metadata = _record(dict(getattr(picture, "text", {}) or {}).get("aigc"))
            array = np.asarray(picture.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as error:  # Pillow's PNG reader raises SyntaxError on a broken chunk
        return {"present": False, "error": str(error)}, {}, f"watermark: not checked, the image data cannot be decoded ({error}): the file is damaged."
    result = detect(array, key)
    public = key == PUBLIC_WATERMARK_KEY
    if result.present:
        statement = (
            f"watermark {SCHEME}: present, {result.bits_correct}/48 bits match the {'public' if public else 'given'} key's payload "
            f"(chance on an unmarked image <= {result.false_positive_bound:.1e}); found at scale {result.scale}, rotation {result.rotation_degrees} degrees. "
            + ("It shows the image was marked with aigc's public key: anyone can detect this mark, and anyone could add it." if public
               else "It shows the image was marked by someone holding this key.")
        )
    else:
        small = min(array.shape[:2]) < MIN_SIDE
        statement = (
            f"watermark {SCHEME}: not found ({result.bits_correct}/48 bits, as chance would give). "
            + (f"The image is smaller than {MIN_SIDE} px, so it may never have been marked (small images are not). " if small else "")
            + "Absence does not prove a human made it: the mark can be removed by heavy edits, and other tools do not add it."
        )
    return {**asdict(result), "scheme": SCHEME, "key": "public" if public else "given"}, metadata, statement


def _audio_watermark(data: bytes, name: str, key: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    import soundfile

    from aigc.generation.metadata import read_wav_info

    try:
        samples, sample_rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError):
        raise AigcError(f"{name} is a RIFF/WAVE file this cannot decode", field="file", fix="give a PCM WAV clip, e.g. one aigc generate wrote") from None
    from aigc.safety.watermark.audio import MIN_SECONDS, SCHEME, detect

    metadata = _record(read_wav_info(data).get("aigc"))
    result = detect(samples, sample_rate, key)
    public = key == PUBLIC_WATERMARK_KEY
    if result.present:
        statement = result.explain() + (". It shows the sound was marked with aigc's public key: anyone can detect this mark, and anyone could add it."
                                        if public else ". It shows the sound was marked by someone holding this key.")
    else:
        statement = (result.explain() + ". "
                     + (f"The clip is shorter than {MIN_SECONDS} s, too short to find the mark reliably. " if result.seconds < MIN_SECONDS else "")
                     + "Absence does not prove a human made it: heavy processing removes the mark, and other tools do not add it.")
    return {**asdict(result), "scheme": SCHEME, "key": "public" if public else "given"}, metadata, statement


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

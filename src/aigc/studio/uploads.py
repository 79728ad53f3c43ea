"""Image uploads: one mechanism for every model whose request takes images (style, AdaIN, fast style,
CycleGAN, captioner), the fields its request class marks with `IMAGE_INPUT` (aigc.generation.requests).

    upload = store_upload(store, data, field="content", max_bytes=..., max_pixels=...)   # checked, stored
    params = {"content": upload.ref, "style": [other.ref]}                               # "upload:<sha256>"
    resolve_uploads(StyleRequest, params, store) -> {"content": "/.../ab/cd/abcd...ef.jpg", ...}

An upload is decoded once, safely (aigc.data.image_files.read_image: the decompression-bomb limit is checked
from the header before any pixel is decoded, a truncated file is refused), and its bytes are stored as
given, content-addressed: its id is the sha256 of the file the user sent (the same file gives the same id,
and it is the `content_sha256` the result's PNG records). Jobs keep the reference, never a path, and each
worker resolves it against the shared store when it runs the job. A plain path in an image field is refused:
a client must not make the server read its own files.

Because the id is printed in every result's metadata, knowing it proves nothing: each account that uploaded
the bytes gets an `upload_owners` row (`claim_upload`), and only owners fetch the file or name it in a job
(`check_owned`: anyone else is told there is no such upload, as for a missing one). The file is deleted when
its last owner is gone (DELETE /api/v1/me, purge) and no job names it any more (`forget_unused`).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Text, cast, delete, func, select

from aigc.errors import AigcError, DataError
from aigc.generation.requests import image_fields
from aigc.studio.db.models import Job, UploadOwner
from aigc.studio.errors import ApiError
from aigc.studio.storage import ArtifactStore

# The image types the studio takes, as Pillow names them, and the suffix each is stored under.
UPLOAD_TYPES = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp"}
MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif", ".bmp": "image/bmp"}
PREFIX = "upload:"
_REF = re.compile(r"^upload:([0-9a-f]{64})$")
_UPLOAD_FIX = "upload the image first (POST /api/v1/uploads, a multipart form with the file) and pass the `ref` it returns"


@dataclass(frozen=True)
class StoredUpload:
    sha256: str  # of the bytes as sent: the upload's id
    key: str  # where the store keeps them
    format: str  # PNG, JPEG, ...
    width: int
    height: int
    size_bytes: int
    notes: list[str] = field(default_factory=list)  # conversions the models will make (CMYK -> RGB, ...)

    @property
    def ref(self) -> str:
        """What a job's image field takes."""
        return PREFIX + self.sha256


def store_upload(store: ArtifactStore, data: bytes, *, field: str, max_bytes: int, max_pixels: int) -> StoredUpload:
    """Check one uploaded file (size, type, a decodable complete image within the pixel limit) and store it.
    Errors are ApiErrors naming `field`: 413 too large (bytes or pixels), 415 not an image type we take,
    422 truncated or damaged."""
    from aigc.data.image_files import read_image

    if len(data) > max_bytes:
        raise ApiError(413, f"the file is {len(data):,} bytes; uploads are at most {max_bytes:,}", field=field, fix="upload a smaller image (or raise AIGC_MAX_UPLOAD_BYTES)")
    if not data:
        raise ApiError(422, "the file is empty", field=field, fix="choose an image file")
    try:
        picture = read_image(data, field=field, max_pixels=max_pixels, max_bytes=max_bytes)
    except DataError as error:
        message = str(error).split("\n")[0].removeprefix(f"{field}: ").replace("upload ", "the file ", 1)
        if "not an image" in message:
            raise ApiError(415, message, field=field, fix=f"upload a {', '.join(UPLOAD_TYPES)} image") from None
        if "megapixels" in message or "bomb" in message:
            raise ApiError(413, message, field=field, fix=f"downscale the image to at most {max_pixels:,} pixels (or raise AIGC_MAX_UPLOAD_PIXELS)") from None
        raise ApiError(422, message, field=field, fix=error.fix) from None
    suffix = UPLOAD_TYPES.get(picture.format)
    if suffix is None:
        raise ApiError(415, f"the file is a {picture.format or 'unknown'} image; the studio takes {', '.join(UPLOAD_TYPES)}", field=field, fix="convert it to PNG or JPEG")
    key = store.put(data, suffix)
    return StoredUpload(picture.sha256, key, picture.format, picture.width, picture.height, len(data), list(picture.notes))


def referenced_uploads(params: Any) -> set[str]:
    """The upload ids (sha256) a job's parameters refer to (`upload:<sha256>` anywhere in them)."""
    if isinstance(params, str):
        match = _REF.match(params)
        return {match.group(1)} if match else set()
    if isinstance(params, dict):
        params = list(params.values())
    if isinstance(params, list):
        return set().union(*(referenced_uploads(item) for item in params)) if params else set()
    return set()


def _owner_is(account_id: int | None):
    return UploadOwner.account_id.is_(None) if account_id is None else UploadOwner.account_id == account_id


def claim_upload(session, sha256: str, account_id: int | None) -> None:
    """Record that `account_id` (None: anonymous loopback use) uploaded these bytes; once per account."""
    if not owns_upload(session, sha256, account_id):
        session.add(UploadOwner(sha256=sha256, account_id=account_id))
    session.commit()


def owns_upload(session, sha256: str, account_id: int | None) -> bool:
    return session.scalar(select(UploadOwner.id).where(UploadOwner.sha256 == sha256, _owner_is(account_id)).limit(1)) is not None


def check_owned(session, params: Any, account_id: int | None, *, prefix: str = "params") -> None:
    """Refuse a job that names an upload this account did not send, with the answer a missing one gets
    (whether someone else's photo exists is not told), naming the field as `params.style.1`."""
    if isinstance(params, dict):
        for name, value in params.items():
            check_owned(session, value, account_id, prefix=f"{prefix}.{name}")
    elif isinstance(params, list):
        for index, value in enumerate(params):
            check_owned(session, value, account_id, prefix=f"{prefix}.{index}")
    else:
        for sha in referenced_uploads(params):
            if not owns_upload(session, sha, account_id):
                raise ApiError(422, f"no upload with id {sha}", field=prefix, fix=_UPLOAD_FIX)


def uploads_owned_by(session, account_id: int | None) -> list[str]:
    return sorted(set(session.scalars(select(UploadOwner.sha256).where(_owner_is(account_id))).all()))


def disown_uploads(session, account_id: int | None = None, *, every_account: bool = False, before=None) -> set[str]:
    """Delete owner rows: one account's (None: the anonymous one), or `every_account`'s, all or those created
    before `before`; commits, and returns the uploads concerned (for `forget_unused`)."""
    condition = [] if every_account else [_owner_is(account_id)]
    if before is not None:
        condition.append(UploadOwner.created_at < before)
    shas = set(session.scalars(select(UploadOwner.sha256).where(*condition)).all())
    session.execute(delete(UploadOwner).where(*condition))
    session.commit()
    return shas


def forget_unused(session, store: ArtifactStore, shas: set[str]) -> int:
    """Delete the files of the uploads among `shas` that nobody owns and no job names; returns how many went."""
    gone = 0
    for sha in sorted(shas):
        owned = session.scalar(select(UploadOwner.id).where(UploadOwner.sha256 == sha).limit(1)) is not None
        named = session.scalar(select(func.count()).select_from(Job).where(cast(Job.params, Text).like(f"%upload:{sha}%")))
        if not owned and not named:
            gone += forget_upload(store, sha)
    return gone


def forget_upload(store: ArtifactStore, sha256: str) -> bool:
    """Delete an upload's stored file and the local copy a worker made of it; True when there was one."""
    key = upload_key(store, sha256)
    if key is None:
        return False
    store.delete(key)
    (Path(tempfile.gettempdir()) / "aigc-uploads" / Path(key).name).unlink(missing_ok=True)
    return True


def upload_key(store: ArtifactStore, sha256: str) -> str | None:
    """The store key of an upload by its id, or None when there is none."""
    for suffix in UPLOAD_TYPES.values():
        key = f"{sha256[:2]}/{sha256[2:4]}/{sha256}{suffix}"
        if store.exists(key):
            return key
    return None


def _local_path(store: ArtifactStore, ref: Any, where: str) -> str:
    if not isinstance(ref, str):
        return ref  # not text: the request class says what it expected
    match = _REF.match(ref)
    if match is None:
        raise AigcError(f"expected an uploaded image ({PREFIX}<sha256>), got {ref[:80]!r}", field=where, fix=_UPLOAD_FIX)
    key = upload_key(store, match.group(1))
    if key is None:
        raise AigcError(f"no upload with id {match.group(1)}", field=where, fix=_UPLOAD_FIX)
    path = store.local_path(key)
    if path is None:  # a store without files (an object store): a copy in a temporary folder
        folder = Path(tempfile.gettempdir()) / "aigc-uploads"
        folder.mkdir(exist_ok=True)
        path = folder / Path(key).name
        if not path.is_file():
            with tempfile.NamedTemporaryFile(dir=folder, delete=False) as handle:
                handle.write(store.read(key))
            shutil.move(handle.name, path)
    return str(path)


def resolve_uploads(request_class: type, params: dict[str, Any], store: ArtifactStore, *, prefix: str = "params") -> dict[str, Any]:
    """`params` with each image field's upload references replaced by the stored files' paths; anything
    else in an image field (a path on the server, a URL) is refused, naming the field."""
    resolved = dict(params)
    for name in image_fields(request_class):
        value = params.get(name)
        if value is None:
            continue
        if isinstance(value, list):
            resolved[name] = [_local_path(store, item, f"{prefix}.{name}.{index}") for index, item in enumerate(value)]
        else:
            resolved[name] = _local_path(store, value, f"{prefix}.{name}")
    return resolved

"""Image uploads for the models that take images (content and style photos, an image to translate or
caption): a multipart form with one file, checked and stored content-addressed (studio/uploads.py)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from aigc.studio.deps import Caller, get_caller, get_services
from aigc.studio.errors import ApiError
from aigc.studio.routes.common import API, errors, file_responses
from aigc.studio.services import Services
from aigc.studio.uploads import MEDIA_TYPES, claim_upload, owns_upload, store_upload, upload_key

router = APIRouter(prefix=API, tags=["uploads"])
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FORM_FIX = "send multipart/form-data with one file part named after the field it is for, e.g. curl -F content=@photo.jpg"


class UploadInfo(BaseModel):
    id: str = Field(description="The sha256 of the file's bytes: the same file always gets the same id.")
    ref: str = Field(description="What a job's image field takes: upload:<id>.")
    field: str = Field(description="The form field the file came in (the request field it is meant for).")
    format: str = Field(description="The image type Pillow read: PNG, JPEG, WEBP, GIF or BMP.")
    width: int
    height: int
    size_bytes: int
    notes: list[str] = Field(description="Conversions the models make, e.g. 'CMYK converted to RGB'.")
    url: str = Field(description="Where the stored file is served.")


_FORM = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "description": "One file part; its name is the request field it is for (content, style, image).",
    "properties": {"content": {"type": "string", "format": "binary"}}, "additionalProperties": {"type": "string", "format": "binary"}}}}}}


@router.post("/uploads", status_code=201, response_model=UploadInfo, responses=errors(401, 413, 415, 422), openapi_extra=_FORM)
async def create_upload(request: Request, services: Services = Depends(get_services), caller: Caller = Depends(get_caller)) -> UploadInfo:
    """Upload one image (PNG, JPEG, WebP, GIF, BMP) for a job's image field, e.g. `curl -F content=@photo.jpg`.
    It is decoded once with the decompression-bomb guard (the pixel limit is read from the header), a cut-short
    file is refused, and the bytes are stored under their sha256. Pass the answer's `ref` in the job's params:
    `{"content": "upload:<id>", "style": ["upload:<id2>"]}`."""
    settings = services.settings
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(415, "expected a multipart/form-data body with the image file", field="body", fix=_FORM_FIX)
    try:
        form = await request.form(max_files=1, max_fields=4, max_part_size=settings.max_upload_bytes + 1)
    except (MultiPartException, HTTPException) as error:  # starlette raises its parser's errors as a 400
        detail = getattr(error, "message", None) or getattr(error, "detail", "")
        raise ApiError(422, f"the form could not be read ({detail})", field="body", fix=_FORM_FIX) from None
    try:
        files = [(name, value) for name, value in form.multi_items() if isinstance(value, UploadFile)]
        if len(files) != 1:
            raise ApiError(422, "the form holds no file", field="body", fix=_FORM_FIX)
        field, file = files[0]
        data = await file.read(settings.max_upload_bytes + 1)
    finally:
        await form.close()
    stored = await run_in_threadpool(store_upload, services.store, data, field=field, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_upload_pixels)
    await run_in_threadpool(_claim, services, stored.sha256, caller)
    return UploadInfo(id=stored.sha256, ref=stored.ref, field=field, format=stored.format, width=stored.width, height=stored.height,
                      size_bytes=stored.size_bytes, notes=stored.notes, url=f"{API}/uploads/{stored.sha256}")


@router.get("/uploads/{upload_id}", response_class=Response, responses=file_responses("The uploaded file, as sent.", *MEDIA_TYPES.values()))
def get_upload(upload_id: str, services: Services = Depends(get_services), caller: Caller = Depends(get_caller)) -> Response:
    """An image you uploaded, by its id (the sha256 of its bytes): the page shows a job's inputs beside its
    results. Someone else's upload answers 404, as a missing one does (its id is in every result's metadata)."""
    key = upload_key(services.store, upload_id) if _SHA256.match(upload_id) and _owns(services, upload_id, caller) else None
    if key is None:
        raise ApiError(404, f"no upload with id {upload_id[:64]!r}", field="upload_id", fix="upload ids are the sha256 (64 hex characters) POST /api/v1/uploads returned")
    headers = {"ETag": f'"{upload_id}"', "Cache-Control": "private, max-age=31536000, immutable"}
    media_type = MEDIA_TYPES["." + key.rsplit(".", 1)[1]]
    path = services.store.local_path(key)
    if path is not None:
        return FileResponse(path, media_type=media_type, headers=headers)
    return Response(services.store.read(key), media_type=media_type, headers=headers)


def _claim(services: Services, sha256: str, caller: Caller) -> None:
    with services.db.session() as session:
        claim_upload(session, sha256, caller.account_id)


def _owns(services: Services, sha256: str, caller: Caller) -> bool:
    with services.db.session() as session:
        return owns_upload(session, sha256, caller.account_id)

"""`POST /api/v1/verify`: what an uploaded image or WAV proves about where it came from — its content
credentials (C2PA), its invisible watermark and its provenance text — the same report as `aigc verify --json`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from aigc.errors import AigcError
from aigc.studio.deps import Caller, get_caller, get_services
from aigc.studio.errors import ApiError
from aigc.studio.routes.common import API, errors
from aigc.studio.services import Services

router = APIRouter(prefix=API, tags=["verify"])
FIELD = "file"
_FIX = "send multipart/form-data with the file in a part named `file`, e.g. curl -F file=@image.png"


class VerifyReport(BaseModel):
    kind: str = Field(description="image or audio")
    proven: bool = Field(description="A watermark or intact content credentials tie the file to aigc, and nothing is invalid.")
    marked: bool = Field(description="The invisible watermark of the studio's key is present.")
    credentials: dict[str, Any] = Field(description="The C2PA check: state none | Invalid | Valid (signer untrusted) | Trusted, signer, created action, failures.")
    watermark: dict[str, Any] = Field(description="The watermark detection, as data.")
    metadata: dict[str, Any] = Field(description="The aigc provenance record the file carries (unsigned text), if any.")
    statements: list[str] = Field(description="What each part proves, in words.")


_FORM = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": [FIELD], "properties": {FIELD: {"type": "string", "format": "binary", "description": "A PNG, JPEG, WebP or WAV file."}}}}}}}


@router.post("/verify", response_model=VerifyReport, responses=errors(401, 413, 415, 422), openapi_extra=_FORM)
async def verify_file(request: Request, services: Services = Depends(get_services), caller: Caller = Depends(get_caller)) -> VerifyReport:
    """Check an uploaded file (`curl -F file=@image.png`): its content credentials (Trusted when the signer
    chains to AIGC_TRUST_ANCHORS), the invisible watermark of the studio's key, and the provenance it carries.
    Nothing is stored. A file that is not an image or WAV is a 415 naming the field `file`."""
    from aigc.safety.settings import SafetySettings
    from aigc.safety.verify import verify

    limit = services.settings.max_upload_bytes
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(415, "expected a multipart/form-data body with the file", field="body", fix=_FIX)
    try:
        form = await request.form(max_files=1, max_fields=2, max_part_size=limit + 1)
    except (MultiPartException, HTTPException) as error:
        raise ApiError(422, f"the form could not be read ({getattr(error, 'message', None) or getattr(error, 'detail', '')})", field="body", fix=_FIX) from None
    try:
        upload = form.get(FIELD)
        if not isinstance(upload, UploadFile):
            raise ApiError(422, "the form has no file part named `file`", field=FIELD, fix=_FIX)
        name, data = upload.filename or FIELD, await upload.read(limit + 1)
    finally:
        await form.close()
    if len(data) > limit:
        raise ApiError(413, f"the file is over {limit:,} bytes", field=FIELD, fix="verify a smaller file (or raise AIGC_MAX_UPLOAD_BYTES)")
    if not data:
        raise ApiError(422, "the file is empty", field=FIELD, fix="choose a generated image or WAV clip")
    safety = SafetySettings.from_env()
    trust = None if safety.trust_anchors is None else safety.trust_anchors.read_bytes()
    try:
        report = await run_in_threadpool(verify, data, name, safety.watermark_key, trust)
    except AigcError as error:
        raise ApiError(415, str(error).split("\n")[0].removeprefix("file: "), field=FIELD, fix=error.fix) from None
    return VerifyReport(proven=report.proven, marked=report.marked, **{key: value for key, value in report.to_dict().items() if key != "proven"})

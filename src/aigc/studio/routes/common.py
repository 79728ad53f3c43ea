"""Shared route helpers: response docs for errors, row -> schema conversion, ownership checks."""

from __future__ import annotations

import re

from sqlalchemy import Select

from aigc.studio.db.models import Artifact, Job
from aigc.studio.deps import Caller
from aigc.studio.errors import ApiError
from aigc.studio.schemas import ArtifactInfo, ErrorResponse, JobInfo
from aigc.studio.validation import readable

API = "/api/v1"
ID = re.compile(r"^[0-9a-f]{32}$")


def errors(*codes: int) -> dict:
    words = {400: "Malformed request", 401: "Missing or invalid API key", 404: "Not found", 409: "Conflict", 413: "Body too large", 415: "Unsupported media type (not an image type the studio takes)", 422: "Invalid input (names the field)", 429: "Rate or queue limit reached", 503: "Service unavailable"}
    # Errors are JSON even where the success is not (/metrics is text): say so beside the route's own type.
    return {code: {"model": ErrorResponse, "description": words.get(code, "Error"), "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}} for code in codes}


def file_responses(description: str, *media_types: str) -> dict:
    """OpenAPI docs of a route that answers with a file (not JSON): its media types, or 401/404 as JSON errors."""
    return {**errors(401, 404), 200: {"content": {media_type: {} for media_type in media_types}, "description": description}}


def owned(query: Select, caller: Caller) -> Select:
    """Jobs the caller may see: their account's, or the anonymous ones for anonymous loopback use; never deleted ones."""
    return query.where(Job.account_id.is_(None) if caller.account_id is None else Job.account_id == caller.account_id, Job.deleted_at.is_(None))


_SUFFIX = {"image/png": ".png", "audio/wav": ".wav", "text/plain; charset=utf-8": ".txt"}


def artifact_filename(job_id: str, index: int, media_type: str) -> str:
    """The name a downloaded artifact gets: aigc-<job id prefix>-<index>.png"""
    return f"aigc-{job_id[:8]}-{index}{_SUFFIX.get(media_type, '')}"


def check_id(value: str, what: str) -> str:
    if not ID.match(value):
        raise ApiError(404, f"no {what} with id {value[:64]!r}", field=f"{what}_id", fix="ids are 32 lowercase hex characters, as returned by the API")
    return value


# Rows are read through `readable`: a stored lone surrogate (written before they were refused) must not
# make a job, a history page or a filter fail.


def artifact_info(artifact: Artifact) -> ArtifactInfo:
    return ArtifactInfo(
        id=artifact.id, job_id=artifact.job_id, index=artifact.index, kind=artifact.kind, media_type=artifact.media_type, sha256=artifact.sha256,
        size_bytes=artifact.size_bytes, seed=artifact.seed, label=artifact.label, width=artifact.width, height=artifact.height, model=artifact.model,
        checkpoint_sha256=artifact.checkpoint_sha256, parameters=readable(artifact.parameters), created_at=artifact.created_at, url=f"{API}/artifacts/{artifact.id}/content",
    )


def job_info(job: Job) -> JobInfo:
    return JobInfo(
        id=job.id, model=job.model, family=job.family, modality=job.modality, params=readable(job.params), status=job.status, progress=job.progress, message=readable(job.message),
        partial_text=readable(job.partial_text), error=readable(job.error), error_field=job.error_field, moderation=readable(job.moderation), cancel_requested=job.cancel_requested, attempts=job.attempts, created_at=job.created_at,
        started_at=job.started_at, finished_at=job.finished_at, duration_ms=job.duration_ms, artifacts=[artifact_info(a) for a in job.artifacts], url=f"{API}/jobs/{job.id}",
        preview_url=f"{API}/jobs/{job.id}/preview" if job.preview_key else None,
    )

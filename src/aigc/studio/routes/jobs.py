"""Jobs: submit (202 + id), status with progress (optionally waiting for the end), cancel, history."""

from __future__ import annotations

import io
import logging
import math
import time
import zipfile
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from aigc.studio.db.models import Artifact, Job, Prompt
from aigc.studio.deps import Caller, get_caller, get_executor, get_services
from aigc.studio.errors import ApiError
from aigc.studio.jobs import queue
from aigc.studio.jobs.base import Executor
from aigc.studio.jobs.queue import FINISHED
from aigc.studio.routes.common import API, artifact_filename, check_id, errors, file_responses, job_info, owned
from aigc.studio.schemas import JobCreate, JobInfo, JobPage
from aigc.studio.services import Services
from aigc.studio.uploads import check_owned
from aigc.studio.validation import validate_job
from aigc.safety import moderate_request, warning_record
from aigc.safety.privacy import scrub_request

router = APIRouter(prefix=API, tags=["jobs"])
# A long poll re-reads its job this often (Celery: always; local executor: backing off to the maximum), since
# each re-read is a query per waiting client: 32 clients at 0.25 s cost more CPU than their jobs' images.
REREAD_SECONDS, MAX_REREAD_SECONDS = 0.25, 2.0
log = logging.getLogger("aigc.studio")


@router.post("/jobs", status_code=202, response_model=JobInfo, responses=errors(400, 401, 413, 422, 429, 503))
def create_job(
    body: JobCreate,
    response: Response,
    services: Services = Depends(get_services),
    executor: Executor = Depends(get_executor),
    caller: Caller = Depends(get_caller),
) -> JobInfo:
    """Queue a generation job. Answers at once with the job (202); poll its `url`, or add `?wait=10`.
    A seed of -1 (or none) is a random one; the job and each artifact record the seed used."""
    settings = services.settings
    with services.db.session() as session:  # only the images this account uploaded (their ids are public)
        check_owned(session, body.params, caller.account_id)
    entry, request = validate_job(services.catalog, body.model, body.params, max_count=settings.max_images_per_job, max_chars=settings.max_string_chars, store=services.store)  # image fields: uploads
    decisions = moderate_request(request, prefix="params.")  # a blocked prompt is a 422 with its reason (ModerationError), before it is queued
    moderation = warning_record(request, decisions, scrub_personal_data=settings.scrub_prompts)  # a warned one runs, and the job says why
    if settings.scrub_prompts:
        request = scrub_request(request)  # personal data never reaches the database, the files' metadata or the model
    job_id = queue.create_job(services, caller, entry, request, moderation)
    try:
        executor.submit(job_id)
    except Exception:
        queue.fail_unsent(services, job_id)
        raise ApiError(503, "the job queue (broker) is unreachable; the job was not accepted", field="AIGC_BROKER_URL", fix="try again later") from None
    log.info("job queued", extra={"job_id": job_id, "model": entry.name, "account": caller.name})
    response.headers["Location"] = f"{API}/jobs/{job_id}"
    return _load_job(services, job_id, caller)


def _load_job(services: Services, job_id: str, caller: Caller) -> JobInfo:
    # Plain rows, not ORM objects: a long poll reads its job again and again, and loading a finished 16-image
    # job through the ORM (identity map, selectin loader, 17 instances) was a quarter of the server's CPU.
    with services.db.session() as session:
        job = session.execute(owned(select(*Job.__table__.columns).where(Job.id == job_id), caller)).mappings().first()
        if job is None:
            raise ApiError(404, f"no job with id {job_id!r}", field="job_id", fix="list your jobs with GET /api/v1/jobs")
        artifacts = session.execute(select(*Artifact.__table__.columns).where(Artifact.job_id == job_id).order_by(Artifact.index)).mappings().all()
    return job_info(SimpleNamespace(**job, artifacts=[SimpleNamespace(**artifact) for artifact in artifacts]))


@router.get("/jobs/{job_id}", response_model=JobInfo, responses=errors(401, 404))
async def get_job(
    request: Request,
    job_id: str,
    wait: float = Query(0, ge=0, le=60, description="Seconds to wait for the job to finish before answering (long poll)."),
    services: Services = Depends(get_services),
    caller: Caller = Depends(get_caller),
) -> JobInfo:
    """A job's status, progress, error and artifacts."""
    check_id(job_id, "job")
    deadline = time.monotonic() + wait
    events = request.app.state.events
    interval = REREAD_SECONDS
    while True:
        entry = events.subscribe(job_id) if wait > 0 else None
        try:
            info = await run_in_threadpool(_load_job, services, job_id, caller)
            remaining = deadline - time.monotonic()
            if info.status in FINISHED or remaining <= 0:
                return info
            # Local workers publish the moment a job moves; jobs run by other processes are seen by re-reading.
            await events.wait(entry, min(remaining, interval))
            if services.settings.executor == "local":  # only another server's threads are not heard: read less often
                interval = min(2 * interval, MAX_REREAD_SECONDS)
        finally:
            if entry is not None:
                events.unsubscribe(job_id, entry)


@router.post("/jobs/{job_id}/cancel", response_model=JobInfo, responses=errors(401, 404, 409))
def cancel_job(job_id: str, services: Services = Depends(get_services), executor: Executor = Depends(get_executor), caller: Caller = Depends(get_caller)) -> JobInfo:
    """Cancel a queued job at once, or a running one at its next step. A finished job cannot be cancelled (409)."""
    check_id(job_id, "job")
    _load_job(services, job_id, caller)  # 404 unless it is the caller's
    queue.cancel_job(services, job_id)
    info = _load_job(services, job_id, caller)
    if info.status in FINISHED and info.status != "cancelled":
        raise ApiError(409, f"the job already {info.status}", field="job_id")
    executor.cancel(job_id)
    return info


@router.delete("/jobs/{job_id}", status_code=204, response_class=Response, responses=errors(401, 404, 409))
def delete_job(job_id: str, services: Services = Depends(get_services), caller: Caller = Depends(get_caller)) -> Response:
    """Delete a finished job with its artifacts and prompt (cancel an unfinished one first: 409)."""
    check_id(job_id, "job")
    queue.delete_job(services, job_id, lambda query: owned(query, caller))
    return Response(status_code=204)


@router.get("/jobs/{job_id}/preview", response_class=Response, responses=file_responses("The running job's latest preview.", "image/png"))
def get_job_preview(job_id: str, services: Services = Depends(get_services), caller: Caller = Depends(get_caller)) -> Response:
    """What a running diffusion job's images look like so far (its `preview_url`); 404 when it has none."""
    check_id(job_id, "job")
    with services.db.session() as session:
        key = session.scalar(owned(select(Job.preview_key).where(Job.id == job_id), caller))
    try:
        data = services.store.read(key) if key else None
    except (FileNotFoundError, KeyError):  # replaced by a newer preview, or the job finished, just now
        data = None
    if data is None:
        raise ApiError(404, "this job has no preview now", field="job_id", fix="previews exist while a diffusion job runs; the results replace them")
    return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/jobs/{job_id}/archive", response_class=Response, responses=file_responses("Every artifact of the job, and job.json.", "application/zip"))
def get_job_archive(job_id: str, services: Services = Depends(get_services), caller: Caller = Depends(get_caller)) -> Response:
    """All of a job's files in one zip (download all), with `job.json` (the job as GET returns it)."""
    check_id(job_id, "job")
    info = _load_job(services, job_id, caller)
    with services.db.session() as session:
        rows = session.execute(select(Artifact.index, Artifact.media_type, Artifact.storage_key).where(Artifact.job_id == job_id).order_by(Artifact.index)).all()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
        for row in rows:
            try:
                archive.writestr(artifact_filename(job_id, row.index, row.media_type), services.store.read(row.storage_key))
            except (FileNotFoundError, KeyError):
                log.warning("artifact file missing from the store", extra={"job_id": job_id, "storage_key": row.storage_key})
        archive.writestr("job.json", info.model_dump_json(indent=2))
    return Response(buffer.getvalue(), media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="aigc-{job_id[:8]}.zip"'})


@router.get("/jobs", response_model=JobPage, responses=errors(401, 422))
def list_jobs(
    page: int = Query(1, ge=1, le=100_000, description="Page number, from 1."),
    per_page: int = Query(20, ge=1, le=100, description="Jobs per page."),
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = Query(None, description="Only jobs with this status."),
    model: str | None = Query(None, max_length=200, description="Only jobs of this model."),
    q: str | None = Query(None, max_length=200, description="Only jobs whose prompt contains this text."),
    created_after: datetime | None = Query(None, description="Only jobs created at or after this time (ISO 8601)."),
    created_before: datetime | None = Query(None, description="Only jobs created before this time (ISO 8601)."),
    services: Services = Depends(get_services),
    caller: Caller = Depends(get_caller),
) -> JobPage:
    """Your history, newest first, with filters."""
    query = owned(select(Job), caller)
    if status:
        query = query.where(Job.status == status)
    if model:
        query = query.where(Job.model == model)
    if q:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.join(Prompt, Job.prompt_id == Prompt.id).where(Prompt.text.ilike(f"%{escaped}%", escape="\\"))
    for name, bound in (("created_after", created_after), ("created_before", created_before)):
        if bound is None:
            continue
        try:
            bound = bound.astimezone(timezone.utc) if bound.tzinfo else bound.replace(tzinfo=timezone.utc)
        except (OverflowError, ValueError):
            raise ApiError(422, "time out of range", field=name) from None
        query = query.where(Job.created_at >= bound if name == "created_after" else Job.created_at < bound)
    with services.db.session() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(query.options(selectinload(Job.artifacts)).order_by(Job.created_at.desc(), Job.id.desc()).offset((page - 1) * per_page).limit(per_page)).all()
        items = [job_info(job) for job in rows]
    return JobPage(items=items, total=total, page=page, per_page=per_page, pages=max(1, math.ceil(total / per_page)))

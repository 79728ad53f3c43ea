"""Jobs: submit (202 + id), status with progress (optionally waiting for the end), cancel, history."""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime, timedelta, timezone
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import func, select, update
from sqlalchemy.orm import selectinload

from aigc.studio.db.models import Job, Prompt, utcnow
from aigc.studio.deps import Caller, get_caller, get_executor, get_services
from aigc.studio.errors import ApiError
from aigc.studio.jobs.base import Executor
from aigc.studio.jobs.runner import FINISHED, QUEUED, RUNNING
from aigc.studio.routes.common import API, check_id, errors, job_info, owned
from aigc.studio.schemas import JobCreate, JobInfo, JobPage
from aigc.studio.services import Services

router = APIRouter(prefix=API, tags=["jobs"])
log = logging.getLogger("aigc.studio")


def _check_limits(services: Services, caller: Caller) -> None:
    """Per key (or anonymous use): jobs submitted in the last minute, and jobs not yet finished."""
    key_filter = Job.api_key_id.is_(None) if caller.key_id is None else Job.api_key_id == caller.key_id
    with services.db.session() as session:
        recent = session.scalar(select(func.count()).select_from(Job).where(key_filter, Job.created_at >= utcnow() - timedelta(minutes=1)))
        if recent >= caller.rate_limit_per_minute:
            raise ApiError(429, f"rate limit: {caller.rate_limit_per_minute} jobs a minute", field="X-API-Key", fix="wait a little and try again", headers={"Retry-After": "10"})
        open_jobs = session.scalar(select(func.count()).select_from(Job).where(key_filter, Job.status.in_((QUEUED, RUNNING))))
        if open_jobs >= caller.queue_limit:
            raise ApiError(429, f"queue limit: {caller.queue_limit} unfinished jobs", field="X-API-Key", fix="wait for your jobs to finish, or cancel some", headers={"Retry-After": "5"})


@router.post("/jobs", status_code=202, response_model=JobInfo, responses=errors(400, 401, 413, 422, 429, 503))
def create_job(
    body: JobCreate,
    response: Response,
    services: Services = Depends(get_services),
    executor: Executor = Depends(get_executor),
    caller: Caller = Depends(get_caller),
) -> JobInfo:
    """Queue a generation job. Answers at once with the job (202); poll its `url`, or add `?wait=10`."""
    settings = services.settings
    entry, request = services.catalog.validate(body.model, body.params, max_count=settings.max_images_per_job, max_chars=settings.max_string_chars)
    _check_limits(services, caller)
    params = request.model_dump(mode="json")
    with services.db.session() as session:
        prompt = None
        if params.get("prompt") or params.get("negative_prompt"):
            prompt = Prompt(text=str(params.get("prompt") or ""), negative_text=str(params.get("negative_prompt") or ""))
            session.add(prompt)
            session.flush()
        job = Job(
            account_id=caller.account_id, api_key_id=caller.key_id, prompt_id=prompt.id if prompt else None, model=entry.name, family=entry.family,
            modality=entry.modality, params=params, batch_key=entry.batch_key(params), executor=settings.executor, message="queued",
        )
        session.add(job)
        session.commit()
        job_id = job.id
    try:
        executor.submit(job_id)
    except Exception:
        with services.db.session() as session:
            session.execute(update(Job).where(Job.id == job_id, Job.status == QUEUED).values(status="failed", error="the job queue is unreachable", finished_at=utcnow()))
            session.commit()
        raise ApiError(503, "the job queue (broker) is unreachable; the job was not accepted", field="AIGC_BROKER_URL", fix="try again later") from None
    log.info("job queued", extra={"job_id": job_id, "model": entry.name, "account": caller.name})
    response.headers["Location"] = f"{API}/jobs/{job_id}"
    return _load_job(services, job_id, caller)


def _load_job(services: Services, job_id: str, caller: Caller) -> JobInfo:
    with services.db.session() as session:
        job = session.scalar(owned(select(Job).options(selectinload(Job.artifacts)).where(Job.id == job_id), caller))
        if job is None:
            raise ApiError(404, f"no job with id {job_id!r}", field="job_id", fix="list your jobs with GET /api/v1/jobs")
        return job_info(job)


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
    while True:
        entry = events.subscribe(job_id) if wait > 0 else None
        try:
            info = await run_in_threadpool(_load_job, services, job_id, caller)
            remaining = deadline - time.monotonic()
            if info.status in FINISHED or remaining <= 0:
                return info
            # Local workers publish the moment a job moves; jobs run by other processes are seen by re-reading.
            await events.wait(entry, min(remaining, 0.25))
        finally:
            if entry is not None:
                events.unsubscribe(job_id, entry)


@router.post("/jobs/{job_id}/cancel", response_model=JobInfo, responses=errors(401, 404, 409))
def cancel_job(job_id: str, services: Services = Depends(get_services), executor: Executor = Depends(get_executor), caller: Caller = Depends(get_caller)) -> JobInfo:
    """Cancel a queued job at once, or a running one at its next step. A finished job cannot be cancelled (409)."""
    check_id(job_id, "job")
    info = _load_job(services, job_id, caller)
    with services.db.session() as session:
        done = session.execute(update(Job).where(Job.id == job_id, Job.status == QUEUED).values(status="cancelled", cancel_requested=True, finished_at=utcnow(), message="cancelled before it started"))
        if done.rowcount == 0:
            session.execute(update(Job).where(Job.id == job_id, Job.status == RUNNING).values(cancel_requested=True, message="cancelling"))
        session.commit()
    info = _load_job(services, job_id, caller)
    if info.status in FINISHED and info.status != "cancelled":
        raise ApiError(409, f"the job already {info.status}", field="job_id")
    executor.cancel(job_id)
    return info


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

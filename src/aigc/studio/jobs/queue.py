"""Job state changes: create (with the submitter's limits, atomically), cancel, delete, release.

Every change is a conditional UPDATE or one transaction, so API servers, worker threads and Celery workers
sharing one database never step on each other. (Claiming and re-queuing stale jobs live in runner.py for
now; they move here beside these.)

Limits are checked and the job inserted in one transaction that first writes the submitter's row in
`submit_locks`. That write holds a row lock on PostgreSQL and MySQL (what SELECT ... FOR UPDATE would
take) and, on SQLite, the database's write lock, taken before the transaction reads anything (what BEGIN
IMMEDIATE does), so a concurrent submit by the same key or client waits there, then counts this job.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from aigc.studio.db.models import Artifact, Job, Prompt, SubmitLock, utcnow
from aigc.studio.errors import ApiError
from aigc.studio.jobs.runner import CANCELLED, FAILED, FINISHED, QUEUED, RUNNING  # (these move here with claim)

log = logging.getLogger("aigc.studio.jobs")


def _subject(caller) -> str:
    """Whose allowance a submit uses: its key's, or an anonymous caller's address's own."""
    return f"key:{caller.key_id}" if caller.key_id is not None else f"client:{caller.client or '-'}"


def _submitter(caller):
    """Jobs counted against the caller's limits."""
    if caller.key_id is not None:
        return Job.api_key_id == caller.key_id
    return (Job.api_key_id.is_(None)) & (Job.client == caller.client)


def _ensure_lock_row(services, subject: str) -> None:
    with services.db.session() as session:
        if session.get(SubmitLock, subject) is not None:
            return
        session.add(SubmitLock(subject=subject))
        try:
            session.commit()
        except IntegrityError:  # another submit made it first: the row is there, which is all we need
            session.rollback()


def create_job(services, caller, entry, request: BaseModel) -> str:
    """Insert a queued job for a validated request, or raise 429 when the caller's rate or queue limit
    is reached; the check and the insert are one transaction under the submitter's lock."""
    params: dict[str, Any] = request.model_dump(mode="json")
    subject = _subject(caller)
    _ensure_lock_row(services, subject)
    with services.db.session() as session:
        session.execute(update(SubmitLock).where(SubmitLock.subject == subject).values(touched_at=utcnow()))  # the lock: first statement
        mine = _submitter(caller)
        recent = session.scalar(select(func.count()).select_from(Job).where(mine, Job.created_at >= utcnow() - timedelta(minutes=1)))
        if recent >= caller.rate_limit_per_minute:
            raise ApiError(429, f"rate limit: {caller.rate_limit_per_minute} jobs a minute", field="X-API-Key", fix="wait a little and try again", headers={"Retry-After": "10"})
        open_jobs = session.scalar(select(func.count()).select_from(Job).where(mine, Job.status.in_((QUEUED, RUNNING))))
        if open_jobs >= caller.queue_limit:
            raise ApiError(429, f"queue limit: {caller.queue_limit} unfinished jobs", field="X-API-Key", fix="wait for your jobs to finish, or cancel some", headers={"Retry-After": "5"})
        prompt = None
        if params.get("prompt") or params.get("negative_prompt"):
            prompt = Prompt(text=str(params.get("prompt") or ""), negative_text=str(params.get("negative_prompt") or ""))
            session.add(prompt)
            session.flush()
        job = Job(
            account_id=caller.account_id, api_key_id=caller.key_id, client=None if caller.key_id is not None else caller.client,
            prompt_id=prompt.id if prompt else None, model=entry.name, family=entry.family, modality=entry.modality, params=params,
            batch_key=entry.batch_key(params), executor=services.settings.executor, message="queued",
        )
        session.add(job)
        session.commit()
        return job.id


def fail_unsent(services, job_id: str) -> None:
    """The executor could not be told about a committed job (the broker is down): it fails, visibly."""
    with services.db.session() as session:
        session.execute(update(Job).where(Job.id == job_id, Job.status == QUEUED).values(status=FAILED, error="the job queue is unreachable", finished_at=utcnow()))
        session.commit()


def cancel_job(services, job_id: str) -> None:
    """A queued job is cancelled at once; a running one is asked to stop at its next step."""
    with services.db.session() as session:
        done = session.execute(update(Job).where(Job.id == job_id, Job.status == QUEUED).values(status=CANCELLED, cancel_requested=True, finished_at=utcnow(), message="cancelled before it started"))
        if done.rowcount == 0:
            session.execute(update(Job).where(Job.id == job_id, Job.status == RUNNING).values(cancel_requested=True, message="cancelling"))
        session.commit()
    services.events.publish(job_id)


def delete_job(services, job_id: str, visible) -> None:
    """Delete a finished job's content: its artifacts (rows, and files no other artifact shares), prompt
    and parameters. The row stays, contentless and hidden, so deleting does not reset a rate limit.
    `visible(query)` restricts to the caller's jobs. 404 when not theirs, 409 while it is unfinished."""
    with services.db.session() as session:
        job = session.scalar(visible(select(Job).where(Job.id == job_id)))
        if job is None:
            raise ApiError(404, f"no job with id {job_id!r}", field="job_id", fix="list your jobs with GET /api/v1/jobs")
        gone = session.execute(
            update(Job).where(Job.id == job_id, Job.status.in_(FINISHED), Job.deleted_at.is_(None))
            .values(deleted_at=utcnow(), params={}, prompt_id=None, partial_text=None, error=None, message="deleted")
        )
        if gone.rowcount == 0:
            raise ApiError(409, f"the job is {job.status}: cancel it first, then delete it", field="job_id", fix=f"POST /api/v1/jobs/{job_id}/cancel")
        keys = session.scalars(select(Artifact.storage_key).where(Artifact.job_id == job_id)).all()
        session.execute(delete(Artifact).where(Artifact.job_id == job_id))
        if job.prompt_id is not None:
            session.execute(delete(Prompt).where(Prompt.id == job.prompt_id))
        session.commit()
        shared = set(session.scalars(select(Artifact.storage_key).where(Artifact.storage_key.in_(keys))).all()) if keys else set()
    for key in set(keys) - shared:  # content-addressed: equal bytes from another job stay
        services.store.delete(key)
    log.info("job deleted", extra={"job_id": job_id, "files": len(set(keys) - shared)})


def release(services, worker_ids: list[str], reason: str) -> list[str]:
    """Put the running jobs of these workers back in the queue (a server stopping before they finished);
    their workers see at their next step that the jobs are no longer theirs. The attempt is not counted
    against `max_attempts`: stopping the server is not the job's fault. Returns the job ids."""
    if not worker_ids:
        return []
    with services.db.session() as session:
        held = session.scalars(select(Job.id).where(Job.status == RUNNING, Job.worker_id.in_(worker_ids))).all()
        if held:
            session.execute(
                update(Job).where(Job.id.in_(held), Job.status == RUNNING, Job.worker_id.in_(worker_ids))
                .values(status=QUEUED, worker_id=None, lease_until=None, progress=0.0, attempts=Job.attempts - 1, message=reason)
            )
        session.commit()
    for job_id in held:
        services.events.publish(job_id)
    return list(held)

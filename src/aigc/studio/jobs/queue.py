"""Job state changes: create (with the submitter's limits, atomically), claim, re-queue, cancel, delete, release.

The database is the source of truth. A job moves queued -> running -> succeeded | failed | cancelled, and
every move is a conditional UPDATE (`... WHERE status = 'queued'`) or one transaction, so API servers,
worker threads and Celery workers sharing one database never step on each other: two workers never run
the same job. A running job holds a lease that its worker renews; a job whose lease ran out, or whose
worker process on this host is gone, goes back to the queue (`requeue_stale`), so a restart loses nothing
that was accepted. Running a claimed job is runner.py's.

Limits are checked and the job inserted in one transaction that first writes the submitter's row in
`submit_locks`. That write holds a row lock on PostgreSQL and MySQL (what SELECT ... FOR UPDATE would
take) and, on SQLite, the database's write lock, taken before the transaction reads anything (what BEGIN
IMMEDIATE does), so a concurrent submit by the same key or client waits there, then counts this job.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from aigc.studio.db.models import Artifact, Job, Prompt, SubmitLock, utcnow
from aigc.studio.errors import ApiError

log = logging.getLogger("aigc.studio.jobs")

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
FINISHED = (SUCCEEDED, FAILED, CANCELLED)


def worker_identity(name: str = "") -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{name or threading.current_thread().name}"


def lease_until(services) -> datetime:
    return utcnow() + timedelta(seconds=services.settings.job_lease_seconds)


def _claimed(services, worker_id: str) -> dict[str, Any]:
    """What a claim writes into a queued job's row."""
    return {"status": RUNNING, "worker_id": worker_id, "started_at": utcnow(), "lease_until": lease_until(services), "attempts": Job.attempts + 1, "message": "starting"}


def claim(services, job_id: str, worker_id: str) -> bool:
    """Take one queued job; True if this worker got it."""
    with services.db.session() as session:
        result = session.execute(update(Job).where(Job.id == job_id, Job.status == QUEUED).values(**_claimed(services, worker_id)))
        session.commit()
        return result.rowcount == 1


def claim_batch(services, worker_id: str) -> list[str]:
    """The oldest queued job, plus queued jobs of the same model and settings (up to `batch_jobs`), claimed
    with one conditional UPDATE (one commit for the batch); returns the ones this worker got, oldest first."""
    with services.db.session() as session:
        first = session.execute(select(Job.id, Job.batch_key).where(Job.status == QUEUED).order_by(Job.created_at, Job.id).limit(1)).first()
    if first is None:
        return []
    return _claim_together(services, worker_id, first.batch_key, [first.id], services.settings.batch_jobs)


def claim_companions(services, job_id: str, worker_id: str) -> list[str]:
    """For a job this worker has claimed by id (a Celery delivery): queued jobs that can share its forward pass
    (the same batch key: model and settings), up to `batch_jobs` - 1 of them, claimed too. Their own messages,
    delivered later, find them taken and are skipped, as any redelivery is."""
    if services.settings.batch_jobs <= 1:
        return []
    with services.db.session() as session:
        key = session.scalar(select(Job.batch_key).where(Job.id == job_id))
    return _claim_together(services, worker_id, key, [], services.settings.batch_jobs - 1) if key else []  # (it is running: not queued)


def _claim_together(services, worker_id: str, batch_key: str, first: list[str], limit: int) -> list[str]:
    """`first` and the oldest other queued jobs of `batch_key`, `limit` in all, claimed in one UPDATE; those got."""
    with services.db.session() as session:
        query = select(Job.id).where(Job.status == QUEUED, Job.batch_key == batch_key, Job.id.not_in(first))
        wanted = [*first, *session.scalars(query.order_by(Job.created_at, Job.id).limit(limit - len(first))).all()]
        if not wanted:
            return []
        session.execute(update(Job).where(Job.id.in_(wanted), Job.status == QUEUED).values(**_claimed(services, worker_id)))
        session.commit()
        got = set(session.scalars(select(Job.id).where(Job.id.in_(wanted), Job.status == RUNNING, Job.worker_id == worker_id)).all())
    return [job_id for job_id in wanted if job_id in got]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def requeue_stale(services, requeued: list[str] | None = None) -> int:
    """Running jobs whose lease ran out, or whose worker process on this host has exited, go back to the queue
    (or fail, after `max_attempts` tries). Returns how many were moved; the ids of those queued again are
    appended to `requeued` (a broker's executor sends them again: their message was used up)."""
    host = socket.gethostname()
    now = utcnow()
    moved = 0
    with services.db.session() as session:
        rows = session.execute(select(Job.id, Job.worker_id, Job.lease_until, Job.attempts).where(Job.status == RUNNING)).all()
        for row in rows:
            owner_host, _, rest = (row.worker_id or "").partition(":")
            pid_text = rest.partition(":")[0]
            dead_here = owner_host == host and pid_text.isdigit() and int(pid_text) != os.getpid() and not _pid_alive(int(pid_text))
            expired = row.lease_until is not None and row.lease_until < now
            if not (dead_here or expired):
                continue
            if row.attempts >= services.settings.max_attempts:
                values: dict[str, Any] = {"status": FAILED, "error": f"gave up after {row.attempts} attempts: the worker stopped each time", "finished_at": now, "lease_until": None}
            else:
                values = {"status": QUEUED, "worker_id": None, "lease_until": None, "progress": 0.0, "message": "re-queued after its worker stopped"}
            result = session.execute(update(Job).where(Job.id == row.id, Job.status == RUNNING, Job.worker_id == row.worker_id).values(**values))
            moved += result.rowcount
            if result.rowcount and values["status"] == QUEUED and requeued is not None:
                requeued.append(row.id)
            if result.rowcount:
                log.warning("job re-queued", extra={"job_id": row.id, "worker_id": row.worker_id, "to": values["status"]})
        session.commit()
    return moved


def queue_depth(services) -> int:
    with services.db.session() as session:
        return session.scalar(select(func.count()).select_from(Job).where(Job.status == QUEUED)) or 0


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


def create_job(services, caller, entry, request: BaseModel, moderation: dict[str, Any] | None = None) -> str:
    """Insert a queued job for a validated request, or raise 429 when the caller's rate or queue limit
    is reached; the check and the insert are one transaction under the submitter's lock. `moderation` is
    the warned decision stored with the job (safety.warning_record)."""
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
            batch_key=entry.batch_key(params), executor=services.settings.executor, message="queued", moderation=moderation,
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
        gone = session.execute(update(Job).where(Job.id == job_id, Job.status.in_(FINISHED), Job.deleted_at.is_(None)).values(deleted_at=utcnow()))
        if gone.rowcount == 0:
            raise ApiError(409, f"the job is {job.status}: cancel it first, then delete it", field="job_id", fix=f"POST /api/v1/jobs/{job_id}/cancel")
        files = remove_jobs(services, session, [job_id], rows=False)
    log.info("job deleted", extra={"job_id": job_id, "files": files})


def remove_jobs(services, session, job_ids: list[str], *, rows: bool) -> int:
    """Delete finished jobs' content in `session`, and commit: artifact rows, prompts, and either the job
    rows themselves (`rows`: purging) or what they hold (parameters, text, error, moderation note: a
    deleted job's row stays for rate limits). Then the files no other artifact shares (equal bytes from
    another job stay: the store is content-addressed), and the uploaded images no other job names. The
    database commits first, so a crash in between leaves files no row names, never a row whose file is
    gone. Returns how many files went."""
    from aigc.studio.uploads import forget_unused, referenced_uploads

    keys = set(session.scalars(select(Artifact.storage_key).where(Artifact.job_id.in_(job_ids))).all())
    prompt_ids = [i for i in session.scalars(select(Job.prompt_id).where(Job.id.in_(job_ids))).all() if i is not None]
    uploads = referenced_uploads(list(session.scalars(select(Job.params).where(Job.id.in_(job_ids))).all()))  # the images these jobs were made from
    session.execute(delete(Artifact).where(Artifact.job_id.in_(job_ids)))
    if rows:
        session.execute(delete(Job).where(Job.id.in_(job_ids)))
    else:
        session.execute(update(Job).where(Job.id.in_(job_ids), Job.deleted_at.is_(None)).values(deleted_at=utcnow()))
        session.execute(update(Job).where(Job.id.in_(job_ids)).values(params={}, prompt_id=None, partial_text=None, error=None, moderation=None, message="deleted"))
    if prompt_ids:
        session.execute(delete(Prompt).where(Prompt.id.in_(prompt_ids)))
    session.commit()
    shared = set(session.scalars(select(Artifact.storage_key).where(Artifact.storage_key.in_(keys))).all()) if keys else set()
    for key in keys - shared:
        services.store.delete(key)
    # An uploaded image stays while an account owns it or a job names it (studio/uploads.py).
    return len(keys - shared) + forget_unused(session, services.store, uploads)


def _chunks(items: list, size: int = 500):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def delete_all(services, visible, wait_seconds: float = 10.0) -> dict[str, int]:
    """Delete everything a caller has (`visible(query)` picks their jobs): queued jobs are cancelled,
    running ones asked to stop (and waited for up to `wait_seconds`), then every finished job's content
    goes as `delete_job` removes it. Returns {"jobs", "files", "still_running"}; a job still running
    after the wait keeps its content (asking again deletes it)."""
    with services.db.session() as session:
        open_ids = session.scalars(visible(select(Job.id).where(Job.status.in_((QUEUED, RUNNING))))).all()
    for job_id in open_ids:
        cancel_job(services, job_id)
    deadline = time.monotonic() + wait_seconds
    running = len(open_ids)
    while running and time.monotonic() < deadline:
        time.sleep(0.1)
        with services.db.session() as session:
            running = session.scalar(select(func.count()).select_from(visible(select(Job.id).where(Job.status.in_((QUEUED, RUNNING)))).subquery())) or 0
    jobs = files = 0
    with services.db.session() as session:
        ids = session.scalars(visible(select(Job.id).where(Job.status.in_(FINISHED)))).all()
        for chunk in _chunks(list(ids)):
            files += remove_jobs(services, session, chunk, rows=False)
            jobs += len(chunk)
    log.info("account content deleted", extra={"jobs": jobs, "files": files, "still_running": running})
    return {"jobs": jobs, "files": files, "still_running": running}


def purge(services, older_than_days: float, *, dry_run: bool = False) -> dict[str, int]:
    """The retention period: finished jobs created more than `older_than_days` ago go entirely (rows,
    prompts, artifacts, files no newer job shares); deleted jobs' contentless rows too. Unfinished jobs
    stay. Uploads claimed before the cutoff lose that claim, and go when no job names them. With `dry_run`
    nothing is deleted. Returns {"jobs", "artifacts", "bytes", "files"}."""
    from aigc.studio.uploads import disown_uploads, forget_unused

    cutoff = utcnow() - timedelta(days=older_than_days)
    with services.db.session() as session:
        ids = list(session.scalars(select(Job.id).where(Job.status.in_(FINISHED), Job.created_at < cutoff)).all())
        artifacts, size = session.execute(select(func.count(), func.sum(Artifact.size_bytes)).where(Artifact.job_id.in_(select(Job.id).where(Job.status.in_(FINISHED), Job.created_at < cutoff)))).one()
        report = {"jobs": len(ids), "artifacts": int(artifacts or 0), "bytes": int(size or 0), "files": 0}
        if not dry_run:
            for chunk in _chunks(ids):
                report["files"] += remove_jobs(services, session, chunk, rows=True)
            # Uploads are kept as long as jobs: an owner's claim older than the period goes too.
            report["files"] += forget_unused(session, services.store, disown_uploads(session, every_account=True, before=cutoff))
    log.info("purged" if not dry_run else "purge (dry run)", extra={**report, "older_than_days": older_than_days})
    return report


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

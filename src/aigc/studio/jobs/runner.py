"""The one job function, shared by every executor: run jobs a worker claimed (jobs/queue.py), generate
through the one generation path, store the files, record progress — renewing the jobs' leases meanwhile.

Claimed image and audio jobs of one model and settings run together (`_run_together`): their requests are
merged into one (`GenerationRequest.merge`: each sample keeps its own seed), generated in one forward pass,
split back per job (`part`), encoded outside the model lock, and all of them stored in one transaction — so
every job gets exactly the files it would have got alone. A job that cannot join (text, a resumed attempt,
a latent walk, more images than `batch_images`) runs alone, chunk by chunk (`_run_one`).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update

from aigc.errors import AigcError
from aigc.generation import pipeline
from aigc.generation.requests import GenerationRequest
from aigc.safety import default_policy
from aigc.studio.db.models import Artifact, Job, utcnow
from aigc.studio.jobs.queue import CANCELLED, FAILED, RUNNING, SUCCEEDED, claim, claim_companions, lease_until, worker_identity
from aigc.studio.services import Services
from aigc.studio.uploads import resolve_uploads

log = logging.getLogger("aigc.studio.jobs")


def _milliseconds(start: datetime | None, end: datetime) -> int | None:
    return None if start is None else int((end - start).total_seconds() * 1000)


class LeaseKeeper:
    """Renews the leases of the jobs a worker holds, from a background thread, while it runs them."""

    def __init__(self, services: Services, worker_id: str, job_ids: list[str]):
        self.services, self.worker_id, self.job_ids = services, worker_id, list(job_ids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{worker_id}", daemon=True)

    def _run(self) -> None:
        interval = self.services.settings.job_lease_seconds / 3
        while not self._stop.wait(interval):
            try:
                with self.services.db.session() as session:
                    session.execute(update(Job).where(Job.id.in_(self.job_ids), Job.status == RUNNING, Job.worker_id == self.worker_id).values(lease_until=lease_until(self.services)))
                    session.commit()
            except Exception:  # a database hiccup: the next beat tries again
                log.exception("lease renewal failed")

    def __enter__(self) -> "LeaseKeeper":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _finish_values(status: str, created_at: datetime | None, started_at: datetime | None, *, error: str | None = None, error_field: str | None = None, message: str = "") -> dict[str, Any]:
    now = utcnow()
    values: dict[str, Any] = {"status": status, "finished_at": now, "lease_until": None, "message": message or status, "error": error, "error_field": error_field}
    values["duration_ms"] = _milliseconds(created_at, now)
    values["run_ms"] = _milliseconds(started_at, now)
    if status == SUCCEEDED:
        values["progress"] = 1.0
    return values


def _finish(services: Services, job_id: str, worker_id: str, status: str, *, error: str | None = None, error_field: str | None = None, message: str = "") -> None:
    with services.db.session() as session:
        times = session.execute(select(Job.created_at, Job.started_at).where(Job.id == job_id)).first()
        values = _finish_values(status, *(times or (None, None)), error=error, error_field=error_field, message=message)
        session.execute(update(Job).where(Job.id == job_id, Job.status == RUNNING, Job.worker_id == worker_id).values(**values))
        session.commit()
    services.events.publish(job_id)
    log.info("job finished", extra={"job_id": job_id, "status": status, "error": error})


class _Taken(Exception):
    """The job is no longer this worker's (cancelled, or re-queued after its lease ran out)."""


def _stream_text(services: Services, job_id: str, worker_id: str, model: Any, lock: threading.Lock, request: Any) -> Any:
    """Stream one text into the job, saving the text so far every `stream_flush_seconds` (readers see it in
    `partial_text`); a cancel stops it at the next save. Returns the artifact `generate` makes for the request."""
    pieces: list[str] = []
    last = time.monotonic()

    def save() -> None:
        with services.db.session() as session:
            result = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == RUNNING, Job.worker_id == worker_id, Job.cancel_requested.is_(False))
                .values(partial_text="".join(pieces), message=f"{len(pieces)} pieces", lease_until=lease_until(services))
            )
            session.commit()
        if result.rowcount != 1:
            raise _Taken("cancelled")
        services.events.publish(job_id)

    with lock:
        streamed = pipeline.stream(model.module, request, info=model.info, policy=default_policy())
        for piece in streamed:
            pieces.append(piece)
            if time.monotonic() - last >= services.settings.stream_flush_seconds:
                save()
                last = time.monotonic()
    return streamed.artifact


class _StepProgress:
    """Reports progress inside a chunk (diffusion steps) to the job row, at most every `progress_seconds`, and
    every `preview_seconds` a preview PNG of the images forming (the job's `preview_key`; the previous one is
    deleted). Previews are only drawn when they will be stored."""

    def __init__(self, services: Services, job_id: str, worker_id: str, total: int):
        self.services, self.job_id, self.worker_id, self.total = services, job_id, worker_id, total
        self.done, self.size = 0, 0  # samples before the current chunk, and its size
        self.preview_key: str | None = None  # the stored preview, deleted when replaced or when the job ends
        self._last = self._last_preview = time.monotonic()

    def chunk(self, done: int, size: int) -> "_StepProgress":
        self.done, self.size = done, size
        return self

    def __call__(self, step: int, steps: int, preview=None) -> None:
        settings = self.services.settings
        now = time.monotonic()
        if now - self._last < settings.progress_seconds or step >= steps:
            return
        self._last = now
        made = self.done + self.size * step / steps
        values = {"progress": min(made / self.total, 0.999), "message": f"{self.done}/{self.total}, step {step}/{steps}", "lease_until": lease_until(self.services)}
        if preview is not None and now - self._last_preview >= settings.preview_seconds:
            self._last_preview = now
            values["preview_key"] = self.services.store.put(_preview_png(preview()), ".png")
        with self.services.db.session() as session:
            session.execute(update(Job).where(Job.id == self.job_id, Job.status == RUNNING, Job.worker_id == self.worker_id).values(**values))
            session.commit()
        if "preview_key" in values:
            old, self.preview_key = self.preview_key, values["preview_key"]
            if old and old != self.preview_key:
                _forget_preview(self.services, old)
        self.services.events.publish(self.job_id)

    def __enter__(self) -> "_StepProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """The job ended (done, failed, cancelled): its preview goes."""
        if self.preview_key is None:
            return
        with self.services.db.session() as session:
            session.execute(update(Job).where(Job.id == self.job_id).values(preview_key=None))
            session.commit()
        _forget_preview(self.services, self.preview_key)
        self.preview_key = None


def _preview_png(images) -> bytes:
    """A grid of the images so far (no metadata: a preview is not an artifact)."""
    from aigc.generation.metadata import png_bytes
    from aigc.generation.outputs import ImageBatch

    batch = ImageBatch(images=images, seeds=list(range(len(images))), labels=None, model="preview")
    return png_bytes(batch.grid(), {})


def _forget_preview(services: Services, key: str) -> None:
    try:
        services.store.delete(key)
    except (FileNotFoundError, KeyError):
        pass


def _stored_indices(services: Services, job_id: str) -> set[int]:
    """Samples an earlier attempt of this job already stored (each chunk is stored in one transaction)."""
    with services.db.session() as session:
        return set(session.scalars(select(Artifact.index).where(Artifact.job_id == job_id)).all())


def _artifacts(job_id: str, start: int, files: list, keys: list[str], entry: Any) -> list[dict[str, Any]]:
    """The rows of a job's stored files, samples start, start + 1, ...: values for one bulk INSERT (ORM objects
    through the unit of work cost several times the CPU for a 16-image job)."""
    return [
        dict(
            job_id=job_id, index=start + offset, kind=file.kind, media_type=file.media_type, sha256=key.rsplit("/", 1)[-1].split(".")[0],
            storage_key=key, size_bytes=len(file.data), seed=file.seed, label=file.label, width=file.width, height=file.height,
            model=entry.name, checkpoint_sha256=entry.checkpoint_sha256, parameters=file.record,
        )
        for offset, (file, key) in enumerate(zip(files, keys))
    ]


def _insert_artifacts(session: Any, rows: list[dict[str, Any]]) -> None:
    if rows:  # (an empty executemany is an error)
        session.execute(insert(Artifact), rows)


_UNMERGED: set[str] = set()  # models whose generate did not honour a merged request's seeds: their jobs run alone


def _run_together(services: Services, job_ids: list[str], worker_id: str, model: Any, lock: threading.Lock) -> list[str]:
    """Run claimed jobs of one model that can share a forward pass (see the module docstring), up to
    `batch_images` images per pass; returns the jobs left to run alone. Anything unexpected while merging or
    generating a group sends its jobs to run alone, where each succeeds or fails on its own."""
    with services.db.session() as session:  # every job's row in one query
        rows = {row.id: row for row in session.execute(
            select(Job.id, Job.model, Job.params, Job.created_at, Job.started_at, Job.attempts, Job.cancel_requested).where(Job.id.in_(job_ids))
        )}
    entry = services.catalog.get(rows[job_ids[0]].model) if job_ids and job_ids[0] in rows else None
    if len(rows) < 2 or entry is None or entry.modality not in ("image", "audio") or entry.name in _UNMERGED:
        return list(job_ids)
    limit = services.settings.batch_images
    alone, groups, group, images = [], [], [], 0
    for job_id in job_ids:
        row = rows.get(job_id)
        try:
            request = pipeline.validate(model.module, resolve_uploads(entry.request_class, dict(row.params), services.store)) if row else None
        except Exception:  # a bad request fails alone, with its own message
            request = None
        if request is None or row.attempts > 1 or row.cancel_requested or not request.chunkable() or request.count > limit:
            alone.append(job_id)
            continue
        if images + request.count > limit:
            groups.append(group)
            group, images = [], 0
        group.append((row, request))
        images += request.count
    groups.append(group)
    for group in groups:
        if len(group) < 2:
            alone.extend(row.id for row, _ in group)
            continue
        started = time.perf_counter()
        try:
            merged = GenerationRequest.merge([request for _, request in group], entry.num_classes)
            with lock:
                output = model.generate(merged, policy=default_policy())
        except Exception:
            log.info("jobs run alone: merging or generating them together failed", exc_info=True, extra={"jobs": [row.id for row, _ in group]})
            alone.extend(row.id for row, _ in group)
            continue
        if list(output.seeds) != merged.sample_seeds():  # the family drew its own seeds: its samples are not the jobs'
            _UNMERGED.add(entry.name)
            alone.extend(row.id for row, _ in group)
            continue
        _store_together(services, worker_id, entry, group, output, time.perf_counter() - started)
    alone_ids = set(alone)
    return [job_id for job_id in job_ids if job_id in alone_ids]


def _store_together(services: Services, worker_id: str, entry: Any, group: list, output: Any, seconds: float) -> None:
    """Split a merged artifact per job, encode its files (the model lock is free meanwhile), store them, and
    finish every job in one transaction; a job cancelled or taken meanwhile keeps nothing."""
    parts, start = [], 0
    for row, request in group:
        parts.append((row, output.part(start, start + request.count).files()))
        start += request.count
    keys = iter(services.store.put_many([(file.data, file.suffix) for _, files in parts for file in files]))
    message = f"done in {seconds:.3f}s, with {len(group) - 1} other job(s) in one batch"
    lost = []
    with services.db.session() as session:
        for row, files in parts:
            job_keys = [next(keys) for _ in files]
            values = _finish_values(SUCCEEDED, row.created_at, row.started_at, message=message)
            result = session.execute(
                update(Job).where(Job.id == row.id, Job.status == RUNNING, Job.worker_id == worker_id, Job.cancel_requested.is_(False)).values(**values)
            )
            if result.rowcount != 1:
                lost.append(row.id)
                continue
            _insert_artifacts(session, _artifacts(row.id, 0, files, job_keys, entry))
        session.commit()
        cancelled = set(session.scalars(select(Job.id).where(Job.id.in_(lost), Job.status == RUNNING, Job.worker_id == worker_id, Job.cancel_requested.is_(True))).all()) if lost else set()
    for row, _ in group:
        if row.id in cancelled:
            _finish(services, row.id, worker_id, CANCELLED, message="cancelled while running")
        else:
            services.events.publish(row.id)
    log.info("jobs finished together", extra={"jobs": len(group), "images": start, "seconds": round(seconds, 3)})


def _run_one(services: Services, job_id: str, worker_id: str, model: Any, lock: threading.Lock) -> None:
    """Generate a claimed job chunk by chunk through the generation pipeline. Each chunk's artifacts,
    progress and lease go in one transaction, guarded by `status = running AND worker = me AND not
    cancel_requested`; the last one also marks the job succeeded. A job re-queued after a crash resumes:
    chunks an earlier attempt stored whole are kept, and a partly stored one is replaced, so every sample
    is stored exactly once."""
    with services.db.session() as session:
        job = session.get(Job, job_id)
        if job is None:
            return
        params, model_name, created_at, started_at, attempts = dict(job.params), job.model, job.created_at, job.started_at, job.attempts
        if job.cancel_requested:
            raise _Taken("cancelled")
    entry = services.catalog.get(model_name)
    request = pipeline.validate(model.module, resolve_uploads(entry.request_class, params, services.store))  # uploads: their stored files
    started = time.perf_counter()
    if pipeline.can_stream(model.module, request) and entry.modality == "text":
        chunks = [(0, request)]
        streamed = _stream_text(services, job_id, worker_id, model, lock, request)
    else:
        chunks = request.chunks(services.settings.chunk_images, entry.num_classes)
        streamed = None
    stored = _stored_indices(services, job_id) if attempts > 1 else set()  # a first attempt has stored nothing
    total = request.count
    made = 0
    with _StepProgress(services, job_id, worker_id, total) as progress:  # its preview goes when the job ends, however
        for number, (start, chunk) in enumerate(chunks, 1):
            indices = set(range(start, start + chunk.count))
            last = number == len(chunks)
            if indices <= stored and not last:
                made += chunk.count  # stored whole by an earlier attempt
                continue
            if streamed is not None:
                output = streamed
            else:
                with lock:
                    output = model.generate(chunk, policy=default_policy(), progress=progress.chunk(made, chunk.count))
            files = [] if indices <= stored else output.files()
            keys = services.store.put_many([(file.data, file.suffix) for file in files])
            made += chunk.count
            if last:
                values = _finish_values(SUCCEEDED, created_at, started_at, message=f"done in {time.perf_counter() - started:.3f}s")
                if streamed is not None:
                    values["partial_text"] = streamed.texts[0]
            else:
                values = {"progress": min(made / total, 1.0), "message": f"{made}/{total}", "lease_until": lease_until(services)}
            with services.db.session() as session:
                result = session.execute(
                    update(Job).where(Job.id == job_id, Job.status == RUNNING, Job.worker_id == worker_id, Job.cancel_requested.is_(False)).values(**values)
                )
                if result.rowcount != 1:
                    session.rollback()
                    cancelled = session.scalar(select(Job.cancel_requested).where(Job.id == job_id, Job.status == RUNNING, Job.worker_id == worker_id))
                    raise _Taken("cancelled" if cancelled else "taken")
                if files and indices & stored:  # a chunk an earlier attempt stored in part (another chunk size)
                    session.execute(delete(Artifact).where(Artifact.job_id == job_id, Artifact.index.in_(sorted(indices))))
                _insert_artifacts(session, _artifacts(job_id, start, files, keys, entry))
                session.commit()
            services.events.publish(job_id)
        log.info("job finished", extra={"job_id": job_id, "status": SUCCEEDED, "chunks": len(chunks), "resumed": len(stored)})


def run_claimed(services: Services, job_ids: list[str], worker_id: str) -> None:
    """Run jobs this worker has claimed (one model: see `claim_batch`), loading the model once."""
    if not job_ids:
        return
    with LeaseKeeper(services, worker_id, job_ids):
        with services.db.session() as session:
            model_name = session.scalar(select(Job.model).where(Job.id == job_ids[0]))
        try:
            model, lock = services.cache.get(model_name)
        except AigcError as error:
            for job_id in job_ids:
                _finish(services, job_id, worker_id, FAILED, error=str(error), error_field="model")
            return
        except Exception as error:
            log.exception("loading %s failed", model_name)
            for job_id in job_ids:
                _finish(services, job_id, worker_id, FAILED, error=f"the model could not be loaded ({type(error).__name__})", error_field="model")
            return
        for job_id in _run_together(services, job_ids, worker_id, model, lock):
            try:
                _run_one(services, job_id, worker_id, model, lock)
            except _Taken as taken:
                if str(taken) == "cancelled":
                    _finish(services, job_id, worker_id, CANCELLED, message="cancelled while running")
                continue
            except AigcError as error:
                _finish(services, job_id, worker_id, FAILED, error=str(error), error_field=error.field)
                continue
            except Exception as error:  # a bug or a broken model: the client gets a message, the log the traceback
                log.exception("job %s failed", job_id)
                _finish(services, job_id, worker_id, FAILED, error=f"internal error while generating ({type(error).__name__}); see the server log")


def run_job(services: Services, job_id: str, worker_id: str | None = None) -> bool:
    """Claim and run one job (the Celery task), with the queued jobs that can share its forward pass (as the
    local executor batches); False if it was not queued (done, cancelled, or taken, e.g. as a companion)."""
    worker_id = worker_id or worker_identity()
    if not claim(services, job_id, worker_id):
        return False
    run_claimed(services, [job_id, *claim_companions(services, job_id, worker_id)], worker_id)
    return True

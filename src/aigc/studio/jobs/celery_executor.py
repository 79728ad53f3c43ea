"""Scale-out executor: the same job function run by Celery workers on Redis (`AIGC_BROKER_URL`).

    aigc studio --executor celery        # API servers: write the job row, send its id to the broker
    aigc worker                          # on each machine (one per GPU): claim by id, generate, store

Tasks are acknowledged late with prefetch 1, so a worker that dies mid-job leaves its message to be
delivered again, and a worker never hoards jobs it is not running. A delivered id whose job is no longer
queued (done, cancelled, or taken by another delivery) is skipped, so redelivery is harmless. A job whose
worker died while running it is still marked running when its message comes back (and is skipped), so every
API server sweeps as the local executor does: a running job whose lease ran out goes back to the queue and
its id to the broker again. Workers use the same database and artifact folder (a shared mount or object
store) as the API servers.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from typing import Any

from aigc.studio.jobs import queue, runner
from aigc.studio.jobs.base import Executor
from aigc.studio.settings import StudioSettings

log = logging.getLogger("aigc.studio.jobs")

TASK_NAME = "aigc.studio.run_job"


def make_celery(broker_url: str):
    from celery import Celery

    app = Celery("aigc-studio", broker=broker_url)
    app.conf.update(
        task_acks_late=True,  # ack after the job ran: a crashed worker's job is delivered again
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # take one job at a time
        task_ignore_result=True,  # results live in the database
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600},
        task_default_queue="aigc-studio",
        worker_hijack_root_logger=False,
    )
    app.task(name=TASK_NAME, bind=False, ignore_result=True)(_run_job_task)
    return app


@lru_cache(maxsize=1)
def _worker_services():
    """One set of services per worker process, from AIGC_* settings (built on the first task)."""
    from aigc.studio.services import build_services

    return build_services(StudioSettings.from_env())


def _run_job_task(job_id: str) -> bool:
    return runner.run_job(_worker_services(), job_id)


class CeleryExecutor(Executor):
    name = "celery"

    def __init__(self, services):
        super().__init__(services)
        self.app = make_celery(services.settings.broker_url)
        self._stopping = threading.Event()
        self._sweeper: threading.Thread | None = None

    def start(self) -> None:
        # Jobs a stopped process left running, or accepted while the broker was unreachable: send them again.
        queue.requeue_stale(self.services)
        from sqlalchemy import select

        from aigc.studio.db.models import Job

        with self.services.db.session() as session:
            waiting = session.scalars(select(Job.id).where(Job.status == queue.QUEUED, Job.executor == "celery")).all()
        for job_id in waiting:
            self._send(job_id)
        self._stopping.clear()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="aigc-celery-sweeper", daemon=True)
        self._sweeper.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=5)
        self.app.close()

    def _sweep_loop(self) -> None:
        """Every few seconds (half a lease at most): jobs whose worker stopped renewing their lease are queued
        and sent again. Several API servers may sweep at once: the conditional UPDATE moves a job once."""
        interval = min(5.0, self.services.settings.job_lease_seconds / 2)
        while not self._stopping.wait(interval):
            try:
                requeued: list[str] = []
                queue.requeue_stale(self.services, requeued)
                for job_id in requeued:
                    self._send(job_id)
            except Exception:  # the database or the broker went away for a moment: try again next time
                log.exception("celery sweep failed")

    def _send(self, job_id: str) -> None:
        try:
            self.app.send_task(TASK_NAME, args=[job_id], retry=True, retry_policy={"max_retries": 3, "interval_start": 0.2})
        except Exception:  # the row is committed; start() of any API server sends it again
            log.exception("could not send job %s to the broker", job_id)
            raise

    def submit(self, job_id: str) -> None:
        self._send(job_id)

    def describe(self) -> dict[str, Any]:
        from aigc.studio.db.session import safe_url

        return {"executor": self.name, "broker": safe_url(self.services.settings.broker_url)}


def worker_app():
    """The Celery app a worker process runs (`aigc worker`, or `celery -A aigc.studio.jobs.celery_executor:celery_app worker`)."""
    return make_celery(StudioSettings.from_env().broker_url)


def __getattr__(name: str):
    if name == "celery_app":  # built on first use so that importing this module needs no broker
        return worker_app()
    raise AttributeError(name)

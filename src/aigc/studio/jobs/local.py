"""The default executor: worker threads in the server process that take jobs from the database.

Each worker claims the oldest queued job together with queued jobs of the same model and settings (a
batch: the model is fetched from the cache once), runs them, and looks again. A submit wakes an idle
worker at once; otherwise workers look every `poll_seconds`, so jobs queued by another API server that
shares the database run too. Every few seconds a worker also re-queues jobs whose worker stopped.

On stop (the server's SIGTERM), running jobs get `shutdown_grace_seconds` to finish; the ones that do
not are put back in the queue at once (and their workers drop them at their next step), so a stop takes
a bounded time and leaves no job "running" for a lease to expire.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from aigc.studio.jobs import queue, runner
from aigc.studio.jobs.base import Executor

log = logging.getLogger("aigc.studio.jobs")


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, services):
        super().__init__(services)
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_sweep = 0.0
        self._busy = 0
        self._busy_lock = threading.Lock()

    def start(self) -> None:
        moved = queue.requeue_stale(self.services)
        if moved:
            log.warning("re-queued %d jobs left running by a stopped process", moved)
        self._stopping.clear()
        for index in range(self.services.settings.workers):
            thread = threading.Thread(target=self._loop, name=f"aigc-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        grace = self.services.settings.shutdown_grace_seconds
        if self._busy:
            log.warning("stopping: waiting up to %g s for %d running job(s) to finish", grace, self._busy)
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        stuck = [queue.worker_identity(thread.name) for thread in self._threads if thread.is_alive()]
        for job_id in queue.release(self.services, stuck, f"re-queued: the server stopped before the job finished (waited {grace:g} s)"):
            log.warning("job re-queued: the server stopped before it finished", extra={"job_id": job_id, "grace_seconds": grace})
        self._threads.clear()

    def submit(self, job_id: str) -> None:
        with self._wake:
            self._wake.notify()

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "workers": len(self._threads), "busy_workers": self._busy, "models_loaded": self.services.cache.loaded()}

    def _sweep(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < min(5.0, self.services.settings.job_lease_seconds / 2):
            return
        self._last_sweep = now
        queue.requeue_stale(self.services)

    def _loop(self) -> None:
        worker_id = queue.worker_identity()
        while not self._stopping.is_set():
            try:
                self._sweep()
                job_ids = queue.claim_batch(self.services, worker_id)
                if not job_ids:
                    with self._wake:
                        self._wake.wait(self.services.settings.poll_seconds)
                    continue
                with self._busy_lock:
                    self._busy += 1
                try:
                    runner.run_claimed(self.services, job_ids, worker_id)
                finally:
                    with self._busy_lock:
                        self._busy -= 1
            except Exception:  # the database went away for a moment: wait and try again, never die
                log.exception("worker loop error")
                self._stopping.wait(1.0)

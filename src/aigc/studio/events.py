"""In-process job notifications, so `GET /jobs/{id}?wait=N` answers the moment a local worker finishes.

Workers (threads) publish; request handlers (asyncio) wait. Jobs run by another process (Celery) are not
published here, so waiters also re-read the database a few times a second; this only makes it faster.
"""

from __future__ import annotations

import asyncio
import threading


class JobEvents:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    def publish(self, job_id: str) -> None:
        with self._lock:
            waiters = self._waiters.pop(job_id, [])
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the loop closed meanwhile
                pass

    def subscribe(self, job_id: str) -> tuple[asyncio.AbstractEventLoop, asyncio.Event]:
        """Register before reading the job, so that a publish between the read and the wait is not missed."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.setdefault(job_id, []).append(entry)
        return entry

    def unsubscribe(self, job_id: str, entry: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        with self._lock:
            waiters = self._waiters.get(job_id)
            if waiters and entry in waiters:
                waiters.remove(entry)
                if not waiters:
                    del self._waiters[job_id]

    async def wait(self, entry: tuple[asyncio.AbstractEventLoop, asyncio.Event], timeout: float) -> None:
        try:
            await asyncio.wait_for(entry[1].wait(), timeout)
        except asyncio.TimeoutError:
            pass

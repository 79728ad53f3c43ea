"""The executor interface: the API writes a job row, then tells the executor; the executor runs it somewhere.

Executors never hold the only copy of a job: the row is committed before `submit` is called, so a lost
message or a stopped process delays a job but does not lose it (`queue.requeue_stale` and `start`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the services build executors (services.make_executor); executors only use them
    from aigc.studio.services import Services


class Executor(ABC):
    name: str

    def __init__(self, services: "Services"):
        self.services = services

    @abstractmethod
    def start(self) -> None:
        """Begin running jobs (and pick up any that a stopped process left behind)."""

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def submit(self, job_id: str) -> None:
        """A committed queued job is waiting; run it soon."""

    def cancel(self, job_id: str) -> None:
        """The job row already says cancelled or cancel_requested; executors may also act at once."""

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name}


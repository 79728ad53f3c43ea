"""Generation jobs: one job function (`runner`) and the executors that run it (`local` threads, `celery`)."""

from aigc.studio.jobs.base import Executor, make_executor

__all__ = ["Executor", "make_executor"]

"""Generation jobs: state changes (`queue`), one job function (`runner`) and the executors that run it
(`local` threads, `celery`); `aigc.studio.services.make_executor` picks the executor from the settings."""

from aigc.studio.jobs.base import Executor

__all__ = ["Executor"]

"""The built objects the studio's parts share: settings, database, artifact store, model catalog and cache.

The API process and every worker process (local threads or Celery) build one `Services` from the same
settings, so a job runs the same way wherever it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aigc.studio.catalog import ModelCache, ModelCatalog
from aigc.studio.db.session import Database, open_database
from aigc.studio.events import JobEvents
from aigc.studio.settings import StudioSettings
from aigc.studio.storage import ArtifactStore, LocalArtifactStore

if TYPE_CHECKING:
    from aigc.studio.jobs.base import Executor


@dataclass
class Services:
    settings: StudioSettings
    db: Database
    store: ArtifactStore
    catalog: ModelCatalog
    cache: ModelCache
    events: JobEvents = field(default_factory=JobEvents)  # in-process: wakes requests waiting on a job

    def close(self) -> None:
        self.db.dispose()


def build_services(settings: StudioSettings, catalog: ModelCatalog | None = None, *, migrate: bool = True) -> Services:
    catalog = catalog if catalog is not None else ModelCatalog.from_paths(settings.models, zoo=settings.zoo)
    db = open_database(settings.resolved_database_url, migrate=migrate)
    store = LocalArtifactStore(settings.artifacts_dir)
    return Services(settings, db, store, catalog, ModelCache(catalog, settings.model_cache_size))


def make_executor(services: Services) -> "Executor":
    """The executor the settings name. Imported here, at call time: executors run jobs with these
    services, so they import this module (and a Celery-less install never imports Celery's)."""
    if services.settings.executor == "celery":
        from aigc.studio.jobs.celery_executor import CeleryExecutor

        return CeleryExecutor(services)
    from aigc.studio.jobs.local import LocalExecutor

    return LocalExecutor(services)

"""Health and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse

from aigc import __version__
from aigc.studio.deps import get_executor, get_services, metrics_access
from aigc.studio.jobs.base import Executor
from aigc.studio.jobs.queue import queue_depth
from aigc.studio.observability import render_metrics
from aigc.studio.routes.common import API, errors
from aigc.studio.schemas import Health
from aigc.studio.services import Services

router = APIRouter(tags=["system"])


@router.get(f"{API}/health", response_model=Health, responses={503: {"model": Health, "description": "The database is unreachable."}})
def health(services: Services = Depends(get_services), executor: Executor = Depends(get_executor)):
    """Liveness and readiness: 200 when the database answers, 503 (same body) when it does not. No key needed."""
    from fastapi.responses import JSONResponse

    database_ok = services.db.ping()
    body = Health(
        status="ok" if database_ok else "degraded", version=__version__, database="ok" if database_ok else "unreachable", executor=executor.describe(),
        queue_depth=queue_depth(services) if database_ok else None, models=len(services.catalog.names()), auth_required=services.settings.keys_required,
    )
    return body if database_ok else JSONResponse(body.model_dump(mode="json"), status_code=503)


@router.get("/metrics", response_class=PlainTextResponse, include_in_schema=True, dependencies=[Depends(metrics_access)], responses=errors(401))
def metrics(request: Request, services: Services = Depends(get_services), executor: Executor = Depends(get_executor)) -> PlainTextResponse:
    """Prometheus text format: jobs by status, queue depth, job latency histogram, HTTP requests.
    Off loopback it needs a key (`Authorization: Bearer <key>`) unless AIGC_METRICS_PUBLIC=true."""
    text = render_metrics(services, request.app.state.http_metrics, executor.describe())
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

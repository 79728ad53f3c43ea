"""FastAPI dependencies: the shared services, the executor, and who is calling (API keys)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from aigc.studio.errors import ApiError
from aigc.studio.jobs.base import Executor
from aigc.studio.keys import verify_key
from aigc.studio.services import Services
from aigc.studio.settings import is_loopback

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="A key from `aigc studio keys create NAME`.")
bearer = HTTPBearer(auto_error=False, description="The same key as `Authorization: Bearer <key>`.")


@dataclass(frozen=True)
class Caller:
    account_id: int | None  # None: anonymous use on a loopback-only server
    key_id: int | None
    name: str
    rate_limit_per_minute: int
    queue_limit: int
    client: str | None = None  # the caller's address: anonymous callers each get their own limits


def get_services(request: Request) -> Services:
    return request.app.state.services


def get_executor(request: Request) -> Executor:
    return request.app.state.executor


def get_caller(
    request: Request,
    header_key: str | None = Depends(api_key_header),
    bearer_key: HTTPAuthorizationCredentials | None = Depends(bearer),
    services: Services = Depends(get_services),
) -> Caller:
    settings = services.settings
    key = header_key or (bearer_key.credentials if bearer_key else None)
    client = request.client.host if request.client else None
    if key:
        owner = verify_key(services.db, key)
        if owner is None:
            raise ApiError(401, "this API key is not valid (unknown or revoked)", field="X-API-Key", fix="create one with `aigc studio keys create NAME`")
        return Caller(owner.account_id, owner.key_id, owner.account, owner.rate_limit_per_minute or settings.rate_limit_per_minute, owner.queue_limit or settings.queue_limit, client)
    if settings.keys_required or (settings.auth == "auto" and not is_loopback(client)):
        raise ApiError(401, "an API key is required", field="X-API-Key", fix="send `X-API-Key: <key>` or `Authorization: Bearer <key>`; create one with `aigc studio keys create NAME`")
    return Caller(None, None, "anonymous", settings.rate_limit_per_minute, settings.queue_limit, client)


def metrics_access(request: Request, header_key: str | None = Depends(api_key_header), bearer_key: HTTPAuthorizationCredentials | None = Depends(bearer), services: Services = Depends(get_services)) -> None:
    """/metrics: open to loopback callers (a local Prometheus) and, with `metrics_public`, to anyone;
    from elsewhere it needs a valid key, as the API does (job counts and model names are not public)."""
    client = request.client.host if request.client else None
    if services.settings.metrics_public or is_loopback(client):
        return
    key = header_key or (bearer_key.credentials if bearer_key else None)
    if services.settings.auth == "off" and not key:
        return  # an open server (--auth off --allow-open) is open for metrics too
    if not key or verify_key(services.db, key) is None:
        raise ApiError(401, "/metrics needs an API key off loopback", field="X-API-Key", fix="scrape with `Authorization: Bearer <key>`, or set AIGC_METRICS_PUBLIC=true")

"""The studio's FastAPI app: REST API under /api/v1 (OpenAPI at /docs), the web page at /, /metrics.

    app = create_app(StudioSettings.from_env(), catalog=ModelCatalog.from_paths({"digits": "runs/cgan"}))

`create_app` connects to the database and migrates it at once, so a wrong URL fails at start with a message
rather than at the first request; the executor starts and stops with the app (its lifespan).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from aigc import __version__
from aigc.studio.catalog import ModelCatalog
from aigc.studio.errors import install_error_handlers
from aigc.studio.observability import HttpMetrics, RequestMiddleware
from aigc.studio.routes import artifacts, jobs, me, models, system, uploads, verify
from aigc.studio.services import Services, build_services, make_executor
from aigc.studio.settings import StudioSettings, is_loopback
from aigc.studio.validation import reject_lone_surrogates

log = logging.getLogger("aigc.studio")

DESCRIPTION = """Generate images, text and audio with the models this studio serves.

Submit a job (`POST /api/v1/jobs`, answered `202` with its id), follow it (`GET /api/v1/jobs/{id}?wait=10`),
then fetch its artifacts. Errors are JSON: `{"error": {"status", "message", "field", "fix"}}`.
Send your key as `X-API-Key` (or `Authorization: Bearer`) unless the server listens on loopback only."""


def static_dir() -> Path:
    return Path(str(resources.files("aigc.studio") / "static"))


def create_app(settings: StudioSettings | None = None, *, catalog: ModelCatalog | None = None, services: Services | None = None) -> FastAPI:
    settings = settings or (services.settings if services else StudioSettings.from_env())
    services = services or build_services(settings, catalog)
    executor = make_executor(services)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        executor.start()
        if settings.auth == "off" and not is_loopback(settings.host):
            log.warning("the studio is open: no API keys on a non-loopback host (--allow-open)", extra={"host": settings.host})
        log.info("studio started", extra={"executor": executor.name, "models": services.catalog.names(), "auth_required": settings.keys_required})
        try:
            yield
        finally:
            executor.stop()
            services.close()

    app = FastAPI(
        title="aigc studio", version=__version__, description=DESCRIPTION, lifespan=lifespan, docs_url=None, redoc_url=None,
        dependencies=[Depends(reject_lone_surrogates)],  # every route: text must be valid Unicode (validation.py)
    )
    app.state.services = services
    app.state.executor = executor
    app.state.events = services.events
    app.state.http_metrics = HttpMetrics()

    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST", "DELETE"], allow_headers=["X-API-Key", "Authorization", "Content-Type"], expose_headers=["Location", "X-Request-Id"], max_age=600,
        )
    # An upload's body is its file plus the multipart form's few hundred bytes of headers.
    upload_paths = {f"{uploads.router.prefix}/uploads": settings.max_upload_bytes + 16 * 1024, f"{verify.router.prefix}/verify": settings.max_upload_bytes + 16 * 1024}
    app.add_middleware(RequestMiddleware, max_body_bytes=settings.max_body_bytes, metrics=app.state.http_metrics, upload_paths=upload_paths)

    for module in (models, jobs, uploads, artifacts, verify, me, system):
        app.include_router(module.router)
    _mount_pages(app)
    return app


def _mount_pages(app: FastAPI) -> None:
    folder = static_dir()
    app.mount("/static", StaticFiles(directory=folder), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(folder / "index.html", headers={"Cache-Control": "no-cache"})

    try:  # Swagger UI's files from a package, so /docs works offline; else FastAPI's default (a CDN)
        import swagger_ui_bundle

        app.mount("/docs-assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")
        js, css = "/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"
    except ImportError:
        js, css = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js", "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="aigc studio — API", swagger_js_url=js, swagger_css_url=css, swagger_favicon_url="/static/favicon.svg")

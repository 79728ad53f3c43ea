"""Every error the API returns has one JSON shape: {"error": {"status", "message", "field", "fix"}}.

Validation errors name the offending field (`params.count`, `page`, `X-API-Key`); unexpected exceptions
are logged with their traceback and reach the client as a plain 500 message with a request id.
"""

from __future__ import annotations

import logging
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from aigc.errors import AigcError

log = logging.getLogger("aigc.studio")


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, field: str | None = None, fix: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.field, self.fix, self.headers = status, message, field, fix, headers


def error_response(status: int, message: str, field: str | None = None, fix: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "message": message, "field": field, "fix": fix}}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.message, error.field, error.fix, error.headers)

    @app.exception_handler(AigcError)
    async def _aigc_error(request: Request, error: AigcError) -> JSONResponse:
        message = str(error).split("\n")[0]
        if error.field and message.startswith(f"{error.field}: "):
            message = message[len(error.field) + 2 :]
        return error_response(422, message, error.field, error.fix)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        from aigc.studio.validation import describe_errors

        items = list(error.errors())
        if items and items[0].get("type") == "json_invalid":
            return error_response(400, "the body is not valid JSON", "body", "send a JSON object with Content-Type: application/json")
        for item in items:  # "body.params" names the field "params"; "query.page" names "page"
            loc = tuple(item.get("loc", ()))
            item["loc"] = loc[1:] if loc and loc[0] in ("body", "query", "path", "header", "cookie") else loc
        field, message = describe_errors(items)
        return error_response(422, message, field)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = error.detail if isinstance(error.detail, str) else "error"
        if error.status_code == 404 and message == "Not Found":
            message = f"no such route: {request.method} {request.url.path}"
        return error_response(error.status_code, message, headers=getattr(error, "headers", None))

    @app.exception_handler(OperationalError)
    async def _database_down(request: Request, error: OperationalError) -> JSONResponse:
        log.error("database error", extra={"request_id": getattr(request.state, "request_id", "-"), "error": str(error.orig or error)[:300]})
        return error_response(503, "the database is unavailable; try again shortly", "AIGC_DATABASE_URL", headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        request_id = getattr(request.state, "request_id", "-")
        log.exception("unhandled error", extra={"request_id": request_id, "path": request.url.path})
        return error_response(500, f"internal error (request {request_id}); the server log has the details")

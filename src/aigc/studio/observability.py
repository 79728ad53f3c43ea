"""Structured logs (one JSON object a line), request ids, HTTP metrics and the Prometheus `/metrics` text.

Job metrics (jobs by status, queue depth, latency histogram) are read from the database when scraped, so
every API server reports the same numbers whichever process ran the jobs; HTTP metrics are per process.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import uuid
from typing import Any

from sqlalchemy import case, func, select

from aigc.studio.db.models import Job

# Latency buckets in seconds, from a tiny model's job to a long diffusion one.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        document.update({k: v for k, v in vars(record).items() if k not in _RESERVED and not k.startswith("_")})
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


def configure_logging(log_format: str = "json", level: str = "INFO", stream=None) -> None:
    """The studio's log lines on stderr (or `stream`), one JSON object each, with personal data (e-mail,
    phones, IDs, cards, IPs) scrubbed from every message and text field (aigc.safety.privacy). Prompts are
    never logged; the access log has the path without its query, so no prompt reaches it either."""
    from aigc.safety.privacy import scrub_logs

    handler = scrub_logs(logging.StreamHandler(stream or sys.stderr))
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("aigc")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False


class HttpMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = {}
        self.seconds: dict[tuple[str, str], float] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] = self.requests.get((method, route, status), 0) + 1
            self.seconds[(method, route)] = self.seconds.get((method, route), 0.0) + seconds


def _labels(**labels: Any) -> str:
    return "{" + ",".join(f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in labels.items()) + "}"


def render_metrics(services, http: HttpMetrics, executor_info: dict[str, Any]) -> str:
    lines: list[str] = []
    with services.db.session() as session:
        by_status = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
        columns = [func.sum(case((Job.duration_ms <= int(bound * 1000), 1), else_=0)) for bound in LATENCY_BUCKETS]
        row = session.execute(select(func.count(), func.sum(Job.duration_ms), *columns).where(Job.status == "succeeded", Job.duration_ms.is_not(None))).one()
    lines += ["# HELP aigc_jobs Jobs in the database by status.", "# TYPE aigc_jobs gauge"]
    for status in ("queued", "running", "succeeded", "failed", "cancelled"):
        lines.append(f"aigc_jobs{_labels(status=status)} {by_status.get(status, 0)}")
    lines += ["# HELP aigc_queue_depth Jobs waiting for a worker.", "# TYPE aigc_queue_depth gauge", f"aigc_queue_depth {by_status.get('queued', 0)}"]
    count, total_ms, *cumulative = row
    lines += ["# HELP aigc_job_latency_seconds Time from submit to finish of succeeded jobs.", "# TYPE aigc_job_latency_seconds histogram"]
    for bound, value in zip(LATENCY_BUCKETS, cumulative):
        lines.append(f"aigc_job_latency_seconds_bucket{_labels(le=bound)} {int(value or 0)}")
    lines.append(f'aigc_job_latency_seconds_bucket{{le="+Inf"}} {int(count or 0)}')
    lines.append(f"aigc_job_latency_seconds_sum {(total_ms or 0) / 1000:.6f}")
    lines.append(f"aigc_job_latency_seconds_count {int(count or 0)}")
    lines += ["# HELP aigc_models_loaded Models held in this process's cache.", "# TYPE aigc_models_loaded gauge", f"aigc_models_loaded {len(services.cache.loaded())}"]
    if "busy_workers" in executor_info:
        lines += ["# HELP aigc_workers_busy Local worker threads running a job.", "# TYPE aigc_workers_busy gauge", f"aigc_workers_busy {executor_info['busy_workers']}"]
    with http._lock:
        requests = dict(http.requests)
        seconds = dict(http.seconds)
    lines += ["# HELP aigc_http_requests_total HTTP requests served by this process.", "# TYPE aigc_http_requests_total counter"]
    for (method, route, status), value in sorted(requests.items()):
        lines.append(f"aigc_http_requests_total{_labels(method=method, route=route, status=status)} {value}")
    lines += ["# HELP aigc_http_request_seconds_total Time spent serving HTTP requests.", "# TYPE aigc_http_request_seconds_total counter"]
    for (method, route), value in sorted(seconds.items()):
        lines.append(f"aigc_http_request_seconds_total{_labels(method=method, route=route)} {value:.6f}")
    return "\n".join(lines) + "\n"


class RequestMiddleware:
    """Pure ASGI: a request id, a size limit on bodies, an access log line and HTTP metrics."""

    def __init__(self, app, *, max_body_bytes: int, metrics: HttpMetrics, upload_paths: dict[str, int] | None = None):
        self.app, self.max_body_bytes, self.metrics = app, max_body_bytes, metrics
        self.upload_paths = upload_paths or {}  # path -> its own body limit (image uploads are larger than JSON)
        self.log = logging.getLogger("aigc.studio.access")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = uuid.uuid4().hex[:12]
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_holder = {"status": 500}
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        limit = self.upload_paths.get(scope["path"], self.max_body_bytes) if scope["method"] == "POST" else self.max_body_bytes
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _send_json(send, 413, f"the request body is larger than {limit} bytes", request_id)
            self._record(scope, 413, started, request_id)
            return
        # Read the body here (it is small by design) so that a chunked upload cannot slip past the limit.
        chunks, received, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                chunks = None
                break
            chunks.append(message.get("body", b""))
            received += len(chunks[-1])
            more = message.get("more_body", False)
            if received > limit:
                await _send_json(send, 413, f"the request body is larger than {limit} bytes", request_id)
                self._record(scope, 413, started, request_id)
                return
        replayed = False

        async def replay_receive():
            nonlocal replayed
            if chunks is not None and not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        async def tracking_send(message):
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message["headers"] = list(message.get("headers", [])) + [(b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, replay_receive, tracking_send)
        finally:
            self._record(scope, status_holder["status"], started, request_id)

    def _record(self, scope, status: int, started: float, request_id: str) -> None:
        seconds = time.perf_counter() - started
        route = scope.get("route")
        template = getattr(route, "path", None) or ("/static" if scope["path"].startswith("/static/") else "other")
        self.metrics.observe(scope["method"], template, status, seconds)
        if template not in ("/metrics", "/api/v1/health"):
            self.log.info("request", extra={"request_id": request_id, "method": scope["method"], "path": scope["path"], "status": status, "ms": round(seconds * 1000, 2)})


async def _send_json(send, status: int, message: str, request_id: str) -> None:
    body = json.dumps({"error": {"status": status, "message": message, "field": "body", "fix": "send a smaller request"}}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"x-request-id", request_id.encode())]})
    await send({"type": "http.response.body", "body": body})

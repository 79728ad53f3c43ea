"""The studio's settings: one typed object, read from `AIGC_*` environment variables (STYLE.md, web service).

Every field can be set as `AIGC_<FIELD>` (upper case), e.g. `AIGC_DATABASE_URL`, `AIGC_EXECUTOR=celery`.
The CLI builds the same object from its options, so the server, the workers and the tests share one shape.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aigc.errors import ConfigError

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class StudioSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Path("studio-data")  # artifacts (content-addressed) and the default SQLite file live here
    database_url: str | None = None  # None: sqlite:///DATA_DIR/studio.db; or postgresql+psycopg://..., mysql+pymysql://...
    executor: Literal["local", "celery"] = "local"  # who runs generation jobs
    broker_url: str = "redis://127.0.0.1:6379/0"  # Celery broker (executor = celery)
    host: str = "127.0.0.1"  # where `aigc studio` listens; decides whether API keys are required (auth = auto)
    port: int = Field(8000, ge=0, le=65535)
    auth: Literal["auto", "required", "off"] = "auto"  # auto: keys required unless the server listens on loopback only
    allow_open: bool = False  # auth = off on a non-loopback host serves anyone on the network: refused unless this says so
    metrics_public: bool = False  # /metrics without a key for callers off loopback (default: a key, as for the API)
    models: dict[str, str] = Field(default_factory=dict)  # extra models: name -> run/checkpoint folder (JSON or name=path,...)
    zoo: bool = True  # also offer the packaged model zoo (aigc.zoo), when it is installed
    workers: int = Field(1, ge=0, le=64)  # local executor: worker threads (0: accept jobs, run none)
    model_cache_size: int = Field(4, ge=1, le=256)  # models kept loaded per process (least recently used goes)
    batch_jobs: int = Field(8, ge=1, le=256)  # a worker takes up to this many queued jobs of one model at once
    chunk_images: int = Field(8, ge=1, le=1024)  # images generated per step; progress and cancel act between steps
    batch_images: int = Field(256, ge=1, le=1024)  # images in one forward pass when claimed jobs of one model run together
    stream_flush_seconds: float = Field(0.1, gt=0)  # streaming text jobs save the text so far this often
    progress_seconds: float = Field(0.5, gt=0)  # long chunks (diffusion steps) report progress at most this often
    preview_seconds: float = Field(2.0, gt=0)  # ... and store a preview of the images forming at most this often
    max_images_per_job: int = Field(64, ge=1, le=1024)  # `count` above this is refused
    max_string_chars: int = Field(2000, ge=1)  # prompts and other text parameters
    max_body_bytes: int = Field(64 * 1024, ge=1024)  # request bodies above this get 413 (uploads have their own limit)
    max_upload_bytes: int = Field(10 * 1024 * 1024, ge=1024)  # an uploaded image file (POST /api/v1/uploads) above this gets 413
    max_upload_pixels: int = Field(4096 * 4096, ge=64 * 64, le=40_000_000)  # ... and one with more pixels (a decompression bomb), from its header
    rate_limit_per_minute: int = Field(120, ge=1)  # jobs one key (or one anonymous client address) may submit per minute
    queue_limit: int = Field(32, ge=1)  # queued + running jobs one key (or anonymous client address) may have at once
    cors_origins: list[str] = Field(default_factory=list)  # origins allowed to call the API from a browser
    job_lease_seconds: float = Field(60.0, gt=0)  # a running job whose worker stops renewing this is re-queued
    poll_seconds: float = Field(0.5, gt=0)  # idle workers look for queued jobs this often (a submit wakes them at once)
    max_attempts: int = Field(3, ge=1)  # a job re-queued this many times (crashing workers) fails instead
    shutdown_grace_seconds: float = Field(10.0, ge=0, le=600)  # on stop (SIGTERM), running jobs get this long to finish; the rest are re-queued
    log_format: Literal["json", "text"] = "json"
    log_level: str = "INFO"
    retention_days: float | None = Field(None, gt=0)  # `aigc studio purge` deletes finished jobs (and their files) older than this
    scrub_prompts: bool = False  # replace personal data (e-mail, phones, IDs, cards, IPs) in prompts before they are stored or run

    @field_validator("models", mode="before")
    @classmethod
    def _parse_models(cls, value: Any) -> Any:
        return parse_models(value) if isinstance(value, str) else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                return json.loads(value)
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @model_validator(mode="after")
    def _not_silently_open(self) -> "StudioSettings":
        if self.auth == "off" and not is_loopback(self.host) and not self.allow_open:
            raise ValueError(f"auth off on {self.host} would let anyone who can reach this machine use the studio")
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'studio.db').resolve()}"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def keys_required(self) -> bool:
        if self.auth == "auto":
            return not is_loopback(self.host)
        return self.auth == "required"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> "StudioSettings":
        """Settings from `AIGC_<FIELD>` variables, then keyword overrides (the CLI's options) on top."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            text = environ.get(f"AIGC_{name.upper()}")
            if text is not None and text != "":
                values[name] = text
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            item = error.errors()[0]
            if not item["loc"]:  # a rule across settings (auth off on an open host)
                raise ConfigError(str(item.get("ctx", {}).get("error", item["msg"])), field="AIGC_AUTH", fix="use keys (--auth auto, `aigc studio keys create NAME`), listen on 127.0.0.1, or say --allow-open (AIGC_ALLOW_OPEN=true)") from None
            name = str(item["loc"][0])
            where = f"--{name.replace('_', '-')}" if overrides.get(name) is not None else f"AIGC_{name.upper()}"  # a CLI option, or the environment
            raise ConfigError(f"expected {describe(name)} (got {item.get('input')!r})", field=where, fix="see `aigc studio --help`") from None


def describe(name: str) -> str:
    """What a setting takes, in words: "an integer from 0 to 65535", "one of auto, required, off"."""
    field = StudioSettings.model_fields.get(name)
    if field is None:
        return "not a known setting"
    annotation = field.annotation
    if getattr(annotation, "__origin__", None) is Literal:
        return "one of " + ", ".join(map(str, annotation.__args__))
    kinds = {int: "an integer", float: "a number", bool: "true or false", str: "text", Path: "a folder path"}
    what = kinds.get(annotation, "a valid value")
    bounds = {kind: getattr(m, kind) for m in field.metadata for kind in ("ge", "gt", "le") if getattr(m, kind, None) is not None}
    if "ge" in bounds and "le" in bounds:
        return f"{what} from {bounds['ge']} to {bounds['le']}"
    words = [f"at least {bounds['ge']}" if "ge" in bounds else "", f"above {bounds['gt']}" if "gt" in bounds else "", f"at most {bounds['le']}" if "le" in bounds else ""]
    return " ".join([what, *filter(None, words)])


def parse_models(text: str) -> dict[str, str]:
    """`name=path,name2=path2` or a JSON object, as in AIGC_MODELS."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        return {str(k): str(v) for k, v in json.loads(text).items()}
    models = {}
    for item in text.split(","):
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ValueError(f"expected NAME=PATH, got {item!r}")
        models[name.strip()] = path.strip()
    return models

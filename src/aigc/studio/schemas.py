"""What the REST API takes and returns (these shapes are the OpenAPI schema at /docs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class ErrorBody(BaseModel):
    status: int
    message: str = Field(description="What was wrong.")
    field: str | None = Field(None, description="The offending field, e.g. params.count or the X-API-Key header.")
    fix: str | None = Field(None, description="How to fix it, when there is a known fix.")


class ErrorResponse(BaseModel):
    error: ErrorBody


class ModelField(BaseModel):
    name: str
    type: str
    required: bool = False
    default: Any = None
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusiveMaximum: float | None = None
    exclusiveMinimum: float | None = None
    maxLength: int | None = None
    enum: list[Any] | None = None
    items: str | None = None
    choices: list[int] | None = None
    format: Literal["image"] | None = Field(None, description="image: the field takes uploaded images, `upload:<id>` from POST /api/v1/uploads (a list for an array).")


class ModelInfo(BaseModel):
    name: str
    family: str
    modality: str
    description: str
    accepts: list[ModelField] = Field(description="The `params` this model takes in a job, with limits.")
    num_classes: int | None = None
    checkpoint_sha256: str
    step: int | None = None
    card: dict[str, Any] | None = Field(None, description="A zoo model's card: data and licence, training budget, metrics, intended use, limitations and the safety settings that apply to its outputs.")


class ModelList(BaseModel):
    models: list[ModelInfo]


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"model": "cgan-mnist", "params": {"count": 4, "seed": 7, "labels": [3]}}]})

    model: str = Field(min_length=1, max_length=200, description="A name from GET /api/v1/models.")
    params: dict[str, Any] = Field(default_factory=dict, description="What the model accepts (see its `accepts`): count, seed, labels, prompt, ...")


class ArtifactInfo(BaseModel):
    id: str
    job_id: str
    index: int
    kind: str
    media_type: str
    sha256: str
    size_bytes: int
    seed: int | None
    label: int | None
    width: int | None
    height: int | None
    model: str
    checkpoint_sha256: str | None
    parameters: dict[str, Any]
    created_at: datetime
    url: str = Field(description="Where the file itself is served.")


class ModerationFinding(BaseModel):
    field: str = Field(description="The request field the text came from: prompt or negative_prompt.")
    category: str
    action: str
    method: str = Field(description="term, combination, pattern or semantic.")
    evidence: str = Field(description="The text as written in the prompt, or (semantic) the nearest example.")
    matched: str
    score: float
    threshold: float


class ModerationNote(BaseModel):
    action: Literal["warn"]
    findings: list[ModerationFinding]


class JobInfo(BaseModel):
    id: str
    model: str
    family: str
    modality: str
    params: dict[str, Any]
    status: JobStatus
    progress: float = Field(ge=0, le=1)
    message: str
    partial_text: str | None = Field(None, description="Text generated so far, while a text job streams (count 1, no beams).")
    preview_url: str | None = Field(None, description="While a diffusion job runs: a PNG of its images as they form (the latest step's estimate).")
    error: str | None
    error_field: str | None
    moderation: ModerationNote | None = Field(None, description="Why the moderation policy warned about this job's prompt (it ran anyway).")
    cancel_requested: bool
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    artifacts: list[ArtifactInfo]
    url: str


class JobPage(BaseModel):
    items: list[JobInfo]
    total: int
    page: int
    per_page: int
    pages: int


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    database: Literal["ok", "unreachable"]
    executor: dict[str, Any]
    queue_depth: int | None
    models: int
    auth_required: bool

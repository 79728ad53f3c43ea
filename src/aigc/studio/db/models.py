"""The studio's tables (SQLAlchemy 2). The schema itself is created by the Alembic migrations next to this file.

    accounts   who owns keys and jobs
    api_keys   hashed keys (sha256 of a 256-bit random secret; only an 8-character prefix is kept in clear)
    prompts    the text a job was asked with (prompt, negative prompt), kept for history and search
    jobs       one generation request: model, parameters, status, progress, timings, error, lease, and the
               moderation decision when the policy warned about its prompt
    artifacts  one stored output: content address, seed, label, model and checkpoint hash, parameters
    submit_locks  one row per submitter (a key, or an anonymous client address): locked while a submit
               checks its limits and inserts, so concurrent submits cannot both pass the check
    upload_owners  who sent an uploaded image (stored once by content): only they may fetch it or name it
               in a job, and the file goes when its last owner and the last job naming it are gone
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite and MySQL store naive values)."""

    impl = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    keys: Mapped[list["ApiKey"]] = relationship(back_populates="account")


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), index=True)  # shown to people; finds the row
    key_hash: Mapped[str] = mapped_column(String(64))  # sha256 hex of the whole key
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer, default=None)  # None: the server's setting
    queue_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    account: Mapped[Account] = relationship(back_populates="keys")


class Prompt(Base):
    __tablename__ = "prompts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text, default="")
    negative_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_key_created", "api_key_id", "created_at"),
        Index("ix_jobs_model_status", "model", "status"),
        Index("ix_jobs_client_created", "client", "created_at"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), default=None)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), default=None)
    client: Mapped[str | None] = mapped_column(String(64), default=None)  # anonymous use: the caller's address (its own limits)
    prompt_id: Mapped[int | None] = mapped_column(ForeignKey("prompts.id"), default=None)
    model: Mapped[str] = mapped_column(String(200))  # the name in the studio's model list
    family: Mapped[str] = mapped_column(String(100))
    modality: Mapped[str] = mapped_column(String(20))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)  # the validated request, as given to generate()
    batch_key: Mapped[str] = mapped_column(String(64))  # jobs with equal keys may run together
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued|running|succeeded|failed|cancelled
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # 0..1
    message: Mapped[str] = mapped_column(String(500), default="")
    partial_text: Mapped[str | None] = mapped_column(Text, default=None)  # text so far, while a text job streams
    preview_key: Mapped[str | None] = mapped_column(String(200), default=None)  # the latest preview PNG while a job runs (diffusion)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    error_field: Mapped[str | None] = mapped_column(String(200), default=None)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    executor: Mapped[str] = mapped_column(String(20), default="local")
    worker_id: Mapped[str | None] = mapped_column(String(200), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    duration_ms: Mapped[int | None] = mapped_column(Integer, default=None)  # created -> finished
    run_ms: Mapped[int | None] = mapped_column(Integer, default=None)  # started -> finished
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)  # deleted by its owner: content gone, the row kept for rate limits
    moderation: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # a `warn` decision at submission: {"action", "findings": [...]}
    prompt: Mapped[Prompt | None] = relationship()
    artifacts: Mapped[list["Artifact"]] = relationship(back_populates="job", order_by="Artifact.index")


class Artifact(Base):
    __tablename__ = "artifacts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    index: Mapped[int] = mapped_column(Integer)  # position in the job's output
    kind: Mapped[str] = mapped_column(String(20))  # image | audio | text | file
    media_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    storage_key: Mapped[str] = mapped_column(String(200))  # where the store keeps the bytes
    size_bytes: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int | None] = mapped_column(BigInteger, default=None)
    label: Mapped[int | None] = mapped_column(Integer, default=None)
    width: Mapped[int | None] = mapped_column(Integer, default=None)
    height: Mapped[int | None] = mapped_column(Integer, default=None)
    model: Mapped[str] = mapped_column(String(300))
    checkpoint_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    job: Mapped[Job] = relationship(back_populates="artifacts")


class SubmitLock(Base):
    __tablename__ = "submit_locks"
    subject: Mapped[str] = mapped_column(String(100), primary_key=True)  # "key:12" or "client:127.0.0.1"
    touched_at: Mapped[datetime] = mapped_column(default=utcnow)  # written by every submit: the write is the lock


class UploadOwner(Base):
    """One account's claim on an uploaded image. Uploads are content-addressed (the same bytes are stored once,
    whoever sends them), so the id alone — the sha256 a result's PNG records as its `content_sha256` — must not
    be enough to fetch someone's photo: each account that uploaded the bytes gets a row, and only those may
    read the file or use it in a job. Anonymous loopback use is one owner (account_id NULL), as for jobs."""

    __tablename__ = "upload_owners"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

"""Your data: export everything the studio holds for your key's account, or delete all of it.

    GET    /api/v1/me/export   a zip: jobs.json (every job as GET /jobs/{id} shows it, with its prompt),
                               account.json (the account and its keys' prefixes), files/ (every artifact)
                               and uploads/ (the images you uploaded, and those the jobs were made from)
    DELETE /api/v1/me          every job's prompt, parameters, artifacts and files, and your uploaded images
                               (the bytes stay only while another account owns them or another job names
                               them); queued jobs are cancelled, running ones stopped first

Without a key (a loopback-only studio) "you" is the anonymous user: the jobs made without a key.
"""

from __future__ import annotations

import json
import logging
import tempfile
import zipfile

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from aigc.studio.db.models import ApiKey, Job, utcnow
from aigc.studio.deps import Caller, get_caller, get_services
from aigc.studio.jobs import queue
from aigc.studio.routes.common import API, artifact_filename, errors, file_responses, job_info, owned
from aigc.studio.services import Services
from aigc.studio.uploads import disown_uploads, forget_unused, referenced_uploads, upload_key, uploads_owned_by
from aigc.studio.validation import readable

router = APIRouter(prefix=API, tags=["privacy"])
log = logging.getLogger("aigc.studio")


class Deleted(BaseModel):
    jobs: int = Field(description="Jobs whose content was deleted.")
    files: int = Field(description="Artifact files removed from the store (equal bytes another account has stay).")
    still_running: int = Field(description="Jobs that were still running after the wait: send DELETE again to remove them.")


def _export(services: Services, caller: Caller, target) -> int:
    """Write the caller's zip into the open file `target`; returns the number of jobs."""
    with services.db.session() as session:
        jobs = session.scalars(owned(select(Job), caller).options(selectinload(Job.artifacts), selectinload(Job.prompt)).order_by(Job.created_at, Job.id)).all()
        keys = session.scalars(select(ApiKey).where(ApiKey.account_id == caller.account_id).order_by(ApiKey.id)).all() if caller.account_id is not None else []
        records, files = [], []
        for job in jobs:
            record = job_info(job).model_dump(mode="json")
            record["prompt"] = readable(job.prompt.text) if job.prompt else None
            record["negative_prompt"] = readable(job.prompt.negative_text) if job.prompt else None
            for artifact in record["artifacts"]:
                artifact["file"] = "files/" + artifact_filename(job.id, artifact["index"], artifact["media_type"])
            files += [("files/" + artifact_filename(job.id, a.index, a.media_type), a.storage_key) for a in job.artifacts]
            record["uploads"] = {}  # the images the job was made from: upload ref -> its file in the zip
            for sha in sorted(referenced_uploads(job.params)):
                key = upload_key(services.store, sha)
                if key is not None:
                    record["uploads"][f"upload:{sha}"] = "uploads/" + key.rsplit("/", 1)[-1]
                    files.append((record["uploads"][f"upload:{sha}"], key))
            records.append(record)
        for sha in uploads_owned_by(session, caller.account_id):  # uploaded, whether or not a job used them
            key = upload_key(services.store, sha)
            if key is not None:
                files.append(("uploads/" + key.rsplit("/", 1)[-1], key))
        account = {
            "account": caller.name, "exported_at": utcnow().isoformat(), "jobs": len(records),
            "keys": [{"prefix": k.prefix, "name": k.name, "created_at": k.created_at.isoformat(), "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None, "revoked": k.revoked_at is not None} for k in keys],
        }
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("account.json", json.dumps(account, indent=2, ensure_ascii=False))
        archive.writestr("jobs.json", json.dumps(records, indent=2, ensure_ascii=False))
        for name, key in dict(files).items():  # an upload two jobs share is written once
            try:
                archive.writestr(zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0)), services.store.read(key), zipfile.ZIP_STORED)  # PNGs are compressed already
            except (FileNotFoundError, KeyError):
                log.warning("artifact file missing from the store", extra={"storage_key": key})
    return len(records)


@router.get("/me/export", response_class=StreamingResponse, responses=file_responses("A zip of all your jobs (jobs.json with prompts), your account (account.json) and every artifact (files/).", "application/zip"))
def export_me(services: Services = Depends(get_services), caller: Caller = Depends(get_caller)) -> StreamingResponse:
    """Everything the studio holds for your account: every job with its prompt, parameters, moderation
    note and artifact list (jobs.json), the account and its keys' prefixes (account.json, never the keys),
    and every artifact file (files/aigc-<job>-<index>.png ...), as one zip."""
    spool = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)  # large exports go to a temporary file, not memory
    try:
        _export(services, caller, spool)
    except BaseException:
        spool.close()
        raise
    size = spool.tell()
    spool.seek(0)

    def chunks():
        try:
            while block := spool.read(1024 * 1024):
                yield block
        finally:
            spool.close()

    stamp = utcnow().strftime("%Y%m%d")
    return StreamingResponse(chunks(), media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="aigc-export-{stamp}.zip"', "Content-Length": str(size), "Cache-Control": "no-store"})


@router.delete("/me", response_model=Deleted, responses=errors(401))
def delete_me(services: Services = Depends(get_services), caller: Caller = Depends(get_caller)) -> Deleted:
    """Delete all your prompts, jobs and artifacts (files included). Queued jobs are cancelled and running
    ones stopped first (waiting up to 10 s); the database rows go before the files, so a crash in between
    leaves unnamed files, never a job that points at a missing one. Your keys stay valid; a deleted job keeps
    a row without content (model, times) so that deleting does not reset rate limits, until `aigc studio purge`."""
    result = queue.delete_all(services, lambda query: owned(query, caller))
    with services.db.session() as session:  # after the jobs: a running job may still have read its upload
        result["files"] += forget_unused(session, services.store, disown_uploads(session, caller.account_id))
    if result["still_running"]:
        log.warning("delete: jobs still running after the wait", extra={"still_running": result["still_running"]})
    return Deleted(**result)

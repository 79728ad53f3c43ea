"""Artifacts by id: their metadata, and the file itself (PNG, WAV, text), served from the store."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse, Response
from sqlalchemy import select

from aigc.studio.db.models import Artifact, Job
from aigc.studio.deps import Caller, get_caller, get_services
from aigc.studio.errors import ApiError
from aigc.studio.routes.common import API, artifact_filename, artifact_info, check_id, errors, file_responses, owned
from aigc.studio.schemas import ArtifactInfo
from aigc.studio.services import Services

router = APIRouter(prefix=API, tags=["artifacts"])


def _find(services: Services, artifact_id: str, caller: Caller) -> Artifact:
    check_id(artifact_id, "artifact")
    with services.db.session() as session:
        artifact = session.scalar(owned(select(Artifact).join(Job, Artifact.job_id == Job.id).where(Artifact.id == artifact_id), caller))
        if artifact is None:
            raise ApiError(404, f"no artifact with id {artifact_id!r}", field="artifact_id", fix="artifact ids are listed in each job")
        session.expunge(artifact)
        return artifact


@router.get("/artifacts/{artifact_id}", response_model=ArtifactInfo, responses=errors(401, 404))
def get_artifact(artifact_id: str, services: Services = Depends(get_services), caller: Caller = Depends(get_caller)) -> ArtifactInfo:
    """An artifact's metadata: seed, label, model, checkpoint hash, parameters, sha256."""
    return artifact_info(_find(services, artifact_id, caller))


@router.get(
    "/artifacts/{artifact_id}/content",
    responses=file_responses("The file.", "image/png", "audio/wav", "text/plain"),
    response_class=Response,
)
def get_artifact_content(
    artifact_id: str,
    download: bool = Query(False, description="Ask the browser to save the file instead of showing it."),
    services: Services = Depends(get_services),
    caller: Caller = Depends(get_caller),
) -> Response:
    """The file. Content-addressed, so it never changes: cache it forever."""
    artifact = _find(services, artifact_id, caller)
    path = services.store.local_path(artifact.storage_key)
    filename = artifact_filename(artifact.job_id, artifact.index, artifact.media_type)
    headers = {"ETag": f'"{artifact.sha256}"', "Cache-Control": "private, max-age=31536000, immutable"}
    disposition = "attachment" if download else "inline"
    if path is not None:
        return FileResponse(path, media_type=artifact.media_type, headers=headers, filename=filename, content_disposition_type=disposition)
    try:
        data = services.store.read(artifact.storage_key)
    except (FileNotFoundError, KeyError):
        raise ApiError(404, "the artifact's file is missing from the store", field="artifact_id") from None
    headers["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    return Response(data, media_type=artifact.media_type, headers=headers)

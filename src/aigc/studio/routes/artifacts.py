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


SPECTROGRAM_HEIGHT, SPECTROGRAM_WIDTH = 64, 256  # mel bands (low at the bottom) x time columns


def spectrogram_png(wav: bytes) -> bytes:
    """A small log-mel picture of a WAV (aigc.signal, 64 mel bands; loud = bright), PNG, for the page."""
    import io

    import numpy as np
    import soundfile
    import torch
    from PIL import Image

    from aigc.signal import Spectrogram

    waveform, rate = soundfile.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    hop = max(1, len(waveform) // SPECTROGRAM_WIDTH)
    log_mel = Spectrogram(rate, n_fft=max(256, 2 ** int(np.ceil(np.log2(rate / 31)))), hop_length=hop, n_mels=SPECTROGRAM_HEIGHT).log_mel(torch.from_numpy(waveform.mean(axis=1))).numpy()
    top = log_mel.max()
    scaled = np.clip((log_mel - (top - 8.0)) / 8.0, 0, 1)  # the loudest 8 nats (~70 dB) of range
    picture = Image.fromarray((255 * scaled[::-1]).astype(np.uint8), mode="L").resize((SPECTROGRAM_WIDTH, SPECTROGRAM_HEIGHT))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _artifact_bytes(services: Services, artifact: Artifact) -> bytes:
    try:
        return services.store.read(artifact.storage_key)
    except (FileNotFoundError, KeyError):
        raise ApiError(404, "the artifact's file is missing from the store", field="artifact_id") from None


@router.get("/artifacts/{artifact_id}/spectrogram", responses={**file_responses("The spectrogram.", "image/png"), **errors(400)}, response_class=Response)
def get_artifact_spectrogram(artifact_id: str, services: Services = Depends(get_services), caller: Caller = Depends(get_caller)) -> Response:
    """A small log-mel spectrogram (PNG, 256 x 64) of an audio artifact, for the page."""
    artifact = _find(services, artifact_id, caller)
    if artifact.media_type != "audio/wav":
        raise ApiError(400, f"artifact {artifact_id} is {artifact.media_type}, not sound", field="artifact_id", fix="ask for the spectrogram of an audio artifact")
    headers = {"ETag": f'"{artifact.sha256}-spectrogram"', "Cache-Control": "private, max-age=31536000, immutable"}
    return Response(spectrogram_png(_artifact_bytes(services, artifact)), media_type="image/png", headers=headers)


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
    data = _artifact_bytes(services, artifact)
    headers["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    return Response(data, media_type=artifact.media_type, headers=headers)

"""The captioner in the studio: an image uploaded once (POST /api/v1/uploads), a caption job that names it
by its `upload:<sha256>` ref, and the caption stored as the job's text artifact — the same caption that
`aigc.load(run).generate(CaptionRequest(image=...))` gives for that file."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from studio.studio_helpers import LOCAL, finished, submit


@pytest.fixture(scope="module")
def captioner_run(tmp_path_factory):
    from helpers import train_tiny

    return str(train_tiny("captioner", tmp_path_factory.mktemp("captioner") / "run", "train.max_steps=20").run_dir)


@pytest.fixture
def client(make_settings, captioner_run):
    from fastapi.testclient import TestClient

    from aigc.studio.app import create_app
    from aigc.studio.catalog import ModelCatalog

    app = create_app(make_settings(), catalog=ModelCatalog.from_paths({"describe": captioner_run}))
    with TestClient(app, client=LOCAL, raise_server_exceptions=False) as test_client:
        yield test_client


def digit_png() -> bytes:
    pixels = np.zeros((28, 28), np.uint8)
    pixels[6:22, 12:16] = 255  # a one
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_caption_job_runs_on_an_uploaded_image(client, captioner_run, tmp_path):
    models = {m["name"]: m for m in client.get("/api/v1/models").json()["models"]}
    fields = {f["name"]: f for f in models["describe"]["accepts"]}
    assert fields["image"]["format"] == "image"  # the page shows a file input for it
    data = digit_png()
    uploaded = client.post("/api/v1/uploads", files={"image": ("one.png", data, "image/png")})
    assert uploaded.status_code in (200, 201), uploaded.text
    ref = uploaded.json()["ref"]
    job = finished(client, submit(client, "describe", image=ref, num_beams=2)["id"], timeout=60)
    assert job["status"] == "succeeded", job
    assert job["params"]["image"] == ref  # the job keeps the reference, never a server path
    (artifact,) = job["artifacts"]
    assert artifact["kind"] == "text"
    caption = client.get(artifact["url"]).content.decode("utf-8")

    import aigc
    from aigc.generation.requests import CaptionRequest
    from aigc.safety import default_policy

    path = tmp_path / "one.png"
    path.write_bytes(data)
    expected = aigc.load(captioner_run).generate(CaptionRequest(image=str(path), num_beams=2), policy=default_policy()).text
    assert caption == expected  # (a 20-step captioner may say little: the test is the path, not the words)


def test_caption_jobs_without_an_image_or_with_a_non_image_are_refused(client, tmp_path):
    missing = client.post("/api/v1/jobs", json={"model": "describe", "params": {}})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "params.image", missing.text
    server_file = tmp_path / "digit.png"
    server_file.write_bytes(digit_png())
    path = client.post("/api/v1/jobs", json={"model": "describe", "params": {"image": str(server_file)}})
    assert path.status_code == 422 and path.json()["error"]["field"] == "params.image", path.text  # no server paths
    text = client.post("/api/v1/uploads", files={"image": ("notes.png", b"not a picture at all", "image/png")})
    assert text.status_code == 415 and text.json()["error"]["field"] == "image", text.text

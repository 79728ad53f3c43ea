"""`POST /api/v1/verify` on the real app: a job's artifact, signed because AIGC_SIGNING_DIR is set for the
worker, verifies as Valid (and Trusted with AIGC_TRUST_ANCHORS), the same report `aigc verify --json`
gives; a flipped byte is Invalid; a file that is not an image/audio, a form without the file and a file
over the size limit are JSON errors naming the field."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from studio.studio_helpers import finished, submit

pytest.importorskip("c2pa", reason="content credentials need c2pa-python: pip install 'aigc[c2pa]'")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    from aigc.safety.credentials import init_signing

    return init_signing(tmp_path_factory.mktemp("keys") / "dev")


def test_a_signed_job_artifact_verifies_like_the_cli(make_client, keys, monkeypatch, tmp_path):
    monkeypatch.setenv("AIGC_SIGNING_DIR", str(keys))
    client = make_client()
    job = finished(client, submit(client, count=1, seed=4, labels=[3])["id"])
    assert job["status"] == "succeeded", job
    png = client.get(job["artifacts"][0]["url"]).content
    answer = client.post("/api/v1/verify", files={"file": ("digit.png", png, "image/png")})
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["kind"] == "image" and report["credentials"]["state"] == "Valid" and report["proven"]
    assert report["credentials"]["created"]["seeds"] == "4" and report["metadata"]["labels"] == [3]
    path = tmp_path / "digit.png"
    path.write_bytes(png)
    cli = subprocess.run([sys.executable, "-m", "aigc", "verify", str(path), "--json"], capture_output=True, text=True)
    assert json.loads(cli.stdout)["statements"] == report["statements"]  # one report, two faces

    monkeypatch.setenv("AIGC_TRUST_ANCHORS", str(keys / "ca.pem"))
    assert client.post("/api/v1/verify", files={"file": ("digit.png", png, "image/png")}).json()["credentials"]["state"] == "Trusted"
    damaged = bytearray(png)
    damaged[-20] ^= 0x01  # inside the last IDAT chunk's data
    invalid = client.post("/api/v1/verify", files={"file": ("digit.png", bytes(damaged), "image/png")}).json()
    assert invalid["credentials"]["state"] == "Invalid" and not invalid["proven"]
    assert any("INVALID" in statement for statement in invalid["statements"])


def test_bad_uploads_are_json_errors_naming_the_field(make_client):
    client = make_client(max_upload_bytes=4096)
    not_media = client.post("/api/v1/verify", files={"file": ("notes.txt", b"just some text, not a picture", "text/plain")})
    error = not_media.json()["error"]
    assert not_media.status_code == 415 and error["field"] == "file" and "not an image or WAV" in error["message"] and error["fix"]
    wrong_part = client.post("/api/v1/verify", files={"image": ("a.png", b"\x89PNG", "image/png")})
    assert wrong_part.status_code == 422 and wrong_part.json()["error"]["field"] == "file"
    too_big = client.post("/api/v1/verify", files={"file": ("big.png", b"\x89PNG" + b"\x00" * 8000, "image/png")})
    assert too_big.status_code == 413 and too_big.json()["error"]["field"] in ("file", "body"), too_big.text
    not_a_form = client.post("/api/v1/verify", content=b"\x89PNG", headers={"content-type": "image/png"})
    assert not_a_form.status_code == 415 and not_a_form.json()["error"]["field"] == "body"

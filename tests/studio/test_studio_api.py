"""The REST API end to end, on SQLite, PostgreSQL and MariaDB, with real tiny models and worker threads."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image
from studio.studio_helpers import finished, submit

import aigc
from aigc.generation.requests import ImageRequest
from aigc.generation.metadata import parse_a1111_parameters


def test_models_say_what_they_accept(make_client, database_url):
    client = make_client(database_url=database_url)
    models = {m["name"]: m for m in client.get("/api/v1/models").json()["models"]}
    assert set(models) == {"digits", "blobs"}
    digits = {f["name"]: f for f in models["digits"]["accepts"]}
    assert models["digits"]["modality"] == "image" and models["digits"]["family"] == "cgan" and models["digits"]["num_classes"] == 10
    assert digits["labels"]["choices"] == list(range(10)) and digits["count"]["maximum"] == 64
    assert "labels" not in {f["name"] for f in models["blobs"]["accepts"]}  # unconditional: no label control
    assert client.get("/api/v1/models/blobs").json()["family"] == "dcgan"
    missing = client.get("/api/v1/models/nope")
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "name"


def test_job_runs_and_its_artifacts_match_a_direct_call(make_client, database_url, tiny_runs):
    client = make_client(database_url=database_url)
    response = client.post("/api/v1/jobs", json={"model": "digits", "params": {"count": 12, "seed": 40, "labels": [7]}})
    assert response.status_code == 202
    job = response.json()
    assert job["status"] in ("queued", "running", "succeeded") and response.headers["location"] == f"/api/v1/jobs/{job['id']}"
    done = finished(client, job["id"])
    assert done["status"] == "succeeded" and done["progress"] == 1.0 and done["error"] is None and done["duration_ms"] >= 0
    artifacts = done["artifacts"]
    assert [a["index"] for a in artifacts] == list(range(12)) and [a["seed"] for a in artifacts] == list(range(40, 52))
    assert {a["label"] for a in artifacts} == {7}

    loaded = aigc.load(tiny_runs["digits"])
    direct = loaded.generate(ImageRequest(count=12, seed=40, labels=[7]))
    for artifact, expected in zip(artifacts, direct.images):
        content = client.get(artifact["url"])
        assert content.status_code == 200 and content.headers["content-type"] == "image/png"
        assert hashlib.sha256(content.content).hexdigest() == artifact["sha256"] == content.headers["etag"].strip('"')
        picture = Image.open(io.BytesIO(content.content))
        assert np.array_equal(np.asarray(picture)[..., None], expected)  # the API gives exactly the model's images
        parsed = parse_a1111_parameters(picture.text["parameters"])
        assert parsed["Seed"] == str(artifact["seed"]) and parsed["Model"] == loaded.info.model_name and parsed["Label"] == "7"
        assert parsed["Model hash"] == artifact["checkpoint_sha256"] and parsed["Size"] == "8x8"
    meta = client.get(f"/api/v1/artifacts/{artifacts[0]['id']}").json()
    assert meta["parameters"] == {"model": loaded.info.model_name, "seeds": [40], "labels": [7], **loaded.info.provenance()} and meta["model"] == "digits"
    download = client.get(artifacts[0]["url"], params={"download": "true"})
    assert download.headers["content-disposition"].startswith("attachment")


@pytest.mark.parametrize(
    "body, status, field, words",
    [
        ({"model": "nope"}, 422, "model", "unknown model"),
        ({"model": "digits", "params": {"count": 65}}, 422, "params.count", "at most 64"),
        ({"model": "digits", "params": {"count": 0}}, 422, "params.count", "greater than or equal to 1"),
        ({"model": "digits", "params": {"steps": 5}}, 422, "params.steps", "does not take"),
        ({"model": "digits", "params": {"labels": [12]}}, 422, "params.labels", "out of range"),
        ({"model": "blobs", "params": {"labels": [1]}}, 422, "params.labels", "unconditional"),
        ({"model": "digits", "params": {"seed": -2}}, 422, "params.seed", "greater than or equal to -1"),
        ({"model": "digits", "params": {"seed": 2**63 - 2, "count": 4}}, 422, "params.seed", "2**63"),
        ({"model": "digits", "params": {"prompt": "a cat\x00"}}, 422, "params.prompt", "control character"),
        ({"model": "digits", "params": {"prompt": "x" * 2001}}, 422, "params.prompt", "limit is 2000"),
        ({"model": "digits", "colour": "red"}, 422, "colour", "unknown field"),
        ({"params": {}}, 422, "model", "required"),
    ],
)
def test_bad_input_gets_a_json_error_that_names_the_field(make_client, body, status, field, words):
    client = make_client()
    response = client.post("/api/v1/jobs", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field and words in error["message"] and "Traceback" not in response.text
    assert client.get("/api/v1/jobs").json()["total"] == 0  # nothing was queued


def test_malformed_requests_and_unknown_things(make_client):
    client = make_client(max_body_bytes=4096)
    broken = client.post("/api/v1/jobs", content=b'{"model": ', headers={"content-type": "application/json"})
    assert broken.status_code == 400 and broken.json()["error"]["field"] == "body"
    huge = client.post("/api/v1/jobs", json={"model": "digits", "params": {"prompt": "x" * 5000}})
    assert huge.status_code == 413 and huge.json()["error"]["field"] == "body"
    chunked = client.post("/api/v1/jobs", content=iter([b'{"model": "digits", "params": {"prompt": "', b"x" * 5000, b'"}}']), headers={"content-type": "application/json"})
    assert chunked.status_code == 413  # no Content-Length: counted while reading
    for path in ("/api/v1/jobs/" + "0" * 32, "/api/v1/jobs/not-an-id", "/api/v1/artifacts/" + "f" * 32, "/api/v1/artifacts/x/content", "/api/v1/nothing"):
        response = client.get(path)
        assert response.status_code == 404 and response.json()["error"]["message"], path
    assert client.get("/api/v1/jobs/" + "0" * 32).json()["error"]["field"] == "job_id"
    assert client.delete("/api/v1/jobs").status_code == 405 and "error" in client.delete("/api/v1/jobs").json()
    assert client.get("/api/v1/jobs", params={"per_page": 1000}).json()["error"]["field"] == "per_page"
    assert client.get("/api/v1/jobs", params={"status": "lost"}).json()["error"]["field"] == "status"


def test_history_pages_and_filters(make_client, database_url):
    client = make_client(database_url=database_url, batch_jobs=4)
    ids = [submit(client, "digits", count=1, seed=i)["id"] for i in range(5)] + [submit(client, "blobs", count=2)["id"]]
    for job_id in ids:
        assert finished(client, job_id)["status"] == "succeeded"
    first = client.get("/api/v1/jobs", params={"per_page": 4}).json()
    second = client.get("/api/v1/jobs", params={"per_page": 4, "page": 2}).json()
    assert first["total"] == 6 and first["pages"] == 2 and len(first["items"]) == 4 and len(second["items"]) == 2
    assert [j["id"] for j in first["items"] + second["items"]] == ids[::-1]  # newest first, no repeats
    only_blobs = client.get("/api/v1/jobs", params={"model": "blobs"}).json()
    assert only_blobs["total"] == 1 and only_blobs["items"][0]["artifacts"][0]["width"] == 8
    assert client.get("/api/v1/jobs", params={"status": "failed"}).json()["total"] == 0
    assert client.get("/api/v1/jobs", params={"q": "100%_cat"}).json()["total"] == 0  # no prompts: image models take none
    created = first["items"][-1]["created_at"]
    assert client.get("/api/v1/jobs", params={"created_after": created}).json()["total"] == 4


def test_cancel_a_queued_job_and_not_a_finished_one(make_client, database_url):
    idle = make_client(database_url=database_url, workers=0)  # accepts jobs, runs none
    job = submit(idle, count=2)
    cancelled = idle.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert idle.post(f"/api/v1/jobs/{job['id']}/cancel").json()["status"] == "cancelled"  # idempotent
    busy = make_client(database_url=database_url)
    assert finished(busy, job["id"])["status"] == "cancelled" and finished(busy, job["id"])["artifacts"] == []
    done = finished(busy, submit(busy, count=1)["id"])
    conflict = busy.post(f"/api/v1/jobs/{done['id']}/cancel")
    assert conflict.status_code == 409 and conflict.json()["error"]["field"] == "job_id"


def test_cancel_a_running_job_stops_it_between_steps(make_client):
    client = make_client(chunk_images=1)
    job = submit(client, count=64)
    for _ in range(500):  # cancel as soon as it runs
        if client.get(f"/api/v1/jobs/{job['id']}").json()["status"] != "queued":
            break
    client.post(f"/api/v1/jobs/{job['id']}/cancel")
    done = finished(client, job["id"])
    assert done["status"] == "cancelled" and len(done["artifacts"]) < 64


def test_api_keys_limits_and_accounts(make_client, database_url):
    from aigc.studio.keys import create_key, revoke_key

    client = make_client(database_url=database_url, auth="required", rate_limit_per_minute=3, queue_limit=50)
    db = client.app.state.services.db
    alice, _ = create_key(db, "alice")
    bob, _ = create_key(db, "bob", queue_limit=1)
    missing = client.post("/api/v1/jobs", json={"model": "digits"})
    assert missing.status_code == 401 and missing.json()["error"]["field"] == "X-API-Key"
    assert client.get("/api/v1/models", headers={"X-API-Key": alice[:-2] + "xx"}).status_code == 401
    assert client.get("/api/v1/health").status_code == 200  # health needs no key

    job = submit(client, headers={"X-API-Key": alice}, count=1)
    assert client.get(f"/api/v1/jobs/{job['id']}", headers={"Authorization": f"Bearer {alice}"}).status_code == 200
    assert client.get(f"/api/v1/jobs/{job['id']}", headers={"X-API-Key": bob}).status_code == 404  # not bob's
    assert client.get("/api/v1/jobs", headers={"X-API-Key": bob}).json()["total"] == 0
    done = finished(client, job["id"], headers={"X-API-Key": alice})
    assert client.get(done["artifacts"][0]["url"], headers={"X-API-Key": bob}).status_code == 404

    submit(client, headers={"X-API-Key": alice}, count=1)
    submit(client, headers={"X-API-Key": alice}, count=1)
    limited = client.post("/api/v1/jobs", json={"model": "digits", "params": {"count": 1}}, headers={"X-API-Key": alice})
    assert limited.status_code == 429 and "3 jobs a minute" in limited.json()["error"]["message"] and limited.headers["retry-after"]

    assert revoke_key(db, alice.split("_")[1]) == 1
    assert client.get("/api/v1/models", headers={"X-API-Key": alice}).status_code == 401


def test_queue_limit_per_key(make_client):
    client = make_client(workers=0, queue_limit=2)
    submit(client, count=1)
    submit(client, count=1)
    refused = client.post("/api/v1/jobs", json={"model": "digits", "params": {"count": 1}})
    assert refused.status_code == 429 and "queue limit" in refused.json()["error"]["message"]


def test_keys_are_required_off_loopback_in_auto_mode(make_client):
    remote = make_client(client=("203.0.113.9", 40000))  # auth=auto, server on 127.0.0.1, but a remote caller
    assert remote.get("/api/v1/models").status_code == 401
    exposed = make_client(host="0.0.0.0")
    assert exposed.get("/api/v1/models").status_code == 401
    assert exposed.get("/api/v1/health").json()["auth_required"] is True
    assert make_client().get("/api/v1/models").status_code == 200  # loopback only: no key needed


def test_no_path_traversal(make_client):
    client = make_client()
    for path in ("/static/../../../../etc/passwd", "/static/..%2f..%2f..%2fetc%2fpasswd", "/static/%2e%2e/%2e%2e/etc/passwd", "/api/v1/artifacts/..%2F..%2Fetc%2Fpasswd/content", "/api/v1/artifacts/%2e%2e/content", "/docs-assets/../../../../etc/passwd"):
        response = client.get(path)
        assert response.status_code in (404, 400), path
        assert b"root:" not in response.content


def test_cors_allows_only_configured_origins(make_client):
    client = make_client(cors_origins=["https://app.example"])
    allowed = client.options("/api/v1/jobs", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "X-API-Key"})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "https://app.example"
    denied = client.options("/api/v1/jobs", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in denied.headers
    plain = make_client().get("/api/v1/health", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in plain.headers  # no origins configured: none allowed


def test_metrics_and_health(make_client):
    client = make_client()
    finished(client, submit(client, count=2)["id"])
    text = client.get("/metrics").text
    assert 'aigc_jobs{status="succeeded"} 1' in text and "aigc_queue_depth 0" in text
    assert "aigc_job_latency_seconds_count 1" in text and 'aigc_job_latency_seconds_bucket{le="+Inf"} 1' in text
    assert 'aigc_http_requests_total{method="POST",route="/api/v1/jobs",status="202"} 1' in text
    health = client.get("/api/v1/health").json()
    assert health["status"] == "ok" and health["database"] == "ok" and health["models"] == 2 and health["executor"]["workers"] == 1


def test_openapi_schema_and_pages_are_served(make_client):
    client = make_client()
    schema = client.get("/openapi.json").json()
    assert {"/api/v1/jobs", "/api/v1/jobs/{job_id}", "/api/v1/jobs/{job_id}/cancel", "/api/v1/artifacts/{artifact_id}/content", "/api/v1/models", "/api/v1/health"} <= set(schema["paths"])
    assert "422" in schema["paths"]["/api/v1/jobs"]["post"]["responses"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text  # offline: no CDN
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "aigc studio" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_a_database_that_goes_away_gives_503_json_not_a_traceback(make_client, tmp_path):
    from studio.studio_helpers import fresh_database

    with fresh_database("postgresql", tmp_path) as url:
        client = make_client(database_url=url, workers=0)
        job = submit(client, count=1)
    # the database is gone (dropped, its connections killed)
    for path in ("/api/v1/jobs", f"/api/v1/jobs/{job['id']}"):
        response = client.get(path)
        assert response.status_code == 503 and response.json()["error"]["field"] == "AIGC_DATABASE_URL", response.text
    health = client.get("/api/v1/health")
    assert health.status_code == 503 and health.json()["database"] == "unreachable"

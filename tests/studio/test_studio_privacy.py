"""Privacy in the studio, on SQLite, PostgreSQL and MariaDB: a key's account exports and deletes all of its
prompts, jobs and artifacts (files included, other accounts untouched), `aigc studio purge` keeps the
retention period, prompt scrubbing keeps personal data out of the database and the files, no prompt reaches
the logs or /metrics, and a prompt the policy warns about runs with the decision stored on the job."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import zipfile
from datetime import timedelta

import pytest
from helpers import train_tiny
from sqlalchemy import select, update
from studio.studio_helpers import finished, submit

from aigc.studio.db.models import Artifact, Job, Prompt, utcnow

EMAIL = "ann.lee@example.com"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """This module's models (make_client serves them): a tiny GPT (prompts) and a tiny conditional GAN (PNG files)."""
    from aigc.studio.catalog import ModelCatalog

    root = tmp_path_factory.mktemp("privacy-models")
    return ModelCatalog.from_paths({"poet": str(train_tiny("gpt", root / "gpt").run_dir), "digits": str(train_tiny("cgan", root / "cgan").run_dir)})


def _two_accounts(client):
    from aigc.studio.keys import create_key

    db = client.app.state.services.db
    return {"X-API-Key": create_key(db, "alice")[0]}, {"X-API-Key": create_key(db, "bob")[0]}


def test_export_holds_every_job_prompt_and_file_of_the_account_only(make_client, database_url):
    client = make_client(database_url=database_url, auth="required")
    alice, bob = _two_accounts(client)
    text_job = finished(client, submit(client, "poet", headers=alice, prompt="Once upon a time", max_tokens=6, seed=1)["id"], headers=alice)
    image_job = finished(client, submit(client, "digits", headers=alice, count=2, seed=3)["id"], headers=alice)
    finished(client, submit(client, "poet", headers=bob, prompt="bob's own prompt", max_tokens=4, seed=2)["id"], headers=bob)

    response = client.get("/api/v1/me/export", headers=alice)
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    jobs = json.loads(archive.read("jobs.json"))
    assert [j["id"] for j in jobs] == [text_job["id"], image_job["id"]]
    assert jobs[0]["prompt"] == "Once upon a time" and jobs[0]["params"]["prompt"] == "Once upon a time"
    account = json.loads(archive.read("account.json"))
    assert account["account"] == "alice" and account["jobs"] == 2 and account["keys"][0]["prefix"] == alice["X-API-Key"].split("_")[1]
    assert alice["X-API-Key"] not in archive.read("account.json").decode()  # the key itself is never exported
    for job in jobs:
        for artifact in job["artifacts"]:
            assert archive.read(artifact["file"]) == client.get(artifact["url"], headers=alice).content  # the very bytes
    assert len([n for n in archive.namelist() if n.startswith("files/")]) == 3
    assert b"bob's own prompt" not in response.content  # another account's jobs are not in it
    assert client.get("/api/v1/me/export").status_code == 401  # a key is needed


def test_delete_me_removes_prompts_jobs_and_files_and_leaves_other_accounts(make_client, database_url):
    client = make_client(database_url=database_url, auth="required")
    alice, bob = _two_accounts(client)
    services = client.app.state.services
    mine = [finished(client, submit(client, "poet", headers=alice, prompt="delete me please", max_tokens=5, seed=4)["id"], headers=alice),
            finished(client, submit(client, "digits", headers=alice, count=2, seed=11)["id"], headers=alice)]
    theirs = finished(client, submit(client, "digits", headers=bob, count=1, seed=30)["id"], headers=bob)
    my_keys = [a["url"] for job in mine for a in job["artifacts"]]
    with services.db.session() as session:
        stored = session.scalars(select(Artifact.storage_key).where(Artifact.job_id.in_([j["id"] for j in mine]))).all()
    assert all(services.store.exists(key) for key in stored) and len(stored) == 3

    response = client.delete("/api/v1/me", headers=alice)
    assert response.status_code == 200, response.text
    assert response.json() == {"jobs": 2, "files": 3, "still_running": 0}
    assert not any(services.store.exists(key) for key in stored)  # the files are gone from disk
    assert client.get("/api/v1/jobs", headers=alice).json()["total"] == 0
    assert all(client.get(url, headers=alice).status_code == 404 for url in my_keys)
    with services.db.session() as session:
        assert session.scalars(select(Prompt.text)).all() == []  # bob's job had no prompt; alice's prompt is gone
        rows = session.scalars(select(Job).where(Job.id.in_([j["id"] for j in mine]))).all()
        assert all(row.params == {} and row.deleted_at is not None and not row.artifacts for row in rows)
    archive = zipfile.ZipFile(io.BytesIO(client.get("/api/v1/me/export", headers=alice).content))
    assert json.loads(archive.read("jobs.json")) == []
    kept = finished(client, theirs["id"], headers=bob)  # bob's job and file are untouched
    assert client.get(kept["artifacts"][0]["url"], headers=bob).status_code == 200


def test_delete_me_cancels_queued_jobs_first(make_client, sqlite_url):
    client = make_client(workers=0)  # nothing runs: the job stays queued
    job = submit(client, "poet", prompt="waiting", max_tokens=3)
    assert client.delete("/api/v1/me").json() == {"jobs": 1, "files": 0, "still_running": 0}
    assert client.get(f"/api/v1/jobs/{job['id']}").status_code == 404
    with client.app.state.services.db.session() as session:
        row = session.get(Job, job["id"])
        assert row.status == "cancelled" and row.params == {} and row.prompt_id is None


def _age(services, job_ids, days):
    with services.db.session() as session:
        session.execute(update(Job).where(Job.id.in_(job_ids)).values(created_at=utcnow() - timedelta(days=days)))
        session.commit()


def test_purge_deletes_finished_jobs_older_than_the_retention_period(make_client, database_url):
    from aigc.studio.jobs.queue import purge

    client = make_client(database_url=database_url)
    services = client.app.state.services
    old = finished(client, submit(client, "digits", count=2, seed=50)["id"])
    new = finished(client, submit(client, "digits", count=1, seed=60)["id"])
    _age(services, [old["id"]], 40)
    with services.db.session() as session:
        old_keys = session.scalars(select(Artifact.storage_key).where(Artifact.job_id == old["id"])).all()

    dry = purge(services, 30, dry_run=True)
    assert dry == {"jobs": 1, "artifacts": 2, "bytes": sum(a["size_bytes"] for a in old["artifacts"]), "files": 0}
    assert all(services.store.exists(key) for key in old_keys)  # a dry run deletes nothing
    assert purge(services, 30)["files"] == 2
    assert not any(services.store.exists(key) for key in old_keys)
    with services.db.session() as session:
        assert session.get(Job, old["id"]) is None and session.get(Job, new["id"]) is not None
    assert [j["id"] for j in client.get("/api/v1/jobs").json()["items"]] == [new["id"]]
    assert purge(services, 30)["jobs"] == 0


def test_aigc_studio_purge_command(make_client, tmp_path):
    client = make_client()
    services = client.app.state.services
    job = finished(client, submit(client, "digits", count=1, seed=70)["id"])
    _age(services, [job["id"]], 10)
    url, data = services.settings.resolved_database_url, str(services.settings.data_dir)

    def run(*args, env=None):
        import os

        return subprocess.run([sys.executable, "-m", "aigc", "studio", "purge", "--database-url", url, "--data-dir", data, *args],
                              capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1", "AIGC_RETENTION_DAYS": "", **(env or {})})

    missing = run()
    assert missing.returncode == 2 and "--older-than-days" in missing.stderr and "AIGC_RETENTION_DAYS" in missing.stderr and "Traceback" not in missing.stderr
    dry = run("--dry-run", env={"AIGC_RETENTION_DAYS": "7"})
    assert dry.returncode == 0 and "would delete 1 job(s) older than 7 days: 1 artifact(s)" in dry.stdout, dry.stderr
    assert run("--older-than-days", "30").stdout.startswith("deleted 0 job(s)")
    done = run("--older-than-days", "7")
    assert done.returncode == 0 and "deleted 1 job(s)" in done.stdout and "1 file(s)" in done.stdout
    assert client.get(f"/api/v1/jobs/{job['id']}").status_code == 404


def test_a_warned_prompt_runs_and_the_job_shows_the_decision(make_client, database_url):
    client = make_client(database_url=database_url)
    job = finished(client, submit(client, "poet", prompt="a photo of a n.u.d.e woman", max_tokens=4, seed=1)["id"])
    assert job["status"] == "succeeded"  # warn: it runs
    note = job["moderation"]
    assert note["action"] == "warn"
    finding = note["findings"][0]
    assert finding["field"] == "prompt" and finding["category"] == "sexual" and finding["action"] == "warn"
    assert finding["evidence"] == "n.u.d.e" and finding["matched"] == "nude" and finding["score"] >= finding["threshold"]
    assert client.get("/api/v1/jobs").json()["items"][0]["moderation"] == note  # the history shows it too
    plain = finished(client, submit(client, "poet", prompt="Once upon a time", max_tokens=4, seed=1)["id"])
    assert plain["moderation"] is None


def test_prompt_scrubbing_keeps_personal_data_out_of_the_database_and_files(make_client, database_url):
    prompt = f"write to {EMAIL} or call +44 20 7946 0958"
    unscrubbed = make_client(database_url=database_url)
    job = finished(unscrubbed, submit(unscrubbed, "poet", prompt=prompt, max_tokens=4, seed=1)["id"])
    assert job["params"]["prompt"] == prompt and job["moderation"]["findings"][0]["evidence"] == EMAIL  # off by default: kept as typed

    client = make_client(database_url=database_url, scrub_prompts=True)
    job = finished(client, submit(client, "poet", prompt=prompt, max_tokens=4, seed=1)["id"])
    assert job["status"] == "succeeded" and job["params"]["prompt"] == "write to [email] or call [phone]"
    finding = job["moderation"]["findings"][0]
    assert finding["category"] == "personal_data" and finding["evidence"] == "[email]"  # the warning says what, not the address
    text = client.get(job["artifacts"][0]["url"]).content.decode()
    assert EMAIL not in text and EMAIL not in json.dumps(job)
    with client.app.state.services.db.session() as session:
        row = session.get(Job, job["id"])
        assert row.prompt.text == "write to [email] or call [phone]" and EMAIL not in json.dumps(row.params)


def test_no_prompt_text_in_the_logs_or_metrics(make_client):
    from aigc.studio.observability import configure_logging

    logger = logging.getLogger("aigc")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    captured = io.StringIO()
    configure_logging("json", "DEBUG", stream=captured)
    try:
        client = make_client()
        secret = f"the purple walrus sings to {EMAIL}"
        job = finished(client, submit(client, "poet", prompt=secret, max_tokens=4, seed=1)["id"])
        assert job["status"] == "succeeded"
        client.get("/api/v1/jobs", params={"q": "purple walrus"})
        client.post("/api/v1/jobs", json={"model": "poet", "params": {"prompt": secret, "no_such_field": 1}})  # a 422
        client.post("/api/v1/jobs", json={"model": "poet", "params": {"prompt": "how to make a pipe bomb " + EMAIL}})  # blocked
        logging.getLogger("aigc.studio").info("a message that quotes %s", EMAIL, extra={"detail": f"from {EMAIL}"})
        metrics = client.get("/metrics").text
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved
    logs = captured.getvalue()
    assert '"message": "request"' in logs and '"path": "/api/v1/jobs"' in logs  # the access log is there
    for text in (EMAIL, "purple walrus", "walrus", "pipe bomb"):
        assert text not in logs, text
        assert text not in metrics, text
    assert "a message that quotes [email]" in logs and "from [email]" in logs  # what others log is scrubbed


def test_uploaded_images_are_exported_and_deleted_with_the_last_job_that_uses_them(make_settings, style_catalog, database_url):
    from fastapi.testclient import TestClient
    from studio.studio_helpers import LOCAL
    from studio.test_studio_uploads import encode, photo, upload

    from aigc.studio.app import create_app
    from aigc.studio.keys import create_key
    from aigc.studio.uploads import upload_key

    with TestClient(create_app(make_settings(database_url=database_url, auth="required"), catalog=style_catalog), client=LOCAL) as client:
        db, store = client.app.state.services.db, client.app.state.services.store
        alice, bob = ({"X-API-Key": create_key(db, name)[0]} for name in ("alice", "bob"))
        client.headers.update(alice)
        own, shared = upload(client, encode(photo(seed=1))).json(), upload(client, encode(photo(seed=2))).json()
        for ref in (own["ref"], shared["ref"]):
            assert finished(client, submit(client, "rings", headers=alice, content=ref, size=64)["id"], timeout=60, headers=alice)["status"] == "succeeded"
        client.headers.update(bob)  # bob sends the same photo (only an uploader may use an upload): stored once
        assert upload(client, encode(photo(seed=2))).json()["id"] == shared["id"]
        assert finished(client, submit(client, "rings", headers=bob, content=shared["ref"], size=64)["id"], timeout=60, headers=bob)["status"] == "succeeded"

        archive = zipfile.ZipFile(io.BytesIO(client.get("/api/v1/me/export", headers=alice).content))
        jobs = json.loads(archive.read("jobs.json"))
        assert [list(job["uploads"]) for job in jobs] == [[own["ref"]], [shared["ref"]]]
        assert archive.read(jobs[0]["uploads"][own["ref"]]) == encode(photo(seed=1))  # the image as it was sent

        assert client.delete("/api/v1/me", headers=alice).json() == {"jobs": 2, "files": 3, "still_running": 0}  # two results, one upload
        assert upload_key(store, own["id"]) is None and client.get(f"/api/v1/uploads/{own['id']}", headers=alice).status_code == 404
        assert upload_key(store, shared["id"]) is not None  # bob owns it and his job names it
        assert client.delete("/api/v1/me", headers=bob).json()["files"] == 2  # his result and, now, the shared upload
        assert upload_key(store, shared["id"]) is None


def _png(seed: int = 0) -> bytes:
    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _upload(client, data: bytes, headers: dict) -> dict:
    response = client.post("/api/v1/uploads", files={"content": ("photo.png", data, "image/png")}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_an_upload_is_its_uploaders_only_and_goes_with_the_last_of_them(make_client, database_url):
    from aigc.studio.uploads import upload_key

    client = make_client(database_url=database_url, auth="required")
    alice, bob = _two_accounts(client)
    store = client.app.state.services.store
    data = _png()
    mine = _upload(client, data, alice)
    assert client.get(mine["url"], headers=alice).content == data
    # The id is the sha256 of the bytes, printed in every result made from them: knowing it is not enough.
    assert client.get(mine["url"], headers=bob).status_code == 404
    refused = client.post("/api/v1/jobs", json={"model": "digits", "params": {"count": 1, "content": mine["ref"]}}, headers=bob)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == "params.content" and f"no upload with id {mine['id']}" in refused.json()["error"]["message"]

    unused = _upload(client, _png(1), alice)  # uploaded, never used in a job: still hers, exported and deleted
    archive = zipfile.ZipFile(io.BytesIO(client.get("/api/v1/me/export", headers=alice).content))
    assert {f"uploads/{mine['id']}.png", f"uploads/{unused['id']}.png"} <= set(archive.namelist())
    assert archive.read(f"uploads/{mine['id']}.png") == data

    assert _upload(client, data, bob)["id"] == mine["id"]  # the same bytes from bob: stored once, owned by both
    assert client.delete("/api/v1/me", headers=alice).status_code == 200
    assert client.get(mine["url"], headers=alice).status_code == 404  # alice's claim is gone ...
    assert client.get(mine["url"], headers=bob).content == data  # ... bob's file is not
    assert upload_key(store, unused["id"]) is None  # hers alone: deleted with her account
    assert client.delete("/api/v1/me", headers=bob).json()["files"] == 1  # the last owner takes the file with them
    assert upload_key(store, mine["id"]) is None


def test_purge_ends_old_claims_on_uploads_and_deletes_the_unused_files(make_client, database_url):
    from aigc.studio.db.models import UploadOwner
    from aigc.studio.jobs.queue import purge
    from aigc.studio.uploads import upload_key

    client = make_client(database_url=database_url, auth="required")
    alice, _ = _two_accounts(client)
    services = client.app.state.services
    old, new = _upload(client, _png(2), alice), _upload(client, _png(3), alice)
    with services.db.session() as session:
        session.execute(update(UploadOwner).where(UploadOwner.sha256 == old["id"]).values(created_at=utcnow() - timedelta(days=40)))
        session.commit()
    assert purge(services, 30)["files"] == 1
    assert upload_key(services.store, old["id"]) is None and client.get(old["url"], headers=alice).status_code == 404
    assert client.get(new["url"], headers=alice).status_code == 200

"""The Celery executor against the real Redis server, with a real `aigc worker` process.

Jobs accepted while no worker runs wait in the broker; jobs whose broker message was lost (Redis here
keeps nothing on disk) are sent again when an API server starts; the worker shares only the database
and the artifact folder with the API.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from urllib.parse import urlparse

import pytest
from studio.studio_helpers import REDIS, finished, fresh_database, port_open, require, submit


@pytest.fixture
def redis_url():
    parsed = urlparse(REDIS)
    require(port_open(parsed.hostname, parsed.port or 6379), f"a Redis server at {REDIS} (.ci/run starts it)")
    import redis

    client = redis.Redis.from_url(REDIS)
    client.flushdb()
    yield REDIS
    client.flushdb()
    client.close()


def start_worker(settings, tiny_runs) -> subprocess.Popen:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "AIGC_DATABASE_URL": settings.resolved_database_url,
        "AIGC_BROKER_URL": settings.broker_url,
        "AIGC_DATA_DIR": str(settings.data_dir),
        "AIGC_MODELS": json.dumps(tiny_runs),
        "AIGC_ZOO": "false",
    }
    code = "import typer; from aigc.studio.cli import worker; typer.run(worker)"
    return subprocess.Popen([sys.executable, "-c", code, "--name", "test-worker@%h", "--loglevel", "WARNING"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_celery_workers_run_jobs_and_nothing_accepted_is_lost(backend, redis_url, make_client, make_settings, tiny_runs, tmp_path):
    import redis

    with fresh_database(backend, tmp_path) as url:
        overrides = {"database_url": url, "executor": "celery", "broker_url": redis_url}
        first = make_client(**overrides)
        waiting = submit(first, count=3, seed=5)
        assert first.get(f"/api/v1/jobs/{waiting['id']}").json()["status"] == "queued"  # no worker yet
        assert first.get("/api/v1/health").json()["executor"]["executor"] == "celery"

        redis.Redis.from_url(redis_url).flushdb()  # the broker lost the message (Redis restarted)
        make_client(**overrides)  # an API server starts: it sends queued jobs again

        worker = start_worker(make_settings(**overrides), tiny_runs)
        try:
            done = finished(first, waiting["id"], timeout=60)
            assert done["status"] == "succeeded" and [a["seed"] for a in done["artifacts"]] == [5, 6, 7], done
            assert first.get(done["artifacts"][0]["url"]).content[:8] == b"\x89PNG\r\n\x1a\n"  # written by the worker
            second = finished(first, submit(first, "blobs", count=2)["id"], timeout=60)
            assert second["status"] == "succeeded" and len(second["artifacts"]) == 2
            with first.app.state.services.db.session() as session:
                from aigc.studio.db.models import Job

                owners = {job.worker_id.split(":")[1] for job in session.query(Job).all()}
            assert owners == {str(worker.pid)}  # run by the worker process, not the API
        finally:
            output = stop(worker)
        assert worker.returncode is not None and "Traceback" not in output, output


def test_worker_refuses_to_start_without_its_database(redis_url, tiny_runs, make_settings, tmp_path):
    settings = make_settings(database_url="postgresql://nobody@127.0.0.1:1/none", broker_url=redis_url)
    env = {**os.environ, "AIGC_DATABASE_URL": settings.database_url, "AIGC_BROKER_URL": redis_url, "AIGC_DATA_DIR": str(tmp_path), "AIGC_ZOO": "false"}
    code = "import sys, typer; from aigc.errors import AigcError; from aigc.studio.cli import worker\ntry:\n    typer.run(worker)\nexcept AigcError as e:\n    print(e); sys.exit(2)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "AIGC_DATABASE_URL" in result.stdout and "Traceback" not in result.stderr


def test_a_job_whose_worker_died_is_swept_back_to_the_broker(redis_url, make_client, make_settings, tiny_runs, tmp_path):
    import redis
    from sqlalchemy import update

    from aigc.studio.db.models import Job, utcnow

    overrides = {"database_url": f"sqlite:///{tmp_path / 'studio.db'}", "executor": "celery", "broker_url": redis_url, "job_lease_seconds": 1.0}
    api = make_client(**overrides)
    job = submit(api, count=2, seed=3)
    redis.Redis.from_url(redis_url).flushdb()  # its message was used up by a worker on another machine, which died
    with api.app.state.services.db.session() as session:
        session.execute(update(Job).where(Job.id == job["id"]).values(status="running", worker_id="elsewhere:4242:w", lease_until=utcnow(), attempts=1))
        session.commit()
    worker = start_worker(make_settings(**overrides), tiny_runs)
    try:
        done = finished(api, job["id"], timeout=60)  # the API server's sweep queued it again and sent it
        assert done["status"] == "succeeded" and [a["seed"] for a in done["artifacts"]] == [3, 4], done
        assert done["attempts"] == 2
    finally:
        output = stop(worker)
    assert "Traceback" not in output, output

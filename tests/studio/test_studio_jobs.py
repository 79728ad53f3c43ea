"""Jobs survive restarts, batch by model, and the model cache stays bounded; migrations match the models."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import update
from studio.studio_helpers import finished, submit

from aigc.studio.catalog import ModelCache
from aigc.studio.db.models import Job, utcnow
from aigc.studio.jobs import queue, runner
from aigc.studio.services import build_services


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_restart_requeues_jobs_whose_worker_process_died(make_client, make_settings, catalog, database_url):
    settings = make_settings(database_url=database_url, workers=0)
    idle = make_client(database_url=database_url, workers=0)
    job = submit(idle, count=3, seed=9)
    services = build_services(settings, catalog)
    # A worker in another process on this host took the job, then that process died mid-run.
    assert queue.claim(services, job["id"], f"{socket.gethostname()}:{dead_pid()}:aigc-worker-0")
    assert idle.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "running"
    services.close()

    restarted = make_client(database_url=database_url)  # a new server: its executor re-queues, then runs it
    done = finished(restarted, job["id"])
    assert done["status"] == "succeeded" and done["attempts"] == 2 and [a["seed"] for a in done["artifacts"]] == [9, 10, 11]


def test_an_expired_lease_requeues_a_job_from_another_machine(make_client, make_settings, catalog):
    idle = make_client(workers=0)
    job = submit(idle, count=1)
    services = build_services(make_settings(), catalog)
    assert queue.claim(services, job["id"], "other-host:1234:worker")
    assert queue.requeue_stale(services) == 0  # its lease is still valid: leave it alone
    with services.db.session() as session:
        session.execute(update(Job).where(Job.id == job["id"]).values(lease_until=utcnow() - timedelta(seconds=1)))
        session.commit()
    assert queue.requeue_stale(services) == 1
    assert idle.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "queued"
    services.close()


def test_a_job_that_keeps_killing_its_worker_fails_after_max_attempts(make_client, make_settings, catalog):
    idle = make_client(workers=0, max_attempts=2)
    job = submit(idle, count=1)
    services = build_services(make_settings(max_attempts=2), catalog)
    for _ in range(2):
        assert queue.claim(services, job["id"], f"{socket.gethostname()}:{dead_pid()}:w")
        queue.requeue_stale(services)
    body = idle.get(f"/api/v1/jobs/{job['id']}").json()
    assert body["status"] == "failed" and "gave up after 2 attempts" in body["error"]
    services.close()


def test_workers_take_same_model_jobs_together_and_load_the_model_once(make_client, make_settings, catalog):
    idle = make_client(workers=0)
    digits = [submit(idle, "digits", count=1, seed=i)["id"] for i in range(3)]
    blobs = submit(idle, "blobs", count=1)["id"]
    more = submit(idle, "digits", count=2)["id"]
    services = build_services(make_settings(batch_jobs=8), catalog)
    batch = queue.claim_batch(services, "here:1:w")
    assert batch == [*digits, more]  # the oldest job and every queued job of its model and settings
    runner.run_claimed(services, batch, "here:1:w")
    assert services.cache.loads == 1
    assert [finished(idle, job_id)["status"] for job_id in batch] == ["succeeded"] * 4
    assert queue.claim_batch(services, "here:1:w") == [blobs]
    assert queue.claim_batch(services, "here:1:w") == []  # nothing is claimed twice
    services.close()


def _run_jobs(make_client, make_settings, catalog, folder, jobs, **settings) -> list[dict]:
    """Submit `jobs` to a fresh studio, run them with one worker as claim_batch hands them out; the finished jobs."""
    place = {"data_dir": folder / "data", "database_url": f"sqlite:///{folder / 'studio.db'}"}
    idle = make_client(workers=0, **place)
    ids = [submit(idle, **params)["id"] for params in jobs]
    services = build_services(make_settings(**place, **settings), catalog)
    while batch := queue.claim_batch(services, "here:1:w"):
        runner.run_claimed(services, batch, "here:1:w")
    done = [finished(idle, job_id) for job_id in ids]
    for job in done:
        job["files"] = [idle.get(artifact["url"]).content for artifact in job["artifacts"]]
    services.close()
    return done


def test_jobs_of_one_model_run_together_and_each_gets_the_files_it_gets_alone(make_client, make_settings, catalog, tmp_path):
    # Different counts, seeds (overlapping ones too) and labels; the default policy (watermarks) applies.
    jobs = [
        {"model": "digits", "count": 3, "seed": 5}, {"model": "digits", "count": 2, "seed": 40, "labels": [7]},
        {"model": "digits", "count": 4, "seed": 6, "labels": [1, 2, 3, 4]}, {"model": "digits", "count": 1, "seed": 2**40},
    ]
    # batch_images=6: two forward passes, jobs 1+2 (5 images) and 3+4 (5 images).
    together = _run_jobs(make_client, make_settings, catalog, tmp_path / "together", jobs, batch_jobs=8, batch_images=6)
    alone = _run_jobs(make_client, make_settings, catalog, tmp_path / "alone", jobs, batch_jobs=1)
    assert [job["status"] for job in together] == [job["status"] for job in alone] == ["succeeded"] * 4
    assert all("with 1 other job(s) in one batch" in job["message"] for job in together), [job["message"] for job in together]
    assert not any("batch" in job["message"] for job in alone)
    assert [[a["seed"] for a in job["artifacts"]] for job in together] == [[5, 6, 7], [40, 41], [6, 7, 8, 9], [2**40]]
    for batched, single in zip(together, alone):
        assert batched["files"] == single["files"]  # byte for byte: pixels, seeds, labels, provenance
        assert [a["label"] for a in batched["artifacts"]] == [a["label"] for a in single["artifacts"]]


def test_merged_requests_keep_each_samples_seed_through_chunks():
    from aigc.generation.requests import GenerationRequest, ImageRequest

    merged = GenerationRequest.merge([ImageRequest(count=2, seed=10), ImageRequest(count=3, seed=3, labels=[1])], num_classes=4)
    assert merged.count == 5 and merged.sample_seeds() == [10, 11, 3, 4, 5] and merged.labels == [0, 1, 1, 1, 1]
    pieces = merged.chunks(2, num_classes=4)
    assert [piece.sample_seeds() for _, piece in pieces] == [[10, 11], [3, 4], [5]]
    assert [piece.labels for _, piece in pieces] == [[0, 1], [1, 1], [1]]
    assert "_seeds" not in merged.model_dump() and ImageRequest(count=2, seed=7).sample_seeds() == [7, 8]


def test_model_cache_is_bounded_and_least_recently_used_goes(catalog):
    loaded = []
    cache = ModelCache(catalog, size=1, loader=lambda entry: loaded.append(entry.name) or entry.name)
    assert cache.get("digits")[0] == "digits" and cache.get("digits")[0] == "digits"
    cache.get("blobs")
    assert cache.loaded() == ["blobs"] and loaded == ["digits", "blobs"]
    cache.get("digits")
    assert loaded == ["digits", "blobs", "digits"] and cache.loads == 3


def test_a_broken_model_fails_its_job_with_a_message_not_a_traceback(make_client, tiny_runs, tmp_path):
    import shutil

    from aigc import checkpoint as ckpt

    broken = tmp_path / "broken"
    shutil.copytree(tiny_runs["blobs"], broken)
    folder = ckpt.resolve_checkpoint(broken)
    (folder / "model.safetensors").write_bytes(b"corrupt")
    from aigc.studio.catalog import ModelCatalog

    client = make_client()
    client.app.state.services.catalog = ModelCatalog.from_paths({"broken": str(broken)})
    client.app.state.services.cache.catalog = client.app.state.services.catalog
    done = finished(client, submit(client, "broken", count=1)["id"])
    assert done["status"] == "failed" and done["error_field"] == "model" and "sha256" in done["error"] and "Traceback" not in done["error"]


def test_an_unreachable_database_fails_at_start_with_a_message(make_settings, catalog):
    from aigc.errors import ConfigError
    from aigc.studio.app import create_app

    with pytest.raises(ConfigError) as error:
        create_app(make_settings(database_url="postgresql://nobody:secret@127.0.0.1:1/none"), catalog=catalog)
    assert error.value.field == "AIGC_DATABASE_URL" and "cannot reach the database" in str(error.value)
    assert "secret" not in str(error.value)  # the password is never printed
    with pytest.raises(ConfigError, match="not a database URL"):
        create_app(make_settings(database_url="not a url"), catalog=catalog)


def test_migrations_build_exactly_the_models_and_downgrade(database_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import inspect

    from aigc.studio.db.models import Base
    from aigc.studio.db.session import current_revision, downgrade, make_engine, upgrade

    engine = make_engine(database_url)
    upgrade(engine)
    assert current_revision(engine) == "0006"
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": False}), Base.metadata)
    assert differences == []
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_a_celery_delivery_takes_the_queued_jobs_that_share_its_forward_pass(make_client, make_settings, catalog):
    # runner.run_job is the Celery task: it claims its job by id, then batches like the local executor.
    idle = make_client(workers=0)
    digits = [submit(idle, "digits", count=1, seed=i)["id"] for i in range(4)]
    blobs = submit(idle, "blobs", count=1)["id"]
    services = build_services(make_settings(batch_jobs=3), catalog)
    assert runner.run_job(services, digits[1], "here:1:w")
    done = {job_id: finished(idle, job_id) for job_id in (digits[0], digits[1], digits[2])}
    assert all(job["status"] == "succeeded" and "in one batch" in job["message"] for job in done.values()), done
    assert idle.get(f"/api/v1/jobs/{digits[3]}").json()["status"] == "queued"  # batch_jobs=3: the delivered job + the 2 oldest
    assert idle.get(f"/api/v1/jobs/{blobs}").json()["status"] == "queued"  # another model waits for its own delivery
    assert not runner.run_job(services, digits[0], "here:1:w")  # its own message, delivered later, is skipped
    assert runner.run_job(services, digits[3], "here:1:w") and finished(idle, digits[3])["status"] == "succeeded"
    services.close()

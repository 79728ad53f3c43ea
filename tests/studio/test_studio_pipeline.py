"""The studio makes files through the one generation path: a job's PNG is byte for byte what `aigc generate`
writes for the same request, and a job re-queued after a crash resumes without storing any sample twice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, update
from studio.studio_helpers import LOCAL, finished, submit

from aigc.studio.db.models import Artifact, Job

REPO = Path(__file__).resolve().parents[2]


def _cli_png(run: str, out: Path, *args: str) -> Path:
    command = [sys.executable, "-m", "aigc", "generate", run, "--out", str(out), "--each", *args]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return out


def test_a_studio_job_stores_the_png_that_aigc_generate_writes(make_client, tiny_runs, tmp_path):
    client = make_client()
    job = finished(client, submit(client, "digits", count=3, seed=21, labels=[4])["id"])
    assert job["status"] == "succeeded"
    grid = _cli_png(tiny_runs["digits"], tmp_path / "cli.png", "-n", "3", "--seed", "21", "--label", "4")
    for artifact in job["artifacts"]:
        stored = client.get(artifact["url"]).content
        assert stored == (tmp_path / f"cli-seed{artifact['seed']}.png").read_bytes()  # identical bytes, metadata included
    assert grid.exists()


def test_a_text_job_stores_the_text_that_aigc_generate_prints(make_client, tmp_path):
    from helpers import train_tiny

    from aigc.studio.catalog import ModelCatalog

    run = str(train_tiny("gpt", tmp_path / "gpt").run_dir)
    from fastapi.testclient import TestClient

    from aigc.studio.app import create_app
    from aigc.studio.settings import StudioSettings

    settings = StudioSettings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 's.db'}", zoo=False, log_format="text", poll_seconds=0.2)
    with TestClient(create_app(settings, catalog=ModelCatalog.from_paths({"writer": run})), client=LOCAL) as client:
        job = finished(client, submit(client, "writer", prompt="ab", count=2, seed=5, max_tokens=12)["id"])
        assert job["status"] == "succeeded", job
        texts = [client.get(a["url"]).content.decode() for a in job["artifacts"]]
    result = subprocess.run([sys.executable, "-m", "aigc", "generate", run, "--prompt", "ab", "-n", "2", "--seed", "5", "--max-tokens", "12",
                             "--out", str(tmp_path / "t.txt"), "--each"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert texts == [(tmp_path / f"t-seed{seed}.txt").read_text() for seed in (5, 6)]


class _DiesAfter:
    """A real artifact store whose process 'dies' (BaseException, like SIGKILL: nothing after it runs) on the
    n-th write — the state a crashed worker leaves behind, made with the real runner."""

    def __init__(self, store, writes: int):
        self.store, self.writes = store, writes

    def put_many(self, items):
        self.writes -= 1
        if self.writes < 0:
            raise SystemExit("worker killed")
        return self.store.put_many(items)

    def __getattr__(self, name):
        return getattr(self.store, name)


def _dead_worker_id() -> str:
    import socket

    process = subprocess.Popen(["true"])
    process.wait()
    return f"{socket.gethostname()}:{process.pid}:gone"


@pytest.mark.parametrize("second_chunk", [8, 16])  # same chunks again, or chunks that straddle what was stored
def test_a_job_requeued_after_a_crash_resumes_and_stores_each_sample_once(make_settings, catalog, tiny_runs, second_chunk):
    import aigc
    from aigc.generation.requests import ImageRequest
    from aigc.studio.jobs import queue, runner
    from aigc.studio.services import build_services

    services = build_services(make_settings(workers=0, chunk_images=8), catalog)
    with services.db.session() as session:
        session.add(Job(id="j1", model="digits", family="cgan", modality="image", params={"count": 24, "seed": 3, "labels": [2]}, batch_key="k", status="queued"))
        session.commit()
    real_store = services.store
    services.store = _DiesAfter(real_store, writes=2)  # chunks 0-7 and 8-15 are stored, then the worker dies
    worker = _dead_worker_id()
    assert queue.claim(services, "j1", worker)
    with pytest.raises(SystemExit):
        runner.run_claimed(services, ["j1"], worker)
    with services.db.session() as session:
        first = {a.index: a.id for a in session.scalars(select(Artifact).where(Artifact.job_id == "j1"))}
    assert sorted(first) == list(range(16))

    services.store = real_store
    services.settings = services.settings.model_copy(update={"chunk_images": second_chunk})
    assert queue.requeue_stale(services) == 1  # its worker process is gone
    again = queue.worker_identity("again")
    assert queue.claim(services, "j1", again)
    runner.run_claimed(services, ["j1"], again)

    with services.db.session() as session:
        job = session.get(Job, "j1")
        artifacts = list(session.scalars(select(Artifact).where(Artifact.job_id == "j1").order_by(Artifact.index)))
    assert job.status == "succeeded" and job.attempts == 2
    assert [a.index for a in artifacts] == list(range(24)) and [a.seed for a in artifacts] == list(range(3, 27))
    if second_chunk == 8:  # the chunks stored whole were kept, not made again
        assert all(a.id == first[a.index] for a in artifacts[:16])
    direct = aigc.load(tiny_runs["digits"]).generate(ImageRequest(count=24, seed=3, labels=[2]))
    assert [services.store.read(a.storage_key) for a in artifacts] == [file.data for file in direct.files()]
    services.close()


def test_diffusion_jobs_report_steps_and_previews_that_go_when_the_job_ends(make_settings, tmp_path):
    import io

    from helpers import train_tiny
    from PIL import Image

    from aigc.studio.catalog import ModelCatalog
    from aigc.studio.jobs import queue, runner
    from aigc.studio.services import build_services

    catalog = ModelCatalog.from_paths({"noise": str(train_tiny("ddpm", tmp_path / "ddpm").run_dir)})
    services = build_services(make_settings(workers=0, progress_seconds=1e-9, preview_seconds=1e-9), catalog)
    seen: list[tuple[str, str | None]] = []
    previews: dict[str, bytes] = {}

    def record(job_id):  # read each state as it is written
        with services.db.session() as session:
            message, key = session.execute(select(Job.message, Job.preview_key).where(Job.id == job_id)).one()
        seen.append((message, key))
        if key:
            previews[key] = services.store.read(key)

    services.events.publish = record
    with services.db.session() as session:
        session.add(Job(id="d1", model="noise", family="ddpm", modality="image", params={"count": 2, "seed": 0, "sample_steps": 6}, batch_key="k", status="queued"))
        session.commit()
    assert queue.claim(services, "d1", queue.worker_identity())
    runner.run_claimed(services, ["d1"], queue.worker_identity())
    assert [m for m, _ in seen if "step" in m][:2] == ["0/2, step 1/6", "0/2, step 2/6"]
    assert sum(key is not None for _, key in seen) >= 2  # a preview with every step here (the same file while the picture stays the same)
    for data in previews.values():
        with Image.open(io.BytesIO(data)) as picture:
            assert picture.size == (22, 12)  # both 8x8 images in one row with 2-pixel gaps
    with services.db.session() as session:
        job = session.get(Job, "d1")
        assert job.status == "succeeded" and job.preview_key is None
    assert not any(services.store.exists(key) for key in previews)  # the previews are gone with the job
    services.close()


def test_the_preview_endpoint_serves_a_running_jobs_preview_to_its_owner(make_client):
    client = make_client(workers=0)
    job = submit(client, "digits", count=1, seed=0)
    assert client.get(f"/api/v1/jobs/{job['id']}").json()["preview_url"] is None
    assert client.get(f"/api/v1/jobs/{job['id']}/preview").status_code == 404
    services = client.app.state.services
    key = services.store.put(b"\x89PNG fake-but-stored", ".png")
    with services.db.session() as session:
        session.execute(update(Job).where(Job.id == job["id"]).values(preview_key=key))
        session.commit()
    info = client.get(f"/api/v1/jobs/{job['id']}").json()
    assert info["preview_url"] == f"/api/v1/jobs/{job['id']}/preview"
    served = client.get(info["preview_url"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/png" and served.content == b"\x89PNG fake-but-stored"


def _message(services, job_id: str) -> str:
    with services.db.session() as session:
        return session.scalar(select(Job.message).where(Job.id == job_id))

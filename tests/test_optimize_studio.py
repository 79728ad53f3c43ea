"""An optimised run is an ordinary model in the studio: its card says what was applied, and a job on it
generates through the int8 / pruned network rebuilt from its checkpoint."""

from __future__ import annotations

from fastapi.testclient import TestClient

from aigc.optimize.pipeline import Plan, optimize
from aigc.studio.app import create_app
from aigc.studio.catalog import ModelCatalog
from aigc.studio.settings import StudioSettings
from helpers import train_tiny


def test_the_studio_lists_and_serves_an_optimised_run(tmp_path):
    run = train_tiny("dcgan", tmp_path / "run", "model.image_size=16").run_dir
    small = tmp_path / "small"
    optimize(run, small, Plan(prune=0.5, structured=True, quantize="dynamic"), measure=False)
    settings = StudioSettings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'studio.db'}", zoo=False,
                              log_format="text", poll_seconds=0.2)
    app = create_app(settings, catalog=ModelCatalog.from_paths({"small": str(small)}))
    with TestClient(app, client=("127.0.0.1", 50000), raise_server_exceptions=False) as client:
        card = client.get("/api/v1/models").json()["models"][0]
        assert card["name"] == "small" and "optimised: prune-channels, quantize-dynamic" in card["description"]
        job = client.post("/api/v1/jobs", json={"model": "small", "params": {"count": 2, "seed": 3}})
        assert job.status_code == 202, job.text
        done = client.get(f"/api/v1/jobs/{job.json()['id']}", params={"wait": 60}).json()
        assert done["status"] == "succeeded", done

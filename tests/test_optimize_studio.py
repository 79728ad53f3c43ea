"""An optimised run is an ordinary model in the studio: its card says what was applied, and a job on it
generates through the int8 / pruned network rebuilt from its checkpoint, or through onnxruntime when the
run holds an ONNX export of its weights."""

from __future__ import annotations

from fastapi.testclient import TestClient

from aigc.optimize.export import OnnxRuntimeGenerator
from aigc.optimize.pipeline import Plan, optimize
from aigc.studio.app import create_app
from aigc.studio.catalog import ModelCatalog
from aigc.studio.settings import StudioSettings
from conftest import has_module, require
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


def test_the_studio_serves_an_onnx_export_through_onnxruntime_and_its_card_says_so(tmp_path):
    require(all(has_module(m) for m in ("onnx", "onnxscript", "onnxruntime")), "pip install 'aigc[export]'")
    run = train_tiny("dcgan", tmp_path / "run", "model.image_size=16").run_dir
    exported = tmp_path / "exported"
    optimize(run, exported, Plan(export="onnx"), measure=False)
    settings = StudioSettings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'studio.db'}", zoo=False,
                              log_format="text", poll_seconds=0.2)
    app = create_app(settings, catalog=ModelCatalog.from_paths({"exported": str(exported), "plain": str(run)}))
    with TestClient(app, client=("127.0.0.1", 50000), raise_server_exceptions=False) as client:
        cards = {card["name"]: card for card in client.get("/api/v1/models").json()["models"]}
        assert "served by onnxruntime from its ONNX export" in cards["exported"]["description"]
        assert "onnxruntime" not in cards["plain"]["description"]
        job = client.post("/api/v1/jobs", json={"model": "exported", "params": {"count": 2, "seed": 3}})
        assert job.status_code == 202, job.text
        done = client.get(f"/api/v1/jobs/{job.json()['id']}", params={"wait": 60}).json()
        assert done["status"] == "succeeded", done
        model, _ = app.state.services.cache.get("exported")
        assert isinstance(model.module.generator, OnnxRuntimeGenerator)  # the job ran the graph, not the PyTorch network
    record = exported / "onnx" / "onnx.json"
    record.write_text(record.read_text().replace('"checkpoint_sha256": "', '"checkpoint_sha256": "0'))  # other weights
    assert "onnxruntime" not in ModelCatalog.from_paths({"exported": str(exported)}).get("exported").description

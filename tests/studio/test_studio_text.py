"""Text models in the studio: prompt validation, text artifacts, and text that streams into the job.

Runs when a text family (`gpt`) is registered; the studio itself depends on no text code.
"""

from __future__ import annotations

import pytest
from studio.studio_helpers import finished, submit


@pytest.fixture(scope="module")
def text_catalog(tmp_path_factory, tiny_runs):
    from aigc.registry import list_models

    if "gpt" not in {spec.name for spec in list_models()}:
        pytest.skip("no text family registered yet")
    from helpers import train_tiny

    from aigc.studio.catalog import ModelCatalog

    run = train_tiny("gpt", tmp_path_factory.mktemp("gpt") / "run").run_dir
    return ModelCatalog.from_paths({**tiny_runs, "poet": str(run)}), str(run)


@pytest.fixture
def text_client(make_settings, text_catalog):
    from fastapi.testclient import TestClient

    from aigc.studio.app import create_app

    app = create_app(make_settings(stream_flush_seconds=0.02), catalog=text_catalog[0])
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        yield client


def test_text_model_accepts_a_prompt_and_streams_its_text_into_the_job(text_client, text_catalog):
    import aigc

    poet = next(m for m in text_client.get("/api/v1/models").json()["models"] if m["name"] == "poet")
    fields = {f["name"]: f for f in poet["accepts"]}
    assert poet["modality"] == "text" and fields["prompt"]["type"] == "string" and "temperature" in fields and "labels" not in fields

    params = {"prompt": "the cat, on: a mat", "max_tokens": 600, "seed": 4, "stop_at_eos": False}
    job = submit(text_client, "poet", **params)
    seen = []
    for _ in range(400):
        body = text_client.get(f"/api/v1/jobs/{job['id']}", params={"wait": 0.05}).json()
        if body["status"] == "running" and body["partial_text"]:
            seen.append(body["partial_text"])
        if body["status"] == "succeeded":
            break
    done = finished(text_client, job["id"])
    assert done["status"] == "succeeded" and len(done["artifacts"]) == 1
    artifact = done["artifacts"][0]
    text = text_client.get(artifact["url"]).content.decode("utf-8")
    from aigc.generation.text import TextRequest

    from aigc.safety import default_policy

    expected = aigc.load(text_catalog[1]).generate(TextRequest(**params), policy=default_policy()).text  # the studio's policy (watermark)
    assert text == expected == done["partial_text"]  # streamed pieces make exactly generate()'s text
    assert artifact["kind"] == "text" and artifact["media_type"].startswith("text/plain") and artifact["parameters"]["prompt"] == params["prompt"]
    assert seen and all(expected.startswith(partial) for partial in seen) and len(seen[0]) < len(expected)  # it grew while running
    assert text_client.get("/api/v1/jobs", params={"q": "on: a"}).json()["total"] == 1  # prompts are searchable history
    assert text_client.get("/api/v1/jobs", params={"q": "dog"}).json()["total"] == 0


def test_several_text_samples_or_beams_are_generated_whole(text_client):
    done = finished(text_client, submit(text_client, "poet", prompt="ab", count=3, max_tokens=20, seed=1)["id"])
    assert done["status"] == "succeeded" and [a["index"] for a in done["artifacts"]] == [0, 1, 2] and done["partial_text"] is None
    refused = text_client.post("/api/v1/jobs", json={"model": "poet", "params": {"prompt": "ab\x07"}})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "params.prompt"
    refused = text_client.post("/api/v1/jobs", json={"model": "poet", "params": {"temperature": -1}})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "params.temperature"

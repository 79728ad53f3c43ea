"""The studio with sound: an audio model in the model list, its jobs' WAV files served as audio/wav (inline
or as a download), a spectrogram picture per clip, and the page playing a zoo model's clip in Chromium."""

from __future__ import annotations

import io
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from helpers import train_tiny
from PIL import Image
from studio.browser_page import CHROMIUM, choose_model, free_port, launch
from studio.studio_helpers import LOCAL, finished, require, submit


@pytest.fixture(scope="module")
def audio_catalog(tmp_path_factory):
    from aigc.studio.catalog import ModelCatalog

    root = tmp_path_factory.mktemp("studio-audio")
    return ModelCatalog.from_paths({"tones": str(train_tiny("wavegan", root / "wavegan", "model.conditional=true").run_dir), "blobs": str(train_tiny("dcgan", root / "dcgan").run_dir)})


@pytest.fixture
def client(make_settings, audio_catalog):
    from fastapi.testclient import TestClient

    from aigc.studio.app import create_app

    with TestClient(create_app(make_settings(), catalog=audio_catalog), client=LOCAL, raise_server_exceptions=False) as test_client:
        yield test_client


def test_audio_jobs_serve_wav_and_a_spectrogram(client):
    models = {m["name"]: m for m in client.get("/api/v1/models").json()["models"]}
    assert models["tones"]["modality"] == "audio"
    job = finished(client, submit(client, "tones", count=2, seed=4, labels=[3])["id"])
    assert job["status"] == "succeeded", job
    artifact = job["artifacts"][0]
    assert artifact["kind"] == "audio" and artifact["media_type"] == "audio/wav"
    content = client.get(artifact["url"])
    assert content.status_code == 200 and content.headers["content-type"] == "audio/wav"
    waveform, rate = soundfile.read(io.BytesIO(content.content))
    assert rate == 16_000 and len(waveform) == 1024
    saved = client.get(artifact["url"], params={"download": True})
    assert saved.headers["content-disposition"].startswith("attachment") and saved.headers["content-disposition"].endswith('.wav"')
    picture = client.get(f"/api/v1/artifacts/{artifact['id']}/spectrogram")
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    image = np.asarray(Image.open(io.BytesIO(picture.content)))
    assert image.shape == (64, 256) and image.std() > 0  # a picture of something, not a blank
    image_job = finished(client, submit(client, "blobs", count=1, seed=0)["id"])
    refused = client.get(f"/api/v1/artifacts/{image_job['artifacts'][0]['id']}/spectrogram")
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "artifact_id"


# ------------------------------------------------------------------------------------------ in a browser


@pytest.fixture
def zoo_server(make_settings):
    """A studio serving the packaged zoo (its audio models among them), in a uvicorn thread."""
    import uvicorn

    from aigc.studio.app import create_app
    from aigc.studio.catalog import ModelCatalog

    app = create_app(make_settings(zoo=True), catalog=ModelCatalog.from_paths({}, zoo=True))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the studio did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=20)


def test_the_page_plays_a_zoo_audio_clip(zoo_server, tmp_path):
    require(shutil.which(CHROMIUM) is not None or Path(CHROMIUM).exists(), f"Chromium at {CHROMIUM} (Debian package `chromium`)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "the playwright package (pip install playwright; no browser download needed)")
    from aigc import zoo

    name = next((entry.name for entry in zoo.list_entries() if entry.name == "specgan-digits"), None)
    require(name is not None, "the specgan-digits zoo model (aigc models export RUN specgan-digits)")
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(zoo_server)
        choose_model(page, name)
        page.fill("[data-testid=field-count]", "2")
        page.fill("[data-testid=field-seed]", "7")
        page.click("[data-testid=generate]")
        page.wait_for_selector("[data-testid=gallery] [data-testid=artifact] audio", timeout=120_000)
        # The clip loads in the <audio> element: its length is the model's 16,384 samples at 16 kHz ...
        page.wait_for_function("() => [...document.querySelectorAll('[data-testid=artifact] audio')].filter(a => a.readyState >= 1).length === 2", timeout=60_000)
        duration = page.evaluate("() => document.querySelector('[data-testid=artifact] audio').duration")
        assert duration == pytest.approx(16_384 / 16_000, abs=0.01)
        # ... it plays (muted: headless Chromium has no sound card) and its time moves on ...
        played = page.evaluate("async () => { const a = document.querySelector('[data-testid=artifact] audio'); a.muted = true; await a.play(); await new Promise(r => setTimeout(r, 300)); return a.currentTime; }")
        assert played > 0
        # ... and each clip shows its spectrogram.
        page.wait_for_function("() => [...document.querySelectorAll('[data-testid=spectrogram]')].filter(i => i.complete && i.naturalWidth === 256).length === 2", timeout=30_000)
        page.screenshot(path=str(tmp_path / "studio-audio.png"))
        browser.close()
    assert not problems, problems

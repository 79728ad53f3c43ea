"""The web page in a real browser: headless Debian Chromium driven by Playwright against a live server.

Submits a job from the form, sees the images and the history entry, reuses settings, saves a screenshot
(to tmp, and to $AIGC_SCREENSHOT_DIR when set).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from studio.browser_page import CHROMIUM, choose_model, free_port, launch, open_with_model, wait_for_images
from studio.studio_helpers import require


@pytest.fixture
def serve(make_settings):
    """Start a studio for a catalog in a uvicorn thread; returns its base URL. Stopped at the end."""
    import uvicorn

    from aigc.studio.app import create_app

    servers = []

    def start(catalog, **overrides) -> str:
        app = create_app(make_settings(**overrides), catalog=catalog)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "the studio did not start"
            time.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.fixture
def live_server(serve, catalog):
    return serve(catalog)


@pytest.fixture
def browser():
    require(shutil.which(CHROMIUM) is not None or Path(CHROMIUM).exists(), f"Chromium at {CHROMIUM} (Debian package `chromium`)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "the playwright package (pip install playwright; no browser download needed)")
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


def test_submit_a_job_see_results_and_history_and_reuse_settings(live_server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(live_server)

    choose_model(page, "digits")
    page.fill("[data-testid=field-count]", "6")
    page.fill("[data-testid=field-seed]", "21")
    page.select_option("[data-testid=field-labels]", "3")
    assert page.locator("[data-testid=field-labels] option").count() == 11  # "every class" + 10 classes
    page.click("[data-testid=generate]")

    images = page.locator("[data-testid=gallery] [data-testid=artifact] img")
    images.nth(5).wait_for()
    wait_for_images(page, 6, width=8)
    assert page.locator("[data-testid=artifact] span").first.inner_text() == "seed 21 · label 3"
    assert page.locator("#progress-text").inner_text().startswith("succeeded")

    entry = page.locator("[data-testid=history] [data-testid=history-item]").first
    entry.wait_for()
    assert "succeeded" in entry.inner_text() and "digits" in entry.inner_text() and "seed=21" in entry.inner_text()
    assert entry.locator(".thumbs img").count() == 6

    page.locator("[data-testid=artifact]").nth(2).click()
    details = page.locator("#details-list").inner_text()
    assert "23" in details and "checkpoint" in details  # seed 21 + 2, with its provenance
    with page.expect_download() as saved:  # fetched (with the key, when there is one), then saved
        page.click("[data-testid=download]")
    assert saved.value.suggested_filename.endswith("-2.png") and Path(saved.value.path()).read_bytes()[:4] == b"\x89PNG"

    page.select_option("[data-testid=model]", "blobs")  # unconditional: no label control
    assert page.locator("[data-testid=field-labels]").count() == 0
    page.click("[data-testid=reuse]")  # back to the job's model and settings
    assert page.input_value("[data-testid=model]") == "digits" and page.input_value("[data-testid=field-seed]") == "21"
    assert page.input_value("[data-testid=field-labels]") == "3"

    page.fill("[data-testid=field-count]", "999")  # the API's error, naming the field, shows in the form
    page.click("[data-testid=generate]")
    page.wait_for_selector("#form-error:not([hidden])")
    assert "params.count" in page.inner_text("#form-error")

    shot = tmp_path / "studio.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("AIGC_SCREENSHOT_DIR"):
        target = Path(os.environ["AIGC_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / "studio.png")
    assert [p for p in problems if "422" not in p] == []  # no script errors (the 422 above is expected)


def test_text_streams_into_the_page_as_it_is_generated(serve, browser, tiny_runs, tmp_path):
    from aigc.registry import list_models

    if "gpt" not in {spec.name for spec in list_models()}:
        pytest.skip("no text family registered yet")
    from helpers import train_tiny

    from aigc.studio.catalog import ModelCatalog

    run = train_tiny("gpt", tmp_path / "gpt").run_dir
    base = serve(ModelCatalog.from_paths({"poet": str(run)}), stream_flush_seconds=0.02)
    page = open_with_model(browser, base, "poet")  # the zoo's models are listed too
    assert page.locator("[data-testid=field-prompt]").evaluate("e => e.tagName") == "TEXTAREA"
    page.fill("[data-testid=field-prompt]", "once upon")
    page.fill("[data-testid=field-max_tokens]", "8000")  # long enough (seconds) that the page sees it stream
    page.uncheck("[data-testid=field-stop_at_eos]")
    page.click("[data-testid=generate]")
    page.wait_for_function("() => (document.querySelector('[data-testid=stream]')?.textContent || '').length > 0")
    partial = page.inner_text("[data-testid=stream]")
    page.wait_for_function("() => { const p = document.querySelector('[data-testid=artifact] pre'); return p && p.textContent.length > 0 }", timeout=60_000)
    final = page.locator("[data-testid=artifact] pre").text_content()
    assert len(partial) < len(final) and final.startswith(partial.strip()[:20])  # it grew while running
    assert page.locator("[data-testid=stream]").count() == 0  # replaced by the stored artifact


def test_an_optional_choice_is_left_to_the_model_unless_picked(serve, browser, tmp_path):
    """The diffusion form's sampler shows the model's own default (DDIM), and a job submitted untouched
    records no sampler (the model's default applies); picking another one sends it."""
    from helpers import train_tiny

    from aigc.studio.catalog import ModelCatalog

    base = serve(ModelCatalog.from_paths({"noise": str(train_tiny("ddpm", tmp_path / "ddpm").run_dir)}))
    page = open_with_model(browser, base, "noise")
    assert page.locator("[data-testid=field-sampler]").input_value() == "dpmpp-2m"
    assert page.locator("[data-testid=field-sample_steps]").input_value() == "4"  # ddpm-tiny's own, not an empty box
    page.fill("[data-testid=field-count]", "2")
    page.click("[data-testid=generate]")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=artifact] img').length === 2", timeout=60_000)
    jobs = page.request.get(f"{base}/api/v1/jobs?limit=1").json()["items"]
    assert jobs[0]["params"]["sampler"] is None and jobs[0]["params"]["count"] == 2
    page.select_option("[data-testid=field-sampler]", "ddpm")
    page.click("[data-testid=generate]")
    page.wait_for_function(f"async () => (await (await fetch('{base}/api/v1/jobs?limit=1')).json()).items[0].params.sampler === 'ddpm'", timeout=60_000)


def test_a_diffusion_job_shows_its_images_forming_and_then_the_results(serve, browser, tmp_path):
    """Step-level progress and a preview (each step's estimate of the final images) while the job runs;
    the results replace the preview."""
    from aigc import zoo
    from aigc.studio.catalog import ModelCatalog

    base = serve(ModelCatalog.from_paths({"emoji": str(zoo.resolve("t2i-diffusion-emoji"))}), progress_seconds=0.05, preview_seconds=0.1)
    page = open_with_model(browser, base, "emoji")
    page.fill("[data-testid=field-prompt]", "一个笑脸")
    page.fill("[data-testid=field-count]", "4")
    page.fill("[data-testid=field-seed]", "0")
    page.fill("[data-testid=field-sample_steps]", "100")  # long enough (seconds) that the page sees it form
    page.click("[data-testid=generate]")
    page.wait_for_function("() => /step \\d+\\/100/.test(document.getElementById('progress-text').textContent)", timeout=60_000)
    page.wait_for_function("() => { const p = document.querySelector('[data-testid=preview]'); return p && !p.hidden && p.complete && p.naturalWidth > 0 }", timeout=60_000)
    width = page.locator("[data-testid=preview]").evaluate("p => p.naturalWidth")
    assert width == 2 * (32 + 2) + 2  # the 4 images as a 2x2 grid of 32x32 with 2-pixel gaps
    page.wait_for_function("() => document.querySelectorAll('[data-testid=artifact] img').length === 4", timeout=120_000)
    page.wait_for_selector("[data-testid=preview]", state="hidden")
    page.screenshot(path=str(tmp_path / "preview.png"))


# Each character drawn alone on a canvas in the page's font: with a CJK font they all differ; without
# one, each is the same "missing glyph" box as a character no font has.
RENDERS = """(text) => {
  const draw = (t) => { const c = document.createElement('canvas'); c.width = c.height = 64; const g = c.getContext('2d');
    g.font = '48px ' + getComputedStyle(document.body).fontFamily; g.fillText(t, 4, 52); return c.toDataURL(); };
  const glyphs = [...text].map(draw);
  return new Set(glyphs).size === glyphs.length && !glyphs.includes(draw('\\u{10FFFD}'));
}"""
NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"


def test_with_keys_on_a_phone_download_zoom_reuse_a_seed_search_and_delete(serve, browser, tiny_runs, tmp_path, sqlite_url):
    """Keys required, a 390 px wide screen: the key error clears once a key is entered, images and
    downloads carry the key, the lightbox zooms, an image's own seed is reused, the history is searched
    and filtered, a job is deleted, Chinese renders, and nothing scrolls sideways."""
    from helpers import train_tiny

    from aigc.studio.catalog import ModelCatalog
    from aigc.studio.db.session import open_database
    from aigc.studio.keys import create_key

    poet = train_tiny("gpt", tmp_path / "gpt").run_dir
    base = serve(ModelCatalog.from_paths({**tiny_runs, "poet": str(poet)}), auth="required")
    db = open_database(sqlite_url)
    key, _ = create_key(db, "phone")
    db.dispose()
    page = browser.new_page(viewport={"width": 390, "height": 844})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("dialog", lambda dialog: dialog.accept())  # "Delete this job?"
    page.goto(base)
    page.wait_for_selector("#form-error:not([hidden])")
    assert "API key" in page.inner_text("#form-error")
    page.fill("#api-key", key)
    page.press("#api-key", "Tab")  # change: the page reloads models and history with the key
    page.wait_for_selector("[data-testid=model] option[value=digits]", state="attached")
    page.wait_for_selector("#form-error", state="hidden")
    assert page.evaluate(NO_SIDEWAYS_SCROLL)

    page.select_option("[data-testid=model]", "digits")
    assert page.input_value("[data-testid=field-seed]") == "-1"  # random by default
    page.fill("[data-testid=field-seed]", "5")
    page.click("[data-testid=seed-random]")  # the dice: back to random
    assert page.input_value("[data-testid=field-seed]") == "-1"
    page.fill("[data-testid=field-count]", "3")
    page.click("[data-testid=generate]")
    wait_for_images(page, 3, width=8)
    job = page.evaluate(f"async () => (await (await fetch('{base}/api/v1/jobs', {{headers: {{'X-API-Key': '{key}'}}}})).json()).items[0]")
    seed = job["params"]["seed"]
    assert [a["seed"] for a in job["artifacts"]] == [seed, seed + 1, seed + 2]

    page.locator("[data-testid=artifact]").nth(1).click()
    page.click("[data-testid=zoom]")
    page.wait_for_function("() => { const i = document.getElementById('lightbox-image'); return document.getElementById('lightbox').open && i.complete && i.naturalWidth === 8 }")
    assert page.locator("#lightbox-image").bounding_box()["width"] >= 300  # 8x8 shown large
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.getElementById('lightbox').open")
    page.click("[data-testid=reuse-seed]")  # this image's own seed and label, not the job's first seed
    assert page.input_value("[data-testid=field-seed]") == str(seed + 1)
    assert page.input_value("[data-testid=field-labels]") == str(job["artifacts"][1]["label"])

    with page.expect_download() as saved:
        page.click("[data-testid=download]")
    assert Path(saved.value.path()).read_bytes()[:4] == b"\x89PNG"  # with the key: not a 401 page
    with page.expect_download() as archive:
        page.click("[data-testid=download-all]")
    import zipfile

    with zipfile.ZipFile(archive.value.path()) as files:
        assert len([name for name in files.namelist() if name.endswith(".png")]) == 3

    page.select_option("[data-testid=model]", "poet")
    page.fill("[data-testid=field-prompt]", "一个笑脸")
    page.fill("[data-testid=field-max_tokens]", "4")
    page.click("[data-testid=generate]")
    history = page.locator("[data-testid=history] [data-testid=history-item]")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=history-item]').length === 2")
    assert history.first.locator("text=一个笑脸").count() == 1 and page.evaluate(RENDERS, "一个笑脸")
    page.fill("[data-testid=history-q]", "笑脸")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=history-item]').length === 1")
    assert "poet" in history.first.inner_text()
    page.fill("[data-testid=history-q]", "")
    page.select_option("[data-testid=history-model]", "digits")
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=history-item]')].every(i => i.innerText.includes('digits'))")
    assert page.evaluate(NO_SIDEWAYS_SCROLL)

    history.first.locator("[data-testid=delete]").click()
    page.wait_for_function("() => document.querySelectorAll('[data-testid=history-item]').length === 0")
    page.select_option("[data-testid=history-model]", "")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=history-item]').length === 1")
    assert "poet" in history.first.inner_text() and problems == []


def test_upload_a_content_and_a_style_image_and_see_the_result_beside_them(serve, browser, style_catalog, tmp_path):
    """Image fields are file inputs: the page uploads the chosen files, the job runs on them, and the result is
    shown beside its inputs; a non-image is refused with a message naming the field."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:40, 0:48]
    content, style, notes = tmp_path / "content.png", tmp_path / "style.jpg", tmp_path / "notes.txt"
    Image.fromarray(np.stack([x * 5, y * 6, (x + y) * 3], -1).astype(np.uint8)).save(content)
    Image.fromarray((np.indices((64, 64)).sum(0) % 16 * 16).astype(np.uint8)).convert("RGB").save(style)
    notes.write_text("not a picture")
    page = open_with_model(browser, serve(style_catalog), "paint", width=1280, height=900)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))

    assert page.get_attribute("[data-testid=field-content]", "type") == "file"
    page.set_input_files("[data-testid=field-content]", str(notes))
    page.set_input_files("[data-testid=field-style]", [str(style)])
    page.click("[data-testid=generate]")
    page.wait_for_selector("#form-error:not([hidden])")
    assert "content: " in page.inner_text("#form-error") and "not an image" in page.inner_text("#form-error")

    page.set_input_files("[data-testid=field-content]", str(content))
    assert page.locator("[data-testid=thumbs-content] img").count() == 1
    assert page.get_attribute("[data-testid=field-alpha]", "type") == "range"
    page.locator("[data-testid=field-alpha]").evaluate("(slider) => { slider.value = '0.6'; slider.dispatchEvent(new Event('input')); }")
    page.fill("[data-testid=field-size]", "64")
    page.click("[data-testid=generate]")
    wait_for_images(page, 1, width=64, timeout=90_000)
    inputs = page.locator("[data-testid=inputs] [data-testid=input]")
    assert inputs.count() == 2 and [inputs.nth(i).inner_text() for i in range(2)] == ["content", "style"]
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=input] img')].every(i => i.complete && i.naturalWidth > 0)")
    job = page.evaluate("async () => (await (await fetch('/api/v1/jobs')).json()).items[0]")
    assert job["status"] == "succeeded" and job["params"]["alpha"] == 0.6 and job["params"]["content"].startswith("upload:")
    page.screenshot(path=str(tmp_path / "style-upload.png"), full_page=True)
    assert problems == []


def test_the_page_shows_a_zoo_models_card_and_a_warned_prompts_decision(serve, browser, tmp_path):
    """A zoo model's card (intended use, limitations, safety settings) opens under the model picker, and a
    prompt the moderation policy warns about runs with the decision shown beside its result."""
    from helpers import train_tiny

    from aigc.studio.catalog import ModelCatalog

    run = train_tiny("gpt", tmp_path / "gpt").run_dir
    base = serve(ModelCatalog.from_paths({"poet": str(run)}, zoo=True))
    page = open_with_model(browser, base, "gpt-tang")
    card = page.locator("[data-testid=model-card]")
    assert card.is_visible()
    card.locator("summary").click()
    text = card.inner_text()
    assert "Intended use" in text and "Teaching character-level" in text and "Limitations" in text and "green-list" in text
    choose_model(page, "poet")
    assert not card.is_visible()  # a run folder has no card
    page.fill("[data-testid=field-prompt]", "a photo of a n.u.d.e woman")
    page.fill("[data-testid=field-max_tokens]", "4")
    page.click("[data-testid=generate]")
    note = page.locator("[data-testid=moderation-note]")
    note.wait_for(state="visible", timeout=60_000)
    assert note.inner_text() == 'Moderation warning: sexual (term) in prompt: "n.u.d.e"'
    page.wait_for_selector("[data-testid=artifact] pre", timeout=60_000)  # it ran


def test_a_zoo_style_model_stylises_an_uploaded_photo_in_the_page(serve, browser, tmp_path):
    """The packaged fast-rings network (aigc.zoo) through the page: upload a photo, get it painted."""
    import numpy as np
    from PIL import Image

    from aigc.studio.catalog import ModelCatalog

    photo = tmp_path / "photo.jpg"
    y, x = np.mgrid[0:60, 0:80]
    Image.fromarray(np.stack([x * 3, y * 4, 255 - x * 3], -1).astype(np.uint8)).save(photo)
    page = open_with_model(browser, serve(ModelCatalog.from_paths({}, zoo=True), zoo=True), "fast-rings", width=1280, height=900)
    assert page.locator("[data-testid=field-style]").count() == 0  # its style is built in: no style upload
    page.set_input_files("[data-testid=field-content]", str(photo))
    page.fill("[data-testid=field-size]", "96")
    page.click("[data-testid=generate]")
    wait_for_images(page, 1, width=96, timeout=90_000)
    assert page.locator("[data-testid=inputs] [data-testid=input]").count() == 1
    choose_model(page, "adain-photos")  # AdaIN takes any style image
    assert page.get_attribute("[data-testid=field-style]", "type") == "file"


def test_gatys_paints_an_uploaded_photo_in_an_uploaded_style_in_the_page(serve, browser, tmp_path):
    """Gatys over the packaged VGG16 from the page: both images uploaded, its caps said on the page and held
    by the form, the result beside its two inputs."""
    import numpy as np
    from PIL import Image

    from aigc.studio.catalog import ModelCatalog

    photo, style = tmp_path / "photo.jpg", tmp_path / "style.png"
    y, x = np.mgrid[0:60, 0:80]
    Image.fromarray(np.stack([x * 3, y * 4, 255 - x * 3], -1).astype(np.uint8)).save(photo)
    Image.fromarray((np.indices((140, 140)).sum(0) % 20 * 12).astype(np.uint8)).convert("RGB").save(style)
    page = open_with_model(browser, serve(ModelCatalog.from_paths({}, zoo=True), zoo=True), "gatys", width=1280, height=900)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    info = page.inner_text("#model-info")
    assert "256 px" in info and "100 steps" in info and "step None" not in info, info
    assert (page.get_attribute("[data-testid=field-size]", "max"), page.get_attribute("[data-testid=field-steps]", "max")) == ("256", "100")
    page.set_input_files("[data-testid=field-content]", str(photo))
    page.set_input_files("[data-testid=field-style]", [str(style)])
    page.fill("[data-testid=field-size]", "64")
    page.fill("[data-testid=field-steps]", "3")
    page.click("[data-testid=generate]")
    wait_for_images(page, 1, width=64, timeout=90_000)
    inputs = page.locator("[data-testid=inputs] [data-testid=input]")
    assert [inputs.nth(i).inner_text() for i in range(inputs.count())] == ["content", "style"]
    job = page.evaluate("async () => (await (await fetch('/api/v1/jobs')).json()).items[0]")
    assert job["status"] == "succeeded" and job["model"] == "gatys" and job["params"]["steps"] == 3
    assert problems == []

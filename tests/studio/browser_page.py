"""Driving the studio's web page in headless Debian Chromium (Playwright): shared by the browser tests and
docs/studio_screenshot.py, so that the screenshot in the README is taken the way the tests see the page."""

from __future__ import annotations

import os
import socket

CHROMIUM = os.environ.get("AIGC_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(playwright):
    """The system Chromium (Playwright downloads no browser here)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)


def open_with_model(browser, url: str, model: str, **viewport):
    """A new page on the studio at `url` with `model` picked in the form, once the catalog has listed it."""
    page = browser.new_page(viewport=viewport) if viewport else browser.new_page()
    page.goto(url)
    choose_model(page, model)
    return page


def choose_model(page, model: str) -> None:
    page.wait_for_selector(f"[data-testid=model] option[value={model}]", state="attached")
    page.select_option("[data-testid=model]", model)


def wait_for_images(page, count: int, *, width: int | None = None, timeout: float = 30_000) -> None:
    """Until the results show `count` loaded images (each `width` pixels wide, when given)."""
    loaded = f"i.naturalWidth === {width}" if width else "i.naturalWidth > 0"
    page.wait_for_function(f"() => [...document.querySelectorAll('[data-testid=artifact] img')].filter(i => i.complete && {loaded}).length === {count}", timeout=timeout)

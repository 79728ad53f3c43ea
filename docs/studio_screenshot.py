"""Make docs/images/studio.png: the studio serving the zoo, after drawing "一个笑脸" (a smiling face) with the emoji model.

    .venv/bin/python docs/studio_screenshot.py      (needs Debian chromium, a CJK font such as fonts-wqy-zenhei, and playwright)
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
TARGET = Path(__file__).parent / "images" / "studio.png"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data_dir:
        server = subprocess.Popen([sys.executable, "-m", "aigc", "studio", "--port", str(port), "--data-dir", data_dir])
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"{url}/api/v1/health", timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
                page = browser.new_page(viewport={"width": 1280, "height": 820})
                page.goto(url)
                page.wait_for_selector("[data-testid=model] option[value=t2i-diffusion-emoji]", state="attached")
                page.select_option("[data-testid=model]", "t2i-diffusion-emoji")
                page.fill("[data-testid=field-prompt]", "一个笑脸")
                page.fill("[data-testid=field-count]", "8")
                page.fill("[data-testid=field-seed]", "0")
                page.click("[data-testid=generate]")
                page.wait_for_function("() => [...document.querySelectorAll('[data-testid=artifact] img')].filter(i => i.complete && i.naturalWidth > 0).length === 8", timeout=120_000)
                page.locator("[data-testid=artifact]").first.click()
                page.wait_for_timeout(300)
                page.screenshot(path=str(TARGET), full_page=True)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()

"""Make docs/images/studio.png: the studio serving the zoo, after drawing "一个笑脸" (a smiling face) with the emoji model.

    .venv/bin/python docs/studio_screenshot.py      (needs Debian chromium, a CJK font such as fonts-wqy-zenhei, and playwright)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the browser tests' page helpers
from studio.browser_page import free_port, launch, open_with_model, wait_for_images  # noqa: E402

TARGET = Path(__file__).parent / "images" / "studio.png"


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
                browser = launch(playwright)
                page = open_with_model(browser, url, "t2i-diffusion-emoji", width=1280, height=820)
                page.fill("[data-testid=field-prompt]", "一个笑脸")
                page.fill("[data-testid=field-count]", "8")
                page.fill("[data-testid=field-seed]", "0")
                page.click("[data-testid=generate]")
                wait_for_images(page, 8, timeout=120_000)
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

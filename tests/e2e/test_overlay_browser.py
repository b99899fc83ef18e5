"""The overlay in a real headless Chromium (Debian's, driven by Playwright): it loads from a
running `tradecast serve`, renders a persona caption that arrived over SSE, and its
screenshot has a transparent background."""

from __future__ import annotations

import io
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.net import free_port
from support.serve import serve_env, start_serve, wait_ready

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
KEYS = "viewer:view-key-123,operator:ops-key-456,admin:admin-key-789"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = serve_env(
        {
            "TRADECAST_DATA_DIR": str(tmp_path / "data"),
            "TRADECAST_API_KEYS": KEYS,
            "TRADECAST_API__API_KEYS": KEYS,
            "TRADECAST_DESK__SECONDS_PER_TICK": "3600",
        }
    )
    log = (tmp_path / "server.log").open("w")
    process = start_serve(port, env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(
            process,
            base,
            timeout=120,
            interval=0.5,
            request_timeout=1,
            tail=lambda: (tmp_path / "server.log").read_text()[-3000:],
        )
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.mark.slow
def test_overlay_renders_a_streamed_caption_on_a_transparent_page(server: str, tmp_path: Path):
    from PIL import Image
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.goto(f"{server}/overlay/?key=view-key-123")
        page.wait_for_function(
            "document.getElementById('connection').dataset.state === 'live'", timeout=30_000
        )
        response = httpx.post(
            f"{server}/v1/desk/tick", timeout=300, headers={"Authorization": "Bearer ops-key-456"}
        )
        assert response.status_code in (200, 202), response.text
        page.wait_for_function(
            "document.querySelector('#caption .line').textContent.trim().length > 0",
            timeout=300_000,
        )
        caption = page.eval_on_selector_all("#caption .line", "els => els.map(e => e.textContent)")
        assert all(len(line) <= 42 for line in caption) and len(caption) <= 2
        assert page.text_content("#ticker-decision") != "waiting for the desk…"
        shot = page.screenshot(omit_background=True)
        (tmp_path / "overlay.png").write_bytes(shot)
        browser.close()
    image = Image.open(io.BytesIO(shot)).convert("RGBA")
    assert image.size == (1920, 1080)
    assert image.getpixel((960, 540))[3] == 0, "the middle of the frame is transparent"
    assert image.getpixel((5, 5))[3] == 0
    caption_box = image.crop((400, 800, 1800, 1020))
    assert caption_box.getextrema()[3][1] > 0, "the caption box is drawn"

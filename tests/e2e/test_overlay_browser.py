"""The overlay in a real headless Chromium (Debian's, driven by Playwright): it loads from a
running `tradecast serve`, renders a persona caption that arrived over SSE, and its
screenshot has a transparent background."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.overlay import CHROMIUM, CHROMIUM_ARGS, serving


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with serving(tmp_path) as base:
        yield base


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
        # the drawn avatar (not a text face), labelled with the persona and its emotion
        assert page.locator("#avatar svg.kira").count() == 1
        emotion = page.get_attribute("#avatar", "data-expression")
        assert page.get_attribute("#avatar", "aria-label") == f"Kira Candle: {emotion}"
        shot = page.screenshot(omit_background=True)
        (tmp_path / "overlay.png").write_bytes(shot)
        browser.close()
    image = Image.open(io.BytesIO(shot)).convert("RGBA")
    assert image.size == (1920, 1080)
    assert image.getpixel((960, 540))[3] == 0, "the middle of the frame is transparent"
    assert image.getpixel((5, 5))[3] == 0
    caption_box = image.crop((400, 800, 1800, 1020))
    assert caption_box.getextrema()[3][1] > 0, "the caption box is drawn"
    assert image.getpixel((96 + 185, 1080 - 180))[3] == 255, "the avatar is drawn"


@pytest.mark.slow
def test_overlay_shows_a_portfolio_desks_symbols_and_book(tmp_path: Path):
    from playwright.sync_api import sync_playwright

    env = {"TRADECAST_DESK__SYMBOLS": "BTC/USDT,ETH/BUSD"}
    with serving(tmp_path, env) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.goto(f"{base}/overlay/?key=view-key-123")
        page.wait_for_function(
            "document.getElementById('connection').dataset.state === 'live'", timeout=30_000
        )
        response = httpx.post(
            f"{base}/v1/desk/tick", timeout=600, headers={"Authorization": "Bearer ops-key-456"}
        )
        assert response.status_code in (200, 202), response.text
        page.wait_for_function(
            "document.getElementById('ticker-book').textContent.includes('gross')",
            timeout=300_000,
        )
        decided = page.text_content("#ticker-decision") or ""
        book = page.text_content("#ticker-book") or ""
        browser.close()
    assert "BTC " in decided and "ETH " in decided and " · " in decided
    assert "gross" in book

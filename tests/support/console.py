"""What the console's browser tests share: a `tradecast serve` that can be stopped and started
again on the same port and data dir, signing a browser context in, and axe-core."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx

from support.net import free_port
from support.overlay import KEYS
from support.serve import serve_env, start_serve, wait_ready

ROLE_KEYS = dict(entry.split(":", 1) for entry in KEYS.split(","))
"""The test keys by role: viewer, operator, admin."""
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "console"
VIEWPORT = {"width": 1440, "height": 900}


class ConsoleServer:
    """`tradecast serve` on a fixed port and data dir, which a test may stop and start again
    (a restart: the same port, the same data, the same keys)."""

    def __init__(self, root: Path, settings: Mapping[str, str]) -> None:
        self.root = root
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "server.log"
        self.env = serve_env(
            {
                "TRADECAST_DATA_DIR": str(root / "data"),
                "TRADECAST_API_KEYS": KEYS,
                **settings,
            }
        )
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[Any] | None = None

    def start(self) -> None:
        self._log = self.log_path.open("a")
        self.process = start_serve(self.port, self.env, self._log)
        wait_ready(
            self.process,
            self.base,
            timeout=180,
            interval=0.5,
            request_timeout=1,
            tail=lambda: self.log_path.read_text()[-3000:],
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self, role: str) -> httpx.Client:
        """An API client with ``role``'s key (a header key: no cookie, no CSRF)."""
        return httpx.Client(
            base_url=self.base,
            timeout=300,
            headers={"Authorization": f"Bearer {ROLE_KEYS[role]}"},
        )


@contextmanager
def console_server(root: Path, settings: Mapping[str, str]) -> Iterator[ConsoleServer]:
    """A started :class:`ConsoleServer`, stopped at the end."""
    server = ConsoleServer(root, settings)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def sign_in(page: Any, base: str, role: str) -> None:
    """Open the console in ``page`` and sign in with ``role``'s key, through the form; returns
    once the chart has drawn and the streams are live."""
    page.goto(f"{base}/console/")
    wait_sign_in_form(page)
    page.fill("#api-key", ROLE_KEYS[role])
    page.press("#api-key", "Enter")
    wait_ready_page(page)


def wait_sign_in_form(page: Any) -> None:
    """The sign-in form is shown and bound (its button is enabled only then)."""
    page.wait_for_selector("#api-key", state="visible")
    page.wait_for_selector("#signin-submit:enabled")


def wait_ready_page(page: Any) -> None:
    """The signed-in console has drawn its chart and its streams are live."""
    page.wait_for_function(
        "() => { const s = window.tradecastConsole.state;"
        " return s.signedIn && s.firstChartPaintMs !== null && s.connection === 'live'; }",
        timeout=60_000,
    )


def serious_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ['violations']});
            return result.violations
                .filter((v) => v.impact === 'serious' || v.impact === 'critical')
                .map((v) => ({id: v.id, impact: v.impact, help: v.help,
                              nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' '))}));
        }"""
    )
    return found


def screenshot(page: Any, name: str, *, full_page: bool = False) -> Path:
    """Save the page as docs/console/NAME.png (the documentation's pictures)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path

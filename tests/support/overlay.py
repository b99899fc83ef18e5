"""What the overlay's browser tests share: Debian's Chromium with its flags, and a real
`tradecast serve` (the embedded model and voice) for the page to load from."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support.net import free_port
from support.serve import serve_env, start_serve, wait_ready

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
KEYS = "viewer:view-key-123,operator:ops-key-456,admin:admin-key-789"
CHROMIUM_ARGS = [
    "--headless",
    # the container has no user namespaces for Chromium's sandbox
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # without these, Chromium's own connections are refused by this closed network
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # An AudioContext made by page script starts "suspended" under Chromium's default policy
    # (it waits for a click), and only Playwright's own evaluate calls (which count as a user
    # gesture) would wake it. OBS lets browser sources play at once; this does the same.
    "--autoplay-policy=no-user-gesture-required",
]


@contextmanager
def serving(tmp_path: Path, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """`tradecast serve` on a free port with known keys, its loop paused for an hour between
    ticks (and ``extra_env`` set); yields its base URL once it is ready."""
    port = free_port()
    env = serve_env(
        {
            "TRADECAST_DATA_DIR": str(tmp_path / "data"),
            "TRADECAST_API_KEYS": KEYS,
            "TRADECAST_DESK__SECONDS_PER_TICK": "3600",
            **(extra_env or {}),
        }
    )
    log_path = tmp_path / "server.log"
    log = log_path.open("w")
    process = start_serve(port, env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(
            process,
            base,
            timeout=120,
            interval=0.5,
            request_timeout=1,
            tail=lambda: log_path.read_text()[-3000:],
        )
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()

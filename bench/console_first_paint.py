"""Console first paint: from navigation to the first drawn candlestick chart, on loopback, with
a year of hourly candles (about 8,760 bars) and 1,000 decisions, in Debian's Chromium; and the
size of the console's shipped assets.

A real `tradecast serve` (embedded model) replays BTC/USDT from 2021-06-09T15:00Z, so the
chart's candles run from the dataset's first bar (2020-06-09) to there. One real tick gives a
real tick report; 999 copies of it, one an hour before it (HOLDs, and every tenth a BUY or SELL
the gate refused, so no fill is invented), fill the store to 1,000 decisions. Each run opens a
fresh browser context, signs in over the API (the session cookie), loads /console/ and reads
the page's own marks (``performance.now()`` from navigation start): when the candles were
first drawn, and when the decisions' markers were first drawn on them (the first chart
paint the target is about).

Run: .venv/bin/python bench/console_first_paint.py [--runs 5]
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tradecast.api.app import CONSOLE_DIR
from tradecast.desk.store import STORE_FILENAME, DeskStore
from tradecast.domain import Action
from tradecast.graphs.runner import TickResult

KEYS = "viewer:bench-viewer-key,operator:bench-operator-key,admin:bench-admin-key"
OPERATOR = {"Authorization": "Bearer bench-operator-key"}
TRADECAST = str(Path(sys.executable).with_name("tradecast"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
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
REPLAY_FROM = "2021-06-09T15:00:00Z"
DECISIONS = 1000
TARGET_MS = 1500


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(data_dir: Path, port: int, log: Any) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADECAST_")}
    env.update(
        {
            "TRADECAST_DATA_DIR": str(data_dir),
            "TRADECAST_API_KEYS": KEYS,
            "TRADECAST_DESK__AUTOSTART": "false",
            "TRADECAST_DESK__REPLAY_FROM": REPLAY_FROM,
            "TRADECAST_VOICE__BACKEND": "off",
        }
    )
    return subprocess.Popen(
        [TRADECAST, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )


def wait_ready(base: str, process: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("tradecast serve exited; see its log")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit("tradecast serve was not ready in time")


def copies(report: TickResult, count: int) -> list[TickResult]:
    """``count`` copies of a real report, one an hour before it, none of them filled."""
    decision = report.decision
    assert decision is not None
    made = []
    for n in range(1, count + 1):
        action = (Action.BUY if n % 20 == 0 else Action.SELL) if n % 10 == 0 else Action.HOLD
        at = decision.decided_at - timedelta(hours=n)
        copy_id = f"{decision.id}-copy{n:04d}"
        made.append(
            report.model_copy(
                update={
                    "thread_id": f"tick:{copy_id}",
                    "decision": decision.model_copy(
                        update={
                            "id": copy_id,
                            "decided_at": at,
                            "action": action,
                            "quantity": decision.quantity
                            if action is not Action.HOLD
                            else Decimal(0),
                        }
                    ),
                    "risk": report.risk.model_copy(
                        update={"approved": False, "reasons": ["bench copy: refused"]}
                    ),
                    "order": None,
                    "fills": [],
                }
            )
        )
    return made


def seed(base: str, data_dir: Path) -> TickResult:
    """One real tick, then its copies written to the desk store."""
    answer = httpx.post(f"{base}/v1/desk/tick", headers=OPERATOR, timeout=600)
    answer.raise_for_status()
    report = TickResult.model_validate(answer.json())
    store = DeskStore.sqlite(data_dir / STORE_FILENAME)
    try:
        for copy in copies(report, DECISIONS - 1):
            store.record_tick(copy)
    finally:
        store.close()
    return report


def first_paint(base: str, runs: int) -> list[dict[str, float]]:
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(runs):
            context = browser.new_context(viewport={"width": 1600, "height": 1000})
            signed = context.request.post(f"{base}/v1/session", data={"key": "bench-viewer-key"})
            assert signed.ok, signed.text()
            page = context.new_page()
            page.goto(f"{base}/console/")
            page.wait_for_function(
                "window.tradecastConsole?.state.firstMarkersPaintMs != null",
                timeout=60_000,
            )
            state = page.evaluate(
                "({candles_paint: window.tradecastConsole.state.firstChartPaintMs,"
                " paint: window.tradecastConsole.state.firstMarkersPaintMs,"
                " candles: window.tradecastConsole.state.candles,"
                " markers: window.tradecastConsole.state.markers,"
                " dom: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd})"
            )
            rows.append(state)
            context.close()
        browser.close()
    return rows


def asset_sizes() -> tuple[int, int, dict[str, int]]:
    """Raw and gzip bytes of every shipped console file, and each file's raw size."""
    sizes: dict[str, int] = {}
    raw = packed = 0
    for path in sorted(p for p in CONSOLE_DIR.rglob("*") if p.is_file()):
        data = path.read_bytes()
        sizes[str(path.relative_to(CONSOLE_DIR))] = len(data)
        raw += len(data)
        packed += len(gzip.compress(data, 9))
    return raw, packed, sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="page loads measured (1-50)")
    args = parser.parse_args()
    if not 1 <= args.runs <= 50:
        parser.error("--runs must be 1 to 50")
    with tempfile.TemporaryDirectory(prefix="console-bench-") as tmp:
        data_dir, port = Path(tmp) / "data", free_port()
        base = f"http://127.0.0.1:{port}"
        with (Path(tmp) / "serve.log").open("w") as log:
            process = serve(data_dir, port, log)
            try:
                wait_ready(base, process)
                report = seed(base, data_dir)
                rows = first_paint(base, args.runs)
            finally:
                process.send_signal(signal.SIGINT)
                process.wait(timeout=60)
    paints = [float(r["paint"]) for r in rows]
    candle_paints = [float(r["candles_paint"]) for r in rows]
    raw, packed, sizes = asset_sizes()
    print(f"real tick: {report.decision_id} ({len(report.model_dump_json())} bytes of report)")
    print(f"candles on the chart: {rows[-1]['candles']}, decision markers: {rows[-1]['markers']}")
    print(f"candles first drawn over {len(paints)} loads (ms): {[round(p) for p in candle_paints]}")
    print(f"first chart paint with its markers (ms): {[round(p) for p in paints]}")
    print(
        f"median {statistics.median(paints):.0f} ms, worst {max(paints):.0f} ms "
        f"(target <= {TARGET_MS} ms: {'met' if max(paints) <= TARGET_MS else 'MISSED'})"
    )
    print(f"DOMContentLoaded median {statistics.median(float(r['dom']) for r in rows):.0f} ms")
    print(f"shipped assets: {raw / 1024:.1f} KiB raw, {packed / 1024:.1f} KiB gzipped")
    for name, size in sizes.items():
        print(f"  {name}: {size / 1024:.1f} KiB")


if __name__ == "__main__":
    main()

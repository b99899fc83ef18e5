"""Persona latency: time from a committed decision to the persona's first token on the SSE
stream, with the embedded model (SmolLM2-135M on llama.cpp), end to end through `tradecast
serve`.

A client holds the ``desk`` and ``persona`` streams open and forces ticks one after another.
Per tick, "committed" is the server's timestamp of the tick's last desk event before the
persona speaks (``decision``, ``risk_rejection``, ``order`` or ``fill``: the execute node is
done), and the first token is the client's receipt of the first persona ``token`` carrying
that decision id. Both clocks are this machine's wall clock.

Run: .venv/bin/python bench/persona_latency.py [--ticks 3] [--full]  (--full: 20 ticks)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

KEYS = "viewer:bench-viewer-key,operator:bench-operator-key,admin:bench-admin-key"
VIEWER = {"Authorization": "Bearer bench-viewer-key"}
OPERATOR = {"Authorization": "Bearer bench-operator-key"}
COMMITTED = {"decision", "risk_rejection", "order", "fill"}
TRADECAST = str(Path(sys.executable).with_name("tradecast"))


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


async def follow(client: httpx.AsyncClient, channel: str, seen: list[tuple[float, dict]]) -> None:
    """Record (receipt time, event) for every event of ``channel``."""
    async with client.stream("GET", f"/v1/streams/{channel}", headers=VIEWER) as response:
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                seen.append((time.time(), json.loads(line[5:])))


async def measure(base: str, ticks: int) -> list[dict]:
    desk: list[tuple[float, dict]] = []
    persona: list[tuple[float, dict]] = []
    rows = []
    async with httpx.AsyncClient(base_url=base, timeout=600) as client:
        followers = [
            asyncio.create_task(follow(client, "desk", desk)),
            asyncio.create_task(follow(client, "persona", persona)),
        ]
        await asyncio.sleep(0.5)
        for _ in range(ticks):
            started = time.perf_counter()
            response = await client.post("/v1/desk/tick", headers=OPERATOR)
            response.raise_for_status()
            report = response.json()
            tick_s = time.perf_counter() - started
            decision_id = report["decision"]["id"]
            async with asyncio.timeout(10):
                while not any(
                    e["data"].get("decision_id") == decision_id and e["event"] == "sentence"
                    for _, e in persona
                ):
                    await asyncio.sleep(0.01)
            committed = max(
                epoch(e["timestamp"])
                for _, e in desk
                if e["thread_id"] == report["thread_id"] and e["event"] in COMMITTED
            )
            received, token = next(
                (t, e)
                for t, e in persona
                if e["event"] == "token" and e["data"].get("decision_id") == decision_id
            )
            rows.append(
                {
                    "decision_id": decision_id,
                    "action": report["decision"]["action"],
                    "latency_s": received - committed,
                    "server_s": epoch(token["timestamp"]) - committed,
                    "delivery_ms": (received - epoch(token["timestamp"])) * 1000,
                    "tick_s": tick_s,
                    "persona_node_ms": report["latency_ms"].get("persona", 0.0),
                }
            )
        for task in followers:
            task.cancel()
    return rows


def start_server(data_dir: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADECAST_")}
    env.update(
        {
            "TRADECAST_DATA_DIR": data_dir,
            "TRADECAST_API_KEYS": KEYS,
            "TRADECAST_DESK__AUTOSTART": "false",
            "TRADECAST_LOG_LEVEL": "warning",
        }
    )
    server = subprocess.Popen(
        [TRADECAST, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"tradecast serve exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return server, base
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    server.kill()
    raise SystemExit("tradecast serve did not get ready in 180 s")


def report(rows: list[dict]) -> None:
    latencies = [r["latency_s"] for r in rows]
    print(
        f"persona latency (decision committed -> first token received over SSE), embedded "
        f"SmolLM2-135M, {len(rows)} ticks"
    )
    for r in rows:
        print(
            f"  {r['decision_id']:<24} {r['action']:<4} {r['latency_s'] * 1000:7.0f} ms "
            f"(server {r['server_s'] * 1000:6.0f} ms + SSE {r['delivery_ms']:5.1f} ms); "
            f"tick {r['tick_s']:5.1f} s, persona node {r['persona_node_ms']:6.0f} ms"
        )
    print(
        f"  p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {percentile(latencies, 95) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ticks", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="20 ticks")
    args = parser.parse_args()
    ticks = 20 if args.full else args.ticks
    with tempfile.TemporaryDirectory() as scratch:
        server, base = start_server(scratch)
        try:
            rows = asyncio.run(measure(base, ticks))
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
    report(rows)


if __name__ == "__main__":
    main()

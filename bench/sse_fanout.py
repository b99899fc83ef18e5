"""SSE fan-out: N concurrent clients on one uvicorn worker, events published at a steady rate.

The server is the real app (`create_app`, one uvicorn worker, loopback) in its own process;
it publishes persona ``token`` events through the desk's publisher, each stamped with the wall
time of publication. The clients (another process, raw asyncio HTTP/1.1, one connection each)
record the time from publication to receipt, and which events arrived: lost and duplicated
events are counted per client. Bounded in time; stops by itself.

Run: .venv/bin/python bench/sse_fanout.py [--clients 1000] [--rate 20] [--seconds 10] [--full]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

KEY = "bench-viewer-key"
KEYS = f"viewer:{KEY},operator:bench-operator-key,admin:bench-admin-key"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


# --- the server process -----------------------------------------------------------------


def serve(port: int, clients: int, rate: float, seconds: float, data_dir: str) -> None:
    """Run the app on ``port``; once ``clients`` are subscribed, publish for ``seconds``."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import uvicorn

    from support.scripted_model import NO_TOOL, ScriptedChatModel, analyst, risk, trader
    from tradecast.api.app import create_app
    from tradecast.domain import StreamEvent
    from tradecast.logs import configure_logging
    from tradecast.settings import load_settings

    configure_logging("warning", "console")
    settings = load_settings(
        data_dir=data_dir,
        api={"api_keys": KEYS},
        desk={"autostart": False, "memory_k": 0},
        voice={"backend": "off"},  # this measures the streams, not the voice
    )
    models = {
        "analyst": ScriptedChatModel(script=[analyst()]),
        "risk": ScriptedChatModel(script=[risk()]),
        "trader": ScriptedChatModel(script=[NO_TOOL, trader()]),
        "persona": ScriptedChatModel(script=["Hello there."]),
    }
    app = create_app(settings, models=models)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, backlog=4096
        )
    )

    async def run() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        ctx = await app.state.opener.wait_open(120)
        deadline = time.monotonic() + 120
        while ctx.bus.stats()["persona"]["subscribers"] < clients:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        total = int(rate * seconds)
        start = time.perf_counter()
        for seq in range(total):
            delay = start + seq / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await ctx.publisher.publish(
                StreamEvent(
                    channel="persona",
                    event="token",
                    data={"text": "word ", "seq": seq, "sent_ns": time.time_ns()},
                )
            )
        deadline = time.monotonic() + 30
        while ctx.bus.stats()["persona"]["subscribers"] and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        stats = ctx.bus.stats()["persona"]
        print(json.dumps({"server_stats": stats}), flush=True)
        server.should_exit = True
        await task

    try:
        import uvloop  # what `tradecast serve` runs on (uvicorn's default loop when installed)

        uvloop.run(run())
    except ImportError:
        asyncio.run(run())


# --- the client process -----------------------------------------------------------------


@dataclass
class ClientResult:
    status: int = 0
    seqs: list[int] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    error: str | None = None


EVENT = re.compile(rb'"seq":(\d+),"sent_ns":(\d+)')


class ChunkedBody:
    """Decodes an HTTP/1.1 chunked body fed in arbitrary pieces (one read per wake-up)."""

    def __init__(self) -> None:
        self.raw = b""
        self.body = b""

    def feed(self, data: bytes) -> bool:
        """Add bytes; False once the terminating chunk arrived."""
        self.raw += data
        while True:
            end = self.raw.find(b"\r\n")
            if end < 0:
                return True
            size = int(self.raw[:end].split(b";")[0] or b"0", 16)
            if size == 0:
                return False
            if len(self.raw) < end + 2 + size + 2:
                return True
            self.body += self.raw[end + 2 : end + 2 + size]
            self.raw = self.raw[end + 2 + size + 2 :]


async def one_client(port: int, total: int, deadline: float) -> ClientResult:
    result = ClientResult()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    except OSError as exc:
        result.error = f"connect: {exc}"
        return result
    writer.write(
        (
            f"GET /v1/streams/persona HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {KEY}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
    )
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        result.status = int(head.split(b" ", 2)[1])
        body = ChunkedBody()
        open_ = True
        while open_ and len(result.seqs) < total:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            data = await asyncio.wait_for(reader.read(1 << 16), remaining)
            if not data:
                break
            open_ = body.feed(data)
            now_ns = time.time_ns()
            # only whole frames (they end with a blank line) are taken
            cut = body.body.rfind(b"\n\n")
            if cut < 0:
                continue
            frames, body.body = body.body[: cut + 2], body.body[cut + 2 :]
            for match in EVENT.finditer(frames):
                result.seqs.append(int(match.group(1)))
                result.latencies_ms.append((now_ns - int(match.group(2))) / 1e6)
    except (TimeoutError, OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        writer.close()
    return result


async def run_clients(port: int, clients: int, total: int, seconds: float) -> list[ClientResult]:
    deadline = time.monotonic() + seconds + 60
    tasks = []
    for i in range(clients):
        tasks.append(asyncio.create_task(one_client(port, total, deadline)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)  # let the server accept in batches
    return await asyncio.gather(*tasks)


def wait_for_server(port: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if b" 200 " in sock.recv(200):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not get ready")


def report(
    results: list[ClientResult], total: int, args: argparse.Namespace, server_line: str
) -> None:
    latencies = [ms for r in results for ms in r.latencies_ms]
    connected = sum(1 for r in results if r.status == 200)
    lost = sum(total - len(set(r.seqs)) for r in results)
    duplicated = sum(len(r.seqs) - len(set(r.seqs)) for r in results)
    out_of_order = sum(1 for r in results if r.seqs != sorted(r.seqs))
    errors = [r.error for r in results if r.error]
    print(
        f"SSE fan-out: {args.clients} clients, {total} events at {args.rate:g}/s "
        f"({args.seconds:g} s), one uvicorn worker, loopback"
    )
    print(
        f"  connected {connected}/{args.clients}; deliveries {len(latencies):,} "
        f"(expected {total * args.clients:,}); lost {lost}; duplicated {duplicated}; "
        f"out of order {out_of_order}; client errors {len(errors)}"
    )
    if latencies:
        print(
            f"  publish -> client receipt: p50 {statistics.median(latencies):.1f} ms, "
            f"p95 {percentile(latencies, 95):.1f} ms, p99 {percentile(latencies, 99):.1f} ms, "
            f"max {max(latencies):.1f} ms"
        )
    if errors:
        print(f"  first errors: {errors[:3]}")
    if server_line:
        print(f"  server: {server_line.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="publishing time")
    parser.add_argument("--full", action="store_true", help="50 events/s for 30 s")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.full:
        args.rate, args.seconds = 50.0, 30.0
    if args.serve:
        serve(args.port, args.clients, args.rate, args.seconds, args.data_dir)
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    total = int(args.rate * args.seconds)
    with tempfile.TemporaryDirectory() as scratch:
        server = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve",
                "--port",
                str(port),
                "--clients",
                str(args.clients),
                "--rate",
                str(args.rate),
                "--seconds",
                str(args.seconds),
                "--data-dir",
                scratch,
            ],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"},
        )
        try:
            wait_for_server(port, server)
            clients = run_clients(port, args.clients, total, args.seconds)
            try:
                import uvloop

                results = uvloop.run(clients)
            except ImportError:
                results = asyncio.run(clients)
            out, _ = server.communicate(timeout=60)
        finally:
            if server.poll() is None:
                server.kill()
    server_line = next((line for line in out.splitlines() if "server_stats" in line), "")
    report(results, total, args, server_line)


if __name__ == "__main__":
    main()

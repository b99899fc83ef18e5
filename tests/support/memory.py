"""Shared helpers of the memory tests: the bundled real candles and situation texts."""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest

import tradecast
from support.net import free_port
from tradecast.domain import Candle
from tradecast.memory import describe_situation

OHLCV = Path(tradecast.__file__).parent / "data" / "ohlcv"


@cache
def load_candles(filename: str = "BTC-USDT-1h.csv") -> tuple[Candle, ...]:
    """Every bar of one bundled CSV, oldest first."""
    with (OHLCV / filename).open(newline="") as handle:
        return tuple(Candle.model_validate(row) for row in csv.DictReader(handle))


def situation_at(index: int, filename: str = "BTC-USDT-1h.csv") -> str:
    """The situation text at bar ``index`` of a bundled CSV (from the 200 bars before it)."""
    candles = load_candles(filename)
    return describe_situation(candles[max(0, index - 200) : index + 1])


@contextmanager
def running_chroma_server(path: Path) -> Iterator[str]:
    """A real Chroma server (the ``chroma run`` binary chromadb ships) on a free local port,
    storing under ``path``; yields its URL and stops it afterwards."""
    binary = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    if not Path(binary).exists():
        pytest.skip("the chroma server binary is not installed")
    port = free_port()
    path.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    with (path / "server.log").open("w") as log:
        proc = subprocess.Popen(
            [binary, "run", "--path", str(path / "db"), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            _wait_for_port(port, proc)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chroma server exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"chroma server did not listen on port {port} within {timeout_s}s")

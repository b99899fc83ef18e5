"""`tradecast serve` as a subprocess: its environment, its start and the wait for /readyz."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

TRADECAST = str(Path(sys.executable).with_name("tradecast"))


def serve_env(settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any TRADECAST_* variable, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADECAST_")}
    env.update(settings)
    return env


def start_serve(
    port: int, env: Mapping[str, str], log: IO[Any], command: Sequence[str] = (TRADECAST,)
) -> subprocess.Popen[bytes]:
    """``tradecast serve --port PORT`` (``command``: what runs instead of ``tradecast``) with
    stdout and stderr both written to ``log``."""
    return subprocess.Popen(
        [*command, "serve", "--port", str(port)],
        env=dict(env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_ready(
    proc: subprocess.Popen[Any],
    base: str,
    *,
    timeout: float,
    interval: float,
    request_timeout: float,
    tail: Callable[[], str],
    name: str = "server",
) -> httpx.Response:
    """Poll ``base``/readyz until it answers 200 (returned); fail with the log ``tail`` when
    the process exits or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = httpx.get(f"{base}/readyz", timeout=request_timeout)
            if answer.status_code == 200:
                return answer
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited:\n" + tail())
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} not ready in {timeout} s:\n" + tail())
        time.sleep(interval)

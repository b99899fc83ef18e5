"""`tradecast serve` as a user runs it, on the embedded model: it never runs open (keys are
generated and logged when none are set), a forced tick runs the real desk, and the persona's
sentence arrives on the SSE stream."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

TRADECAST = str(Path(sys.executable).with_name("tradecast"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _generated_keys(log: Path) -> dict[str, str]:
    for line in log.read_text().splitlines():
        if '"api.generated_keys"' in line:
            return json.loads(line)
    raise AssertionError("no generated keys in the log:\n" + log.read_text()[-2000:])


@pytest.mark.slow
def test_serve_streams_a_persona_sentence_from_a_forced_tick(tmp_path: Path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADECAST_")}
    env.update(
        {
            "TRADECAST_DATA_DIR": str(tmp_path / "data"),
            "TRADECAST_LOG_FORMAT": "json",
            "TRADECAST_DESK__AUTOSTART": "false",
        }
    )
    log_path = tmp_path / "server.log"
    log = log_path.open("w")
    server = subprocess.Popen(
        [TRADECAST, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "server not ready in 180 s"
            time.sleep(0.5)
        keys = _generated_keys(log_path)
        assert keys["overlay"] == f"{base}/overlay/?key={keys['viewer']}"
        assert httpx.get(f"{base}/v1/desk/status").status_code == 401
        operator = {"Authorization": f"Bearer {keys['operator']}"}
        with (
            httpx.Client(base_url=base, timeout=300) as client,
            client.stream("GET", "/v1/streams/persona", params={"key": keys["viewer"]}) as stream,
        ):
            accepted = client.post("/v1/desk/tick", params={"wait": "false"}, headers=operator)
            assert accepted.status_code == 202, accepted.text
            sentence, event_name = None, None
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event_name = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event_name == "sentence":
                    sentence = json.loads(line.split(":", 1)[1])
                    break
        assert sentence is not None and sentence["data"]["text"]
        assert sentence["data"]["emotion"] and sentence["data"]["decision_id"]
        deadline = time.monotonic() + 120  # the report is stored when the tick ends
        while not (
            decisions := httpx.get(f"{base}/v1/decisions", headers=operator).json()["items"]
        ):
            assert time.monotonic() < deadline, "the tick was never recorded"
            time.sleep(0.2)
        assert decisions[0]["id"] == sentence["data"]["decision_id"]
        assert decisions[0]["llm"]["calls"] >= 4
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    assert server.returncode == 0, log_path.read_text()[-3000:]

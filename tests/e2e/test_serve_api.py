"""`tradecast serve` as a user runs it, on the embedded model: it never runs open (keys are
generated and logged when none are set), a forced tick runs the real desk, and the persona's
sentence arrives on the SSE stream."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from support.net import free_port
from support.serve import serve_env, start_serve, wait_ready


def _generated_keys(log: Path) -> dict[str, str]:
    for line in log.read_text().splitlines():
        if '"api.generated_keys"' in line:
            return json.loads(line)
    raise AssertionError("no generated keys in the log:\n" + log.read_text()[-2000:])


@pytest.mark.slow
def test_serve_streams_a_persona_sentence_from_a_forced_tick(tmp_path: Path):
    port = free_port()
    env = serve_env(
        {
            "TRADECAST_DATA_DIR": str(tmp_path / "data"),
            "TRADECAST_LOG_FORMAT": "json",
            "TRADECAST_DESK__AUTOSTART": "false",
        }
    )
    log_path = tmp_path / "server.log"
    log = log_path.open("w")
    server = start_serve(port, env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(
            server,
            base,
            timeout=180,
            interval=0.5,
            request_timeout=1,
            tail=lambda: log_path.read_text()[-3000:],
        )
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

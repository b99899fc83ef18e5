"""The installed `tradecast` command, run as a user runs it."""

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


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADECAST_")}
    return {**env, "TRADECAST_DATA_DIR": str(tmp_path / "data"), **extra}


@pytest.mark.slow
def test_doctor_json_reports_a_working_embedded_llm(tmp_path: Path):
    done = subprocess.run(
        [TRADECAST, "doctor", "--json"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["llm"]["ok"] is True
    assert report["llm"]["backend"] == "llamacpp"
    assert report["llm"]["tokens_per_s"] > 0
    assert report["llm"]["extra_buffer_types"] is False
    assert "amx_tile" in report["llm"]["cpu"]["flags"] or not report["llm"]["cpu"]["flags"]
    assert "llama-cpp-python" in report["llm"]["llamacpp_build"]
    assert report["embeddings"]["ok"] is True and report["embeddings"]["dimensions"] == 384
    assert report["voice"]["ok"] is True, report["voice"]
    assert report["voice"]["voice"] == "piper:en_US-joe-medium"
    assert report["voice"]["audio_s"] > 1
    assert "cuda" in report["gpu"]


def test_doctor_fails_with_a_reason_when_the_model_is_missing(tmp_path: Path):
    env = _env(tmp_path, TRADECAST_LLM__MODEL_PATH=str(tmp_path / "missing.gguf"))
    done = subprocess.run(
        [TRADECAST, "doctor", "--json"], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode != 0
    assert "model_missing" in json.loads(done.stdout)["llm"]["error"]


def test_invalid_setting_exits_non_zero_naming_the_variable(tmp_path: Path):
    env = _env(tmp_path, TRADECAST_LLM__TIMEOUT_S="soon")
    done = subprocess.run([TRADECAST, "doctor"], capture_output=True, text=True, env=env)
    assert done.returncode == 2
    assert "TRADECAST_LLM__TIMEOUT_S" in done.stderr


@pytest.mark.slow
def test_serve_starts_answers_and_stops_cleanly(tmp_path: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [TRADECAST, "serve", "--port", str(port)],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "server did not start in 60 s"
                time.sleep(0.2)
        assert response.json() == {"status": "ok", "error": None}
        while not httpx.get(f"http://127.0.0.1:{port}/readyz").json()["ready"]:
            assert time.monotonic() < deadline, "the desk did not open in 60 s"
            time.sleep(0.2)
    finally:
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=30)
    assert server.returncode == 0, stderr
    assert "api.stopped" in stderr

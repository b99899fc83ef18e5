"""The model server's circuit breaker shared by replicas through Redis: processes built by
the real bootstrap, talking to one failing Ollama (the fake server of the reliability tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from reliability.fake_ollama import FakeOllama

pytestmark = [pytest.mark.scaleout]

REPLICA = """
import json, sys
from tradecast.bootstrap import build_chat_model
from tradecast.errors import LLMError
from tradecast.llm.breaker import CircuitOpenError
from tradecast.settings import load_settings

model = build_chat_model(load_settings(), "analyst")
seen = []
for _ in range(int(sys.argv[1])):
    try:
        model.invoke("hello")
        seen.append("ok")
    except CircuitOpenError:
        seen.append("open")
    except LLMError as exc:
        seen.append(exc.kind)
print(json.dumps(seen))
"""


@pytest.fixture
def failing_ollama() -> Iterator[FakeOllama]:
    fake = FakeOllama(plan=lambda role, n: "error500").start()
    yield fake
    fake.stop()


def own_environment() -> dict[str, str]:
    """This environment without the developer's own tradecast settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TRADECAST_")}


def replica_calls(calls: int, env: dict[str, str]) -> list[str]:
    """What one replica process saw of ``calls`` model calls."""
    done = subprocess.run(
        [sys.executable, "-c", REPLICA, str(calls)],
        env={**own_environment(), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_breaker_opened_on_one_replica_is_open_on_the_other(redis_url, namespace, failing_ollama):
    env = {
        "TRADECAST_LLM__BACKEND": "ollama",
        "TRADECAST_LLM__OLLAMA_BASE_URL": failing_ollama.url,
        "TRADECAST_LLM__BREAKER_THRESHOLD": "3",
        "TRADECAST_LLM__BREAKER_COOLDOWN_S": "600",
        "TRADECAST_REDIS_URL": redis_url,
        "TRADECAST_CLUSTER__NAMESPACE": namespace,
    }
    assert replica_calls(3, env) == ["backend"] * 3
    assert len(failing_ollama.seen) == 3
    assert replica_calls(2, env) == ["open", "open"], "the second replica never called"
    assert len(failing_ollama.seen) == 3


def test_without_redis_each_process_has_its_own_breaker(failing_ollama):
    env = {
        "TRADECAST_LLM__BACKEND": "ollama",
        "TRADECAST_LLM__OLLAMA_BASE_URL": failing_ollama.url,
        "TRADECAST_LLM__BREAKER_THRESHOLD": "2",
    }
    assert replica_calls(3, env) == ["backend", "backend", "open"]
    assert replica_calls(1, env) == ["backend"]
    assert len(failing_ollama.seen) == 3

"""Helpers of the reliability suite: recorded figures, chat models on a (fake) Ollama server
made by the real factory, and `tradecast serve` as a subprocess that can be killed with
SIGKILL and started again on the same data dir."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from langchain_core.language_models import BaseChatModel

from support.net import free_port
from support.serve import TRADECAST, start_serve, wait_ready
from tradecast.llm import create_chat_model
from tradecast.settings import AGENT_ROLES, AgentRole, LLMBackend, LLMConfig

FIGURES: dict[str, dict[str, Any]] = {}
VIEWER, OPERATOR, ADMIN = "view-key-123", "ops-key-456", "admin-key-789"
KEYS = f"viewer:{VIEWER},operator:{OPERATOR},admin:{ADMIN}"
START = "2021-01-05T12:00:00Z"


def record(area: str, test: str, **figures: Any) -> None:
    """Keep the figures one test measured (merged by area and test name)."""
    FIGURES.setdefault(area, {}).setdefault(test, {}).update(figures)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def ollama_models(url: str, **llm: Any) -> dict[AgentRole, BaseChatModel]:
    """One model per role on the Ollama server at ``url``, made by the real factory (with its
    circuit breaker)."""
    config = LLMConfig(backend=LLMBackend.OLLAMA, ollama_base_url=url, **llm)
    return {role: create_chat_model(config, role) for role in AGENT_ROLES}


@dataclass
class Serve:
    """`tradecast serve` in a subprocess on a fixed port and data dir."""

    data_dir: Path
    log_path: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    command: tuple[str, ...] = (TRADECAST,)
    """What runs as ``tradecast`` (the crash tests run their kill-point script)."""

    @classmethod
    def configure(cls, tmp_path: Path, ollama_url: str, **settings: str) -> Serve:
        """A server on the fake Ollama at ``ollama_url`` with known keys; ``settings`` are
        extra TRADECAST_* variables (names without the prefix)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRADECAST_")}
        env.update(
            {
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "ANONYMIZED_TELEMETRY": "False",
                "TRADECAST_DATA_DIR": str(tmp_path / "data"),
                "TRADECAST_LOG_FORMAT": "json",
                "TRADECAST_API_KEYS": KEYS,
                "TRADECAST_LLM__BACKEND": "ollama",
                "TRADECAST_LLM__OLLAMA_BASE_URL": ollama_url,
                "TRADECAST_LLM__TIMEOUT_S": "3",
                "TRADECAST_DESK__REPLAY_FROM": START,
                "TRADECAST_DESK__MEMORY_K": "0",
                "TRADECAST_VOICE__BACKEND": "off",
            }
        )
        env.update({f"TRADECAST_{k}": v for k, v in settings.items()})
        return cls(tmp_path / "data", tmp_path / "server.log", env)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180) -> None:
        """Start the server and wait until it is ready."""
        log = self.log_path.open("ab")
        self.proc = start_serve(self.port, self.env, log, self.command)
        log.close()
        self.starts += 1
        wait_ready(
            self.proc, self.base, timeout=timeout, interval=0.2, request_timeout=2, tail=self.tail
        )

    def kill9(self) -> None:
        """SIGKILL: no shutdown handler runs, nothing is flushed."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        assert self.proc.returncode == -signal.SIGKILL

    def stop(self) -> None:
        """A clean stop (SIGINT), or SIGKILL when that hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def client(self, key: str = OPERATOR, timeout: float = 60) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers=auth(key), timeout=timeout)

    def tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def log_events(self, name: str) -> list[dict[str, Any]]:
        """Every JSON log line whose event is ``name``."""
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if f'"{name}"' in line:
                try:
                    item = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if item.get("event") == name:
                    out.append(item)
        return out

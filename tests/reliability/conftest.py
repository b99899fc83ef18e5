"""Fixtures of the reliability suite: the real embedder, a fake Ollama server, and the
figures every test records (what was tried, how many times, what was lost).

The figures are written as JSON when the session ends (``TRADECAST_RELIABILITY_FIGURES``, by
default ``.pytest_cache/reliability-figures.json``) and printed in the terminal summary;
docs/RELIABILITY.md quotes them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_ollama import FakeOllama

from support.reliability import FIGURES


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    """A healthy fake Ollama server (tests change its plan to make it misbehave)."""
    server = FakeOllama().start()
    yield server
    server.stop()


def _figures_path(config: pytest.Config) -> Path:
    configured = os.environ.get("TRADECAST_RELIABILITY_FIGURES")
    if configured:
        return Path(configured)
    return Path(config.rootpath) / ".pytest_cache" / "reliability-figures.json"


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not FIGURES:
        return
    path = _figures_path(session.config)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(FIGURES, indent=2, sort_keys=True, default=str) + "\n")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    for area in sorted(FIGURES):
        for test, figures in sorted(FIGURES[area].items()):
            shown = ", ".join(f"{k}={v}" for k, v in figures.items())
            terminalreporter.write_line(f"[{area}] {test}: {shown}")
    terminalreporter.write_line(f"written to {_figures_path(terminalreporter.config)}")

"""Fixtures every test suite shares."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.services import (  # noqa: F401 (fixtures for the scale-out tests)
    namespace,
    postgres_url,
    private_redis,
    redis_url,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from tradecast.memory.embeddings import SentenceTransformerEmbedder

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    """The real all-MiniLM-L6-v2 model, loaded once for the whole session."""
    return SentenceTransformerEmbedder()


@pytest.fixture
def fixtures_dir() -> Path:
    """Recorded responses and small data files."""
    return FIXTURES


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test gets its own data dir and no stray TRADECAST_ settings from the shell."""
    for name in list(os.environ):
        if name.startswith("TRADECAST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TRADECAST_DATA_DIR", str(tmp_path / "data"))
    yield

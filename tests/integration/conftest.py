"""Fixtures for tests that drive whole components together."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import chromadb
import pytest

from tradecast.bootstrap import DeskRuntime, open_desk
from tradecast.domain import StreamEvent
from tradecast.memory.chroma import ChromaDecisionMemory, chroma_settings
from tradecast.memory.embeddings import SentenceTransformerEmbedder
from tradecast.settings import DeskConfig, load_settings

DeskFactory = Callable[..., AbstractAsyncContextManager[DeskRuntime]]


@pytest.fixture
def events() -> list[StreamEvent]:
    """Everything a desk streamed during the test."""
    return []


@pytest.fixture
def open_test_desk(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, events: list[StreamEvent]
) -> DeskFactory:
    """Opens a real desk (replay, paper broker, journal, checkpoints, Chroma memory) in
    ``tmp_path`` with the given chat models; desk settings can be overridden."""
    collection = f"desk-{uuid.uuid4().hex[:12]}"
    client = chromadb.EphemeralClient(settings=chroma_settings())

    @asynccontextmanager
    async def factory(models: dict[str, Any], **desk: Any) -> AsyncIterator[DeskRuntime]:
        settings = load_settings(data_dir=tmp_path / "data", desk=DeskConfig(**desk))
        memory = ChromaDecisionMemory(client, embedder, collection=collection)

        async def sink(event: StreamEvent) -> None:
            events.append(event)

        async with open_desk(settings, sink=sink, models=models, memory=memory) as runtime:
            yield runtime

    return factory

"""The eval run's own decision memory: which implementation a replay uses, and how it is
saved into the run dir when the replay ends. Picked here, like every other implementation."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import chromadb

from tradecast.errors import EvalError
from tradecast.graphs.nodes import MemoryCalls, call_inline
from tradecast.memory.base import DecisionMemory
from tradecast.memory.chroma import (
    DEFAULT_COLLECTION,
    ChromaDecisionMemory,
    chroma_settings,
    persistent_client,
)
from tradecast.memory.embeddings import Embedder
from tradecast.memory.inprocess import InProcessDecisionMemory, copy_to

MemoryKind = Literal["exact", "chroma"]


@dataclass
class RunMemory:
    """The run's own decision memory, and how it is saved into the run dir at the end."""

    store: DecisionMemory
    client: Any = None
    collection: str | None = None
    calls: MemoryCalls = asyncio.to_thread
    """How the desk graph calls ``store``: inline for the exact memory (numpy, microseconds a
    call, where a worker-thread hop costs ~60 us), on a worker thread for Chroma."""

    @classmethod
    def open(cls, kind: MemoryKind, embedder: Embedder) -> RunMemory:
        """An empty memory of ``kind``: exact in-process search, or a Chroma collection."""
        if kind == "exact":
            return cls(InProcessDecisionMemory(embedder), calls=call_inline)
        if kind != "chroma":
            raise EvalError(f"unknown memory {kind!r}: use 'exact' or 'chroma'")
        client = chromadb.EphemeralClient(settings=chroma_settings())
        name = f"eval-{uuid.uuid4().hex[:16]}"
        return cls(ChromaDecisionMemory(client, embedder, collection=name), client, name)

    def save(self, embedder: Embedder, path: Path) -> int:
        """Copy every decision into a Chroma store at ``path`` (the desk's default collection,
        so ``TRADECAST_DATA_DIR=OUT/data`` opens it); returns how many were saved."""
        target_client = persistent_client(path)
        ChromaDecisionMemory(target_client, embedder)  # creates the collection as the desk does
        target = target_client.get_collection(DEFAULT_COLLECTION)
        if isinstance(self.store, InProcessDecisionMemory):
            return copy_to(self.store, target)
        rows = self.client.get_collection(self.collection).get(
            include=["embeddings", "documents", "metadatas"]
        )
        for start in range(0, len(rows["ids"]), 1000):
            stop = start + 1000
            target.upsert(
                ids=rows["ids"][start:stop],
                embeddings=rows["embeddings"][start:stop],
                documents=rows["documents"][start:stop],
                metadatas=rows["metadatas"][start:stop],
            )
        return len(rows["ids"])

    def close(self) -> None:
        """Drop an in-process Chroma collection."""
        if self.client is not None and self.collection is not None:
            self.client.delete_collection(self.collection)


def open_run_memory(kind: MemoryKind, embedder: Embedder) -> RunMemory:
    """An empty memory of ``kind`` for one eval run ("exact" or "chroma"; EvalError else)."""
    return RunMemory.open(kind, embedder)

"""Worker processes that write one SQLite cache file at the same time (tests of the LLM
and embedding caches shared by parallel eval processes)."""

from __future__ import annotations

from multiprocessing.synchronize import Barrier
from pathlib import Path

import numpy as np
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration

from tradecast.llm.cache import SqliteLLMCache
from tradecast.memory.embedding_cache import PersistentEmbeddingCache

SHARED = 20
"""Keys every writer stores (the same answer), besides its own."""


def write_llm_answers(path: str, writer: int, count: int, start: Barrier) -> None:
    """Open the cache when every writer is ready, then store and read back ``count`` answers
    of this writer's own and the shared ones, one commit each."""
    start.wait()
    cache = SqliteLLMCache(Path(path))
    for i in range(count):
        answer = [ChatGeneration(message=AIMessage(content=f"w{writer}-{i}"))]
        cache.update(f"prompt {writer}-{i}", "model", answer)
        if i < SHARED:
            cache.update(f"shared {i}", "model", [ChatGeneration(message=AIMessage(f"s{i}"))])
        got = cache.lookup(f"prompt {writer}-{i}", "model")
        assert got is not None and got[0].message.content == f"w{writer}-{i}"
    cache.close()


class TextLengthEmbedder:
    """A deterministic embedder: the vector is a function of the text alone."""

    name, dimension = "text-length", 3

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.array([[len(t), t.count("-"), 1.0] for t in texts], dtype=np.float32)


def write_embeddings(path: str, writer: int, count: int, start: Barrier) -> None:
    """Open the embedding cache when every writer is ready, then embed ``count`` texts of this
    writer's own and the shared ones, one batch (one commit) each."""
    start.wait()
    cache = PersistentEmbeddingCache(TextLengthEmbedder(), Path(path))
    for i in range(count):
        texts = [f"text {writer}-{i}"] + ([f"shared {i}"] if i < SHARED else [])
        cache.embed(texts)
    cache.close()

"""The LLM answer cache and the embedding cache shared by several processes (parallel eval
runs on one cache dir): writers that open and write the same new file at the same moment all
succeed, and every answer any of them stored is there afterwards."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np

from support.cache_writers import (
    SHARED,
    TextLengthEmbedder,
    write_embeddings,
    write_llm_answers,
)
from tradecast.llm.cache import SqliteLLMCache
from tradecast.memory.embedding_cache import PersistentEmbeddingCache

WRITERS = 3
COUNT = 150


def _run_writers(target: Callable[..., None], path: Path) -> None:
    context = multiprocessing.get_context("spawn")  # no SQLite connection crosses a fork
    start = context.Barrier(WRITERS)
    workers = [
        context.Process(target=target, args=(str(path), writer, COUNT, start))
        for writer in range(WRITERS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    codes = [worker.exitcode for worker in workers]
    assert codes == [0] * WRITERS, f"a writer failed (exit codes {codes})"


def test_processes_writing_one_llm_cache_file_at_once_all_succeed(tmp_path: Path):
    path = tmp_path / "cache" / "llm-cache.sqlite"
    _run_writers(write_llm_answers, path)
    cache = SqliteLLMCache(path)
    assert len(cache) == WRITERS * COUNT + SHARED
    for writer in range(WRITERS):
        for i in (0, COUNT // 2, COUNT - 1):
            got = cache.lookup(f"prompt {writer}-{i}", "model")
            assert got is not None and got[0].message.content == f"w{writer}-{i}"
    assert cache.lookup(f"shared {SHARED - 1}", "model") is not None
    cache.close()
    (mode,) = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"


def test_processes_writing_one_embedding_cache_file_at_once_all_succeed(tmp_path: Path):
    path = tmp_path / "cache" / "embeddings.sqlite"
    _run_writers(write_embeddings, path)
    (rows,) = sqlite3.connect(path).execute("SELECT COUNT(*) FROM embeddings").fetchone()
    assert rows == WRITERS * COUNT + SHARED
    embedder = TextLengthEmbedder()
    cache = PersistentEmbeddingCache(embedder, path)
    texts = [f"text {w}-{i}" for w in range(WRITERS) for i in range(COUNT)]
    np.testing.assert_array_equal(cache.embed(texts), embedder.embed(texts))
    assert cache.misses == 0, "every vector was read back, none computed again"
    cache.close()

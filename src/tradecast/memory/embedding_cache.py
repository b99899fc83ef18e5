"""A persisted cache of sentence embeddings, keyed by the model and the exact text.

A MiniLM encode costs ~17 ms on a CPU and replays embed the same situation texts every run.
An embedding is a pure function of (model, text), so caching it changes no result: a re-run
reads the vectors back instead of recomputing them. Vectors live in SQLite (float32 blobs)
and in a dict for the process, so a hit costs microseconds.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tradecast.errors import MemoryStoreError
from tradecast.memory.embeddings import Embedder, Vectors
from tradecast.sqlite_shared import connect_shared

EMBEDDING_CACHE_FILENAME = "embeddings.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    model TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, text_sha256)
)
"""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class PersistentEmbeddingCache:
    """An :class:`~tradecast.memory.embeddings.Embedder` that remembers every vector it made.

    ``path`` None keeps the vectors for this process only. The file is in WAL mode and waits
    up to 30 s for a lock, so several processes (parallel eval runs) can read and write it at
    once (``tests/integration/test_cache_processes.py``). ``hits``/``misses`` count texts.
    """

    def __init__(self, inner: Embedder, path: Path | None = None) -> None:
        self._inner = inner
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = connect_shared(self.path, _SCHEMA)
            except sqlite3.Error as exc:
                raise MemoryStoreError(f"cannot open the embedding cache {path}: {exc}") from exc
        self.hits = 0
        self.misses = 0

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embeddings of ``texts``; only texts never seen before reach the model (one batch)."""
        items = list(texts)
        if not items:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            missing = [t for t in dict.fromkeys(items) if t not in self._vectors]
            if missing:
                self._vectors.update(self._stored(missing))
            todo = [t for t in missing if t not in self._vectors]
        if todo:
            computed = self._inner.embed(todo)
            with self._lock:
                for text, vector in zip(todo, computed, strict=True):
                    self._vectors[text] = np.asarray(vector, dtype=np.float32)
                self._store(todo)
        with self._lock:
            self.misses += len(todo)
            self.hits += len(items) - len(todo)
            return np.stack([self._vectors[t] for t in items]).astype(np.float32, copy=False)

    def warm(self, texts: Sequence[str]) -> int:
        """Embed ``texts`` ahead of use, in batches; returns how many had to be computed."""
        before = self.misses
        self.embed(list(dict.fromkeys(texts)))
        return self.misses - before

    def stats(self) -> dict[str, object]:
        """Where the vectors are kept and how the cache was used."""
        return {
            "path": str(self.path) if self.path else None,
            "model": self.name,
            "hits": self.hits,
            "misses": self.misses,
        }

    def close(self) -> None:
        """Close the database (vectors already loaded stay usable in this process)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _stored(self, texts: list[str]) -> dict[str, np.ndarray]:
        if self._db is None:
            return {}
        by_digest = {_digest(t): t for t in texts}
        found: dict[str, np.ndarray] = {}
        digests = list(by_digest)
        for start in range(0, len(digests), 500):
            chunk = digests[start : start + 500]
            rows = self._db.execute(
                f"SELECT text_sha256, vector FROM embeddings WHERE model = ? AND text_sha256 "
                f"IN ({','.join('?' * len(chunk))})",
                (self.name, *chunk),
            ).fetchall()
            for digest, blob in rows:
                vector = np.frombuffer(blob, dtype=np.float32)
                if vector.shape == (self.dimension,):
                    found[by_digest[digest]] = vector
        return found

    def _store(self, texts: list[str]) -> None:
        if self._db is None:
            return
        self._db.executemany(
            "INSERT OR REPLACE INTO embeddings (model, text_sha256, vector) VALUES (?, ?, ?)",
            [(self.name, _digest(t), self._vectors[t].tobytes()) for t in texts],
        )
        self._db.commit()

"""The decision memory on chromadb: a PersistentClient in the data dir, or a Chroma server.

One collection in cosine space holds one entry per decision: the situation text as the
document, its embedding (computed here, never by Chroma's default embedding function, which
would download a model), and flat metadata (see :mod:`tradecast.memory.metadata`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

import chromadb
import numpy as np
import numpy.typing as npt
from chromadb.api import ClientAPI

from tradecast.domain import MemoryHit
from tradecast.errors import MemoryStoreError
from tradecast.logs import get_logger
from tradecast.memory import metadata as meta
from tradecast.memory.base import (
    MAX_K,
    MAX_RECENT,
    DecisionRecord,
    Outcome,
    check_count,
    query_text,
)
from tradecast.memory.embeddings import CachedEmbedder, Embedder, Vectors, normalise_rows

log = get_logger(__name__)

DEFAULT_COLLECTION = "tradecast-decisions"
SCHEMA_VERSION = 1
OVERFETCH = (8, 64)
"""Factors of ``k`` fetched unfiltered before falling back to a filtered search."""
EXACT_SCAN_MAX = 512
"""A filter passing at most this many decisions is served by an exact scan of them."""


@dataclass(frozen=True, slots=True)
class _Row:
    id: str
    document: str | None
    metadata: dict[str, Any]
    distance: float


def chroma_settings() -> chromadb.Settings:
    """Client settings: telemetry off (the desk makes no calls home)."""
    return chromadb.Settings(anonymized_telemetry=False)


def persistent_client(path: Path) -> ClientAPI:
    """An embedded Chroma storing its files under ``path`` (created if missing)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=chroma_settings())
    except Exception as exc:
        raise MemoryStoreError(f"could not open the vector memory in {path}: {exc}") from exc


def http_client(url: str) -> ClientAPI:
    """A client of the Chroma server at ``url`` (e.g. http://chroma:8000)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise MemoryStoreError(
            f"TRADECAST_CHROMA_URL {url!r} must look like http://host:8000 or https://host"
        )
    ssl = parsed.scheme == "https"
    try:
        return chromadb.HttpClient(
            host=parsed.hostname,
            port=parsed.port or (443 if ssl else 8000),
            ssl=ssl,
            settings=chroma_settings(),
        )
    except Exception as exc:
        raise MemoryStoreError(f"could not reach the Chroma server at {url}: {exc}") from exc


@contextmanager
def _backend(operation: str) -> Iterator[None]:
    """Turn a Chroma failure into a MemoryStoreError that says what was being done."""
    try:
        yield
    except MemoryStoreError:
        raise
    except Exception as exc:
        raise MemoryStoreError(f"vector memory {operation} failed: {exc}") from exc


class ChromaDecisionMemory:
    """:class:`~tradecast.memory.base.DecisionMemory` on a Chroma collection (cosine space)."""

    def __init__(
        self,
        client: ClientAPI,
        embedder: Embedder,
        *,
        collection: str = DEFAULT_COLLECTION,
        query_cache_size: int = 256,
        overfetch: Sequence[int] = OVERFETCH,
        exact_scan_max: int = EXACT_SCAN_MAX,
    ) -> None:
        if any(f < 1 for f in overfetch) or exact_scan_max < 0:
            raise MemoryStoreError("overfetch factors must be at least 1, exact_scan_max >= 0")
        self._overfetch = tuple(overfetch)
        self._exact_scan_max = exact_scan_max
        self._client = client
        self._embedder = embedder
        self._cached_embedder: Embedder = (
            CachedEmbedder(embedder, query_cache_size) if query_cache_size > 0 else embedder
        )
        with _backend("open"):
            self._collection = client.get_or_create_collection(
                collection,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={
                    "embedding_model": embedder.name,
                    "embedding_dim": embedder.dimension,
                    "schema": SCHEMA_VERSION,
                },
                embedding_function=None,
            )
            self._max_batch = max(1, int(client.get_max_batch_size()))
        self._check_collection(collection)

    def _check_collection(self, name: str) -> None:
        stored = self._collection.metadata or {}
        expected = (self._embedder.name, self._embedder.dimension)
        found = (stored.get("embedding_model"), stored.get("embedding_dim"))
        if found != expected:
            raise MemoryStoreError(
                f"collection {name!r} holds vectors of {found[0]} (dim {found[1]}), not of "
                f"{expected[0]} (dim {expected[1]}): use another data dir or collection name"
            )
        space = (self._collection.configuration or {}).get("hnsw") or {}
        if space.get("space", "cosine") != "cosine":
            raise MemoryStoreError(f"collection {name!r} is not in cosine space")

    @property
    def embedder(self) -> Embedder:
        """The embedder that turns situation texts into vectors."""
        return self._embedder

    # -- writing ---------------------------------------------------------------------------

    def record(self, record: DecisionRecord) -> None:
        """Remember one decision (re-recording the identical record is a no-op)."""
        self.record_many([record])

    def record_many(
        self, records: Sequence[DecisionRecord], embeddings: npt.ArrayLike | None = None
    ) -> None:
        """Remember decisions in batches; ``embeddings`` (one row per record) skips encoding."""
        items = self._check_records(records)
        new = self._new_records(items)
        if not new:
            return
        if embeddings is None:
            # the desk records the situation it has just searched by: usually a cache hit
            vectors = self._cached_embedder.embed([r.situation for r in new])
        else:
            vectors = self._given_vectors(items, new, embeddings)
        for start in range(0, len(new), self._max_batch):
            chunk = new[start : start + self._max_batch]
            with _backend("insert"):
                self._collection.add(
                    ids=[r.decision_id for r in chunk],
                    embeddings=vectors[start : start + len(chunk)],
                    documents=[r.situation for r in chunk],
                    metadatas=[meta.record_metadata(r) for r in chunk],
                )
        log.debug("memory_recorded", count=len(new), skipped=len(items) - len(new))

    @staticmethod
    def _check_records(records: Sequence[DecisionRecord]) -> list[DecisionRecord]:
        items = list(records)
        for item in items:
            if not isinstance(item, DecisionRecord):
                raise MemoryStoreError(f"expected a DecisionRecord, got {type(item).__name__}")
        ids = [r.decision_id for r in items]
        if len(set(ids)) != len(ids):
            dupes = sorted(i for i, n in Counter(ids).items() if n > 1)
            raise MemoryStoreError(f"decision ids repeated in one call: {dupes[:5]}")
        return items

    def _new_records(self, items: list[DecisionRecord]) -> list[DecisionRecord]:
        """The records not stored yet; an id stored with other content is an error."""
        existing: dict[str, tuple[str | None, Any]] = {}
        for start in range(0, len(items), self._max_batch):
            ids = [r.decision_id for r in items[start : start + self._max_batch]]
            with _backend("lookup"):
                got = self._collection.get(ids=ids, include=["metadatas", "documents"])
            docs = got["documents"] or []
            metas = got["metadatas"] or []
            existing.update(zip(got["ids"], zip(docs, metas, strict=True), strict=True))
        for item in items:
            if item.decision_id in existing:
                document, stored = existing[item.decision_id]
                if not meta.same_record(item, document, stored):
                    raise MemoryStoreError(
                        f"decision {item.decision_id!r} is already recorded with a different "
                        "symbol, action, time, situation, news or votes; decision ids must be "
                        "unique"
                    )
        return [r for r in items if r.decision_id not in existing]

    def _given_vectors(
        self, items: list[DecisionRecord], new: list[DecisionRecord], embeddings: npt.ArrayLike
    ) -> Vectors:
        vectors = normalise_rows(embeddings)
        if vectors.shape != (len(items), self._embedder.dimension):
            raise MemoryStoreError(
                f"embeddings have shape {vectors.shape}, expected "
                f"({len(items)}, {self._embedder.dimension})"
            )
        row = {r.decision_id: i for i, r in enumerate(items)}
        return vectors[[row[r.decision_id] for r in new]]

    def attach_outcome(self, decision_id: str, outcome: Outcome) -> None:
        """Attach (or correct) the outcome of a recorded decision at one horizon."""
        if not isinstance(outcome, Outcome):
            raise MemoryStoreError(f"expected an Outcome, got {type(outcome).__name__}")
        stored = self._stored(decision_id)[1]
        decided_at = meta.from_epoch_us(int(stored[meta.DECIDED_AT]))
        if outcome.known_at < decided_at:
            raise MemoryStoreError(
                f"outcome of {decision_id!r} known at {outcome.known_at.isoformat()}, before "
                f"the decision was made ({decided_at.isoformat()})"
            )
        with _backend("update"):
            self._collection.update(
                ids=[decision_id], metadatas=[meta.outcome_update(stored, outcome)]
            )
        log.debug("memory_outcome", decision_id=decision_id, horizon=outcome.horizon)

    # -- reading ---------------------------------------------------------------------------

    def similar(
        self,
        situation: str,
        *,
        k: int = 5,
        symbol: str | None = None,
        as_of: datetime | None = None,
        since: datetime | None = None,
        with_outcome_only: bool = False,
    ) -> list[MemoryHit]:
        """The ``k`` past decisions most similar to ``situation`` (see DecisionMemory)."""
        text = query_text(situation)
        vector = self._cached_embedder.embed([text])[0]
        return self.similar_by_embedding(
            vector,
            k=k,
            symbol=symbol,
            as_of=as_of,
            since=since,
            with_outcome_only=with_outcome_only,
        )

    def similar_by_embedding(
        self,
        embedding: npt.ArrayLike,
        *,
        k: int = 5,
        symbol: str | None = None,
        as_of: datetime | None = None,
        since: datetime | None = None,
        with_outcome_only: bool = False,
    ) -> list[MemoryHit]:
        """Like :meth:`similar`, from a precomputed embedding of the situation."""
        vector = normalise_rows(np.asarray(embedding, dtype=np.float32).reshape(1, -1))
        if vector.shape[1] != self._embedder.dimension:
            raise MemoryStoreError(
                f"embedding has {vector.shape[1]} values, expected {self._embedder.dimension}"
            )
        check_count(k, "k", MAX_K)
        recall = meta.RecallFilter.of(
            symbol=symbol, as_of=as_of, since=since, with_outcome_only=with_outcome_only
        )
        return [
            meta.to_hit(row.id, row.document, row.metadata, 1.0 - row.distance, recall.as_of_us)
            for row in self._search(vector, k, recall)
        ]

    def _search(self, vector: Vectors, k: int, recall: meta.RecallFilter) -> list[_Row]:
        """The ``k`` nearest stored decisions that pass ``recall``, nearest first.

        Chroma's ``where`` pre-filter costs 5 to 25 ms at 10,000 decisions and grows with the
        store, while the nearest few hundred come back in about a millisecond. The filters
        usually pass most decisions (a live desk recalls as of now), so the nearest
        ``k * factor`` are fetched unfiltered and tested here; when fewer than ``k`` pass, the
        search is repeated with a larger factor (unless none passed at all), then goes to
        :meth:`_selective_search`. Either way the result is the filtered top ``k``.
        """
        if recall.is_empty():
            return self._query(vector, k, None, documents=True)
        for factor in self._overfetch:
            fetch = k * factor
            rows = self._query(vector, fetch, None, documents=False)
            passing = [row for row in rows if recall.accepts(row.metadata)][:k]
            if len(passing) == k or len(rows) < fetch:  # enough, or the whole store was seen
                return self._with_documents(passing)
            if not passing:  # a selective filter: a larger fetch would likely fail too
                break
        return self._selective_search(vector, k, recall)

    def _selective_search(self, vector: Vectors, k: int, recall: meta.RecallFilter) -> list[_Row]:
        """Search under a filter that few near neighbours pass.

        HNSW under a selective filter misses true neighbours, so when at most
        ``exact_scan_max`` decisions pass, they are fetched and ranked exactly here (faster
        than Chroma's filtered search at that size); otherwise Chroma's filter is used.
        """
        where = recall.where()
        with _backend("lookup"):
            got = self._collection.get(
                where=where, include=["embeddings", "metadatas"], limit=self._exact_scan_max + 1
            )
        ids = got["ids"]
        if len(ids) > self._exact_scan_max:
            return self._query(vector, k, where, documents=True)
        if not ids:
            return []
        stored = np.asarray(got["embeddings"], dtype=np.float32)
        distances = 1.0 - stored @ vector[0]
        metas = got["metadatas"] or [{}] * len(ids)
        order = np.argsort(distances, kind="stable")[:k]
        rows = [_Row(ids[i], None, dict(metas[i] or {}), float(distances[i])) for i in order]
        return self._with_documents(rows)

    def _query(
        self, vector: Vectors, n: int, where: dict[str, Any] | None, *, documents: bool
    ) -> list[_Row]:
        include: Any = ["metadatas", "distances", *(["documents"] if documents else [])]
        with _backend("query"):
            result = self._collection.query(
                query_embeddings=vector, n_results=n, where=where, include=include
            )
        ids = result["ids"][0]
        metas = (result["metadatas"] or [[]])[0]
        distances = (result["distances"] or [[]])[0]
        # Widened to str | None (only read) so the fallback of Nones has one type with it.
        docs = (
            (cast("list[list[str | None]] | None", result["documents"]) or [[None] * len(ids)])[0]
            if documents
            else [None] * len(ids)
        )
        return [
            _Row(i, doc, dict(md or {}), float(dist))
            for i, doc, md, dist in zip(ids, docs, metas, distances, strict=True)
        ]

    def _with_documents(self, rows: list[_Row]) -> list[_Row]:
        if not rows:
            return rows
        with _backend("lookup"):
            got = self._collection.get(ids=[r.id for r in rows], include=["documents"])
        by_id = dict(zip(got["ids"], got["documents"] or [], strict=True))
        return [_Row(r.id, by_id.get(r.id), r.metadata, r.distance) for r in rows]

    def get(self, decision_id: str, *, as_of: datetime | None = None) -> MemoryHit:
        """One recorded decision with the outcomes known as of ``as_of`` (similarity 1.0)."""
        document, stored = self._stored(decision_id)
        as_of_us = meta.epoch_us_filter(as_of, "as_of")
        if as_of is not None and as_of_us is not None and int(stored[meta.DECIDED_AT]) > as_of_us:
            raise MemoryStoreError(f"decision {decision_id!r} was made after {as_of.isoformat()}")
        return meta.to_hit(decision_id, document, stored, 1.0, as_of_us)

    def recent(
        self,
        *,
        symbol: str | None = None,
        as_of: datetime | None = None,
        since: datetime | None = None,
        limit: int = 50,
        with_outcome_only: bool = True,
    ) -> list[MemoryHit]:
        """The latest decisions with their outcomes known as of ``as_of``, newest first (see
        DecisionMemory).

        Chroma cannot sort, so the metadata of every decision passing the filter is read (a
        few thousand small dicts cost a few ms) and the newest are picked here; only their
        situation texts are then fetched.
        """
        check_count(limit, "limit", MAX_RECENT)
        recall = meta.RecallFilter.of(
            symbol=symbol, as_of=as_of, since=since, with_outcome_only=with_outcome_only
        )
        with _backend("lookup"):
            got = self._collection.get(where=recall.where(), include=["metadatas"])
        metas = got["metadatas"] or [{}] * len(got["ids"])
        latest = meta.newest(
            ((i, md or {}) for i, md in zip(got["ids"], metas, strict=True)), limit
        )
        rows = self._with_documents([_Row(i, None, dict(md), 0.0) for i, md in latest])
        return [meta.to_hit(r.id, r.document, r.metadata, 1.0, recall.as_of_us) for r in rows]

    def count(self) -> int:
        """How many decisions are stored."""
        with _backend("count"):
            return int(self._collection.count())

    def _stored(self, decision_id: str) -> tuple[str | None, dict[str, Any]]:
        if not isinstance(decision_id, str) or not decision_id:
            raise MemoryStoreError(f"decision id must be a non-empty string, got {decision_id!r}")
        with _backend("lookup"):
            got = self._collection.get(ids=[decision_id], include=["metadatas", "documents"])
        if not got["ids"]:
            raise MemoryStoreError(f"no decision {decision_id!r} in memory")
        # Widened to str | None (only read) so the fallback of Nones has one type with it.
        document = (cast("list[str | None] | None", got["documents"]) or [None])[0]
        return document, dict((got["metadatas"] or [{}])[0] or {})

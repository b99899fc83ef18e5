"""A decision memory held in this process: exact cosine search in numpy, nothing on disk.

The same :class:`~tradecast.memory.base.DecisionMemory` contract as the Chroma store (the
contract suite runs on both), with the same metadata encoding and recall filter
(:mod:`tradecast.memory.metadata`). Search is exact, so it is the reference the HNSW index
is measured against, and it costs microseconds for the few thousand decisions of an eval
run, where each Chroma call costs 1 to 3 ms. It is what ``tradecast eval`` uses by default;
:func:`copy_to` saves it into a Chroma store when the run ends.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from tradecast.domain import MemoryHit
from tradecast.errors import MemoryStoreError
from tradecast.memory import metadata as meta
from tradecast.memory.base import (
    MAX_K,
    MAX_RECENT,
    DecisionRecord,
    Outcome,
    check_count,
    query_text,
)
from tradecast.memory.embeddings import Embedder, normalise_rows

_GROWTH = 256


class InProcessDecisionMemory:
    """:class:`~tradecast.memory.base.DecisionMemory` in numpy arrays (thread-safe)."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self._lock = threading.Lock()
        self._ids: list[str] = []
        self._row: dict[str, int] = {}
        self._documents: list[str] = []
        self._metadatas: list[dict[str, Any]] = []
        self._vectors = np.zeros((_GROWTH, embedder.dimension), dtype=np.float32)

    @property
    def embedder(self) -> Embedder:
        """The embedder that turns situation texts into vectors."""
        return self._embedder

    # -- writing ---------------------------------------------------------------------------

    def record(self, record: DecisionRecord) -> None:
        """Remember one decision (re-recording the identical record is a no-op)."""
        self.record_many([record])

    def record_many(self, records: Sequence[DecisionRecord]) -> None:
        """Remember decisions; on a bad or conflicting record nothing of this call is stored."""
        items = list(records)
        for item in items:
            if not isinstance(item, DecisionRecord):
                raise MemoryStoreError(f"expected a DecisionRecord, got {type(item).__name__}")
        ids = [r.decision_id for r in items]
        if len(set(ids)) != len(ids):
            raise MemoryStoreError("decision ids repeated in one call")
        with self._lock:
            new = [r for r in items if not self._known(r)]
        if not new:
            return
        vectors = normalise_rows(self._embedder.embed([r.situation for r in new]))
        with self._lock:
            new = [r for r in new if not self._known(r)]  # another thread may have won
            for record, vector in zip(new, vectors, strict=False):
                self._append(record, vector)

    def attach_outcome(self, decision_id: str, outcome: Outcome) -> None:
        """Attach (or correct) the outcome of a recorded decision at one horizon."""
        if not isinstance(outcome, Outcome):
            raise MemoryStoreError(f"expected an Outcome, got {type(outcome).__name__}")
        with self._lock:
            row = self._index(decision_id)
            stored = self._metadatas[row]
            decided_at = meta.from_epoch_us(int(stored[meta.DECIDED_AT]))
            if outcome.known_at < decided_at:
                raise MemoryStoreError(
                    f"outcome of {decision_id!r} known at {outcome.known_at.isoformat()}, "
                    f"before the decision was made ({decided_at.isoformat()})"
                )
            update = meta.outcome_update(stored, outcome)
            merged = {**stored, **update}
            self._metadatas[row] = {k: v for k, v in merged.items() if v is not None}

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
        """The ``k`` past decisions most similar to ``situation`` (exact search)."""
        text = query_text(situation)
        check_count(k, "k", MAX_K)
        recall = meta.RecallFilter.of(
            symbol=symbol, as_of=as_of, since=since, with_outcome_only=with_outcome_only
        )
        query = normalise_rows(self._embedder.embed([text]))[0]
        with self._lock:
            count = len(self._ids)
            if count == 0:
                return []
            similarity = self._vectors[:count] @ query
            hits = []
            for row in np.argsort(-similarity, kind="stable"):
                if recall.accepts(self._metadatas[row]):
                    hits.append(
                        meta.to_hit(
                            self._ids[row],
                            self._documents[row],
                            self._metadatas[row],
                            float(similarity[row]),
                            recall.as_of_us,
                        )
                    )
                    if len(hits) == k:
                        break
        return hits

    def get(self, decision_id: str, *, as_of: datetime | None = None) -> MemoryHit:
        """One recorded decision with the outcomes known as of ``as_of`` (similarity 1.0)."""
        as_of_us = meta.epoch_us_filter(as_of, "as_of")
        with self._lock:
            row = self._index(decision_id)
            stored = dict(self._metadatas[row])
            document = self._documents[row]
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
        DecisionMemory)."""
        check_count(limit, "limit", MAX_RECENT)
        recall = meta.RecallFilter.of(
            symbol=symbol, as_of=as_of, since=since, with_outcome_only=with_outcome_only
        )
        with self._lock:
            latest = meta.newest(
                (
                    (decision_id, metadata)
                    for decision_id, metadata in zip(self._ids, self._metadatas, strict=True)
                    if recall.accepts(metadata)
                ),
                limit,
            )
            return [
                meta.to_hit(
                    decision_id,
                    self._documents[self._row[decision_id]],
                    metadata,
                    1.0,
                    recall.as_of_us,
                )
                for decision_id, metadata in latest
            ]

    def count(self) -> int:
        """How many decisions are stored."""
        with self._lock:
            return len(self._ids)

    def rows(self) -> tuple[list[str], np.ndarray, list[str], list[dict[str, Any]]]:
        """Ids, vectors, documents and metadata of every decision (copies), to save them."""
        with self._lock:
            count = len(self._ids)
            return (
                list(self._ids),
                self._vectors[:count].copy(),
                list(self._documents),
                [dict(m) for m in self._metadatas],
            )

    # -- helpers ---------------------------------------------------------------------------

    def _known(self, record: DecisionRecord) -> bool:
        row = self._row.get(record.decision_id)
        if row is None:
            return False
        if not meta.same_record(record, self._documents[row], self._metadatas[row]):
            raise MemoryStoreError(
                f"decision {record.decision_id!r} is already recorded with a different "
                "symbol, action, time, situation, news or votes; decision ids must be unique"
            )
        return True

    def _append(self, record: DecisionRecord, vector: np.ndarray) -> None:
        count = len(self._ids)
        if count == len(self._vectors):
            grown = np.zeros((count * 2, self._vectors.shape[1]), dtype=np.float32)
            grown[:count] = self._vectors
            self._vectors = grown
        self._vectors[count] = vector
        self._row[record.decision_id] = count
        self._ids.append(record.decision_id)
        self._documents.append(record.situation)
        self._metadatas.append(meta.record_metadata(record))

    def _index(self, decision_id: str) -> int:
        if not isinstance(decision_id, str) or not decision_id:
            raise MemoryStoreError(f"decision id must be a non-empty string, got {decision_id!r}")
        row = self._row.get(decision_id)
        if row is None:
            raise MemoryStoreError(f"no decision {decision_id!r} in memory")
        return row


def copy_to(source: InProcessDecisionMemory, target: Any) -> int:
    """Save every decision of ``source`` into a Chroma collection ``target`` (upserts, in
    batches); returns how many were saved."""
    ids, vectors, documents, metadatas = source.rows()
    batch = 1000
    for start in range(0, len(ids), batch):
        stop = start + batch
        target.upsert(
            ids=ids[start:stop],
            embeddings=vectors[start:stop],
            documents=documents[start:stop],
            metadatas=metadatas[start:stop],
        )
    return len(ids)

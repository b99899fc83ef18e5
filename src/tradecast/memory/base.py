"""The vector-memory interface: record decisions, attach outcomes, recall similar situations.

Time safety is part of the contract: a recall "as of" ``t`` never returns a decision made after
``t``, nor an outcome that was not yet known at ``t``. That is what lets the eval harness replay
history through the same memory the live desk uses, with no look-ahead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from pydantic import Field, field_validator

from tradecast.domain import Action, Decision, DomainModel, MemoryHit, Symbol, UtcDatetime
from tradecast.domain.base import parse_duration
from tradecast.errors import MemoryStoreError

MAX_K = 100
"""The most hits one recall may ask for."""
MAX_NEWS = 20
"""The most news titles kept with one decision."""
MAX_SITUATION_CHARS = 8000
"""Longer situation texts are refused (MiniLM reads only the first ~256 word pieces anyway)."""


def horizon_delta(horizon: str) -> timedelta:
    """The length of a horizon label such as '1h', '24h', '7d' (units m, h, d, w)."""
    return parse_duration(horizon, "horizon")


def clean_situation(text: str) -> str:
    """The situation text stripped, refusing empty or oversized text with a ValueError."""
    if not isinstance(text, str):
        raise ValueError(f"situation must be text, got {type(text).__name__}")
    cleaned = text.strip()
    if not cleaned:
        raise ValueError("situation text is empty: describe the market situation to remember")
    if len(cleaned) > MAX_SITUATION_CHARS:
        raise ValueError(
            f"situation text has {len(cleaned)} characters; at most {MAX_SITUATION_CHARS}"
        )
    return cleaned


def query_text(situation: str) -> str:
    """The cleaned text of a recall, or a MemoryStoreError saying what is wrong with it."""
    try:
        return clean_situation(situation)
    except ValueError as exc:
        raise MemoryStoreError(str(exc)) from None


class DecisionRecord(DomainModel):
    """A decision as the memory keeps it: what was done, where, when, and in what situation."""

    decision_id: str = Field(min_length=1, max_length=200)
    symbol: Symbol
    action: Action
    decided_at: UtcDatetime
    situation: str
    news: tuple[str, ...] = Field(
        default=(), max_length=MAX_NEWS, description="titles of the news the decision read"
    )

    @field_validator("decision_id")
    @classmethod
    def _id_is_printable(cls, value: str) -> str:
        if value != value.strip() or not value.isprintable():
            raise ValueError("decision_id must be printable with no surrounding whitespace")
        return value

    @field_validator("situation")
    @classmethod
    def _situation_not_empty(cls, value: str) -> str:
        return clean_situation(value)

    @classmethod
    def of(cls, decision: Decision, situation: str) -> DecisionRecord:
        """The record of a desk decision made in ``situation``."""
        return cls(
            decision_id=decision.id,
            symbol=decision.symbol,
            action=decision.action,
            decided_at=decision.decided_at,
            situation=situation,
            news=tuple(headline.title for headline in decision.news[:MAX_NEWS]),
        )


class Outcome(DomainModel):
    """What came of a decision over one horizon, and when that became known.

    ``ret`` is the symbol's price return over the horizon from the decision price, as a
    fraction (0.012 is +1.2%); whether that was good follows from the action (a BUY wants it
    positive, a SELL negative). ``stop_hit`` says whether the stop was touched within the
    horizon (None: no stop, or not tracked). ``known_at`` is when the outcome became knowable,
    normally the end of the horizon; it can never precede the decision.
    """

    horizon: str
    ret: float
    known_at: UtcDatetime
    stop_hit: bool | None = None

    @field_validator("horizon")
    @classmethod
    def _valid_horizon(cls, value: str) -> str:
        horizon_delta(value)
        return value

    @field_validator("ret")
    @classmethod
    def _finite_return(cls, value: float) -> float:
        if not math.isfinite(value) or value < -1.0:
            raise ValueError("ret must be a finite fraction of at least -1 (0.012 is +1.2%)")
        return value


@runtime_checkable
class DecisionMemory(Protocol):
    """Past decisions with their situations and realised outcomes, searchable by similarity.

    Store-level problems (unknown decision id, a conflicting re-record, an outcome dated
    before its decision, empty query text, a backend failure) raise
    :class:`tradecast.errors.MemoryStoreError` and change nothing stored. Calls are
    synchronous and CPU-bound (an embedding plus an index lookup); async callers should use
    ``asyncio.to_thread``.
    """

    def record(self, record: DecisionRecord) -> None:
        """Remember one decision. Recording the same record again is a no-op (safe to retry);
        recording a different decision under an existing id is an error."""
        ...

    def record_many(self, records: Sequence[DecisionRecord]) -> None:
        """Remember many decisions in batches (all or, on a bad record, none of this call)."""
        ...

    def attach_outcome(self, decision_id: str, outcome: Outcome) -> None:
        """Attach (or correct) the outcome of a recorded decision at one horizon."""
        ...

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
        """The ``k`` past decisions most similar to ``situation``, most similar first.

        ``symbol`` keeps one market only; ``as_of`` keeps decisions made at or before it and
        only outcomes known at or before it (None: everything known now); ``since`` keeps
        decisions made at or after it; ``with_outcome_only`` keeps decisions with at least
        one outcome known as of ``as_of``.
        """
        ...

    def get(self, decision_id: str, *, as_of: datetime | None = None) -> MemoryHit:
        """One recorded decision (similarity 1.0) with its outcomes known as of ``as_of``."""
        ...

    def count(self) -> int:
        """How many decisions are stored."""
        ...


__all__ = [
    "MAX_K",
    "MAX_SITUATION_CHARS",
    "DecisionMemory",
    "DecisionRecord",
    "Outcome",
    "clean_situation",
    "horizon_delta",
    "query_text",
]

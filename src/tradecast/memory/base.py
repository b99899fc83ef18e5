"""The vector-memory interface: record decisions, attach outcomes, recall similar situations.

Time safety is part of the contract: a recall "as of" ``t`` never returns a decision made after
``t``, nor an outcome that was not yet known at ``t``. That is what lets the eval harness replay
history through the same memory the live desk uses, with no look-ahead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
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
MAX_RECENT = 1000
"""The most decisions one :meth:`DecisionMemory.recent` call may ask for."""
MAX_VOTES = 16
"""The most agent votes kept with one decision."""
VOTE_ACTIONS = frozenset({Action.BUY, Action.SELL})
"""The directional actions a vote may take (a HOLD is no vote)."""
_VOTER_NAME = re.compile(r"[a-z_]{1,32}")


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


def check_count(value: object, name: str, maximum: int) -> int:
    """``value`` if it is an integer from 1 to ``maximum``, else a MemoryStoreError."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise MemoryStoreError(f"{name} must be an integer from 1 to {maximum}, got {value!r}")
    return value


def check_votes(votes: Mapping[str, Action]) -> dict[str, Action]:
    """The votes if valid (at most MAX_VOTES agents named with 1 to 32 of a-z and '_', each
    voting BUY or SELL), else a ValueError saying what is wrong."""
    if len(votes) > MAX_VOTES:
        raise ValueError(f"{len(votes)} votes; at most {MAX_VOTES} agents may vote")
    for agent, action in votes.items():
        if not isinstance(agent, str) or not _VOTER_NAME.fullmatch(agent):
            raise ValueError(f"voter name {agent!r} must be 1 to 32 of the characters a-z and _")
        if action not in VOTE_ACTIONS:
            raise ValueError(f"{agent} votes {action!r}: a vote is BUY or SELL")
    return dict(votes)


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
    votes: dict[str, Action] = Field(
        default_factory=dict,
        description="each agent's directional vote (BUY or SELL; agents that abstained, "
        "held or only gated the decision have none)",
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

    @field_validator("votes")
    @classmethod
    def _valid_votes(cls, value: dict[str, Action]) -> dict[str, Action]:
        return check_votes(value)

    @classmethod
    def of(cls, decision: Decision, situation: str) -> DecisionRecord:
        """The record of a desk decision made in ``situation``.

        Its votes are the directional calls of the attribution: every agent but the risk gate
        that did not abstain and said BUY or SELL.
        """
        return cls(
            decision_id=decision.id,
            symbol=decision.symbol,
            action=decision.action,
            decided_at=decision.decided_at,
            situation=situation,
            news=tuple(headline.title for headline in decision.news[:MAX_NEWS]),
            votes={
                row.agent: row.action
                for row in decision.attribution
                if not row.abstained and row.agent != "risk" and row.action in VOTE_ACTIONS
            },
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

    def recent(
        self,
        *,
        symbol: str | None = None,
        as_of: datetime | None = None,
        since: datetime | None = None,
        limit: int = 50,
        with_outcome_only: bool = True,
    ) -> list[MemoryHit]:
        """The latest decisions with the outcomes known of them, newest first.

        What an agent's track record is computed from: each hit carries the agents' votes and
        the outcomes known as of ``as_of``, filtered exactly as :meth:`similar` filters them.

        Args:
            symbol: keep one market only ('BASE/QUOTE', any case); None keeps every market.
            as_of: keep decisions made at or before it and only outcomes known at or before
                it; None keeps everything known now.
            since: keep decisions made at or after it (a live desk reads a bounded span
                instead of every decision it ever made); None keeps all.
            limit: the most decisions returned, from 1 to ``MAX_RECENT``.
            with_outcome_only: keep only decisions with at least one outcome known as of
                ``as_of``.

        Returns:
            At most ``limit`` hits, newest decision first (equal times in decision id
            order), each with similarity 1.0.

        Raises:
            MemoryStoreError: ``limit`` out of range, a naive ``as_of`` or ``since``, a malformed
                ``symbol``, or a backend failure.
        """
        ...

    def count(self) -> int:
        """How many decisions are stored."""
        ...


__all__ = [
    "MAX_K",
    "MAX_RECENT",
    "MAX_SITUATION_CHARS",
    "MAX_VOTES",
    "VOTE_ACTIONS",
    "DecisionMemory",
    "DecisionRecord",
    "Outcome",
    "check_count",
    "check_votes",
    "clean_situation",
    "horizon_delta",
    "query_text",
]

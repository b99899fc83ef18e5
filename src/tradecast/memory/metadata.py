"""How a decision and its outcomes are flattened into scalar vector-store metadata, and back.

Vector stores keep scalar metadata only, so per-horizon outcomes become flat keys::

    ret_24h            the return over 24h (float)
    ret_24h_known_at   when it became known (int, microseconds since the epoch)
    stop_24h           whether the stop was hit within 24h (bool; absent: not tracked)
    first_known_at     the earliest known_at of any horizon (absent: no outcome yet)
    votes              the agents' votes as "analyst:BUY,trader:SELL", by agent name
                       (absent: no votes, as in every decision stored before votes were kept)

Times are integer microseconds since the epoch: exact, and comparable with ``$lte`` filters.
"""

from __future__ import annotations

import heapq
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tradecast.domain import Action, MemoryHit, canonical_symbol
from tradecast.errors import MemoryStoreError
from tradecast.memory.base import VOTE_ACTIONS, DecisionRecord, Outcome, horizon_delta

SYMBOL = "symbol"
ACTION = "action"
DECIDED_AT = "decided_at"
FIRST_KNOWN_AT = "first_known_at"
NEWS = "news"
VOTES = "votes"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_KNOWN_AT_KEY = re.compile(r"^ret_(.+)_known_at$")

Metadata = Mapping[str, Any]


def to_epoch_us(moment: datetime) -> int:
    """A timezone-aware instant as integer microseconds since the epoch (exact)."""
    if moment.tzinfo is None:
        raise ValueError(f"time {moment.isoformat()} must be timezone-aware (UTC)")
    return (moment - _EPOCH) // _ONE_US


def from_epoch_us(value: int) -> datetime:
    """The UTC instant ``value`` microseconds after the epoch."""
    return _EPOCH + int(value) * _ONE_US


def ret_key(horizon: str) -> str:
    """Metadata key of the return over ``horizon``."""
    return f"ret_{horizon}"


def known_at_key(horizon: str) -> str:
    """Metadata key of when the outcome over ``horizon`` became known."""
    return f"ret_{horizon}_known_at"


def stop_key(horizon: str) -> str:
    """Metadata key of whether the stop was hit within ``horizon``."""
    return f"stop_{horizon}"


def record_metadata(record: DecisionRecord) -> dict[str, str | int]:
    """The metadata stored with a new decision (no outcome yet)."""
    metadata: dict[str, str | int] = {
        SYMBOL: record.symbol,
        ACTION: record.action.value,
        DECIDED_AT: to_epoch_us(record.decided_at),
    }
    if record.news:  # a JSON list: vector stores keep scalar metadata only
        metadata[NEWS] = json.dumps(list(record.news), ensure_ascii=False)
    if record.votes:
        metadata[VOTES] = encode_votes(record.votes)
    return metadata


def encode_votes(votes: Mapping[str, Action]) -> str:
    """Votes as one scalar, ``agent:ACTION`` pairs by agent name joined by commas.

    Unambiguous because voter names are made of a-z and '_' only (see DecisionRecord).
    """
    return ",".join(f"{agent}:{Action(action).value}" for agent, action in sorted(votes.items()))


def stored_votes(metadata: Metadata) -> dict[str, Action]:
    """The agents' votes stored with a decision (none if it was stored without any)."""
    text = metadata.get(VOTES)
    if not isinstance(text, str):
        return {}
    votes: dict[str, Action] = {}
    for pair in text.split(","):
        agent, _, action = pair.partition(":")
        if agent and action in VOTE_ACTIONS:
            votes[agent] = Action(action)
    return votes


def stored_news(metadata: Metadata) -> tuple[str, ...]:
    """The news titles stored with a decision."""
    text = metadata.get(NEWS)
    if not isinstance(text, str):
        return ()
    try:
        titles = json.loads(text)
    except json.JSONDecodeError:
        return ()
    return tuple(str(t) for t in titles) if isinstance(titles, list) else ()


def same_record(record: DecisionRecord, document: str | None, metadata: Metadata) -> bool:
    """Whether a stored decision is the very record given (so re-recording it is a no-op)."""
    return (
        document == record.situation
        and metadata.get(SYMBOL) == record.symbol
        and metadata.get(ACTION) == record.action.value
        and metadata.get(DECIDED_AT) == to_epoch_us(record.decided_at)
        and stored_news(metadata) == record.news
        # a decision stored before votes were kept has none: the same decision again
        and stored_votes(metadata) in ({}, record.votes)
    )


def stored_horizons(metadata: Metadata) -> list[str]:
    """The horizons a stored decision has outcomes for, shortest first."""
    horizons = [m.group(1) for key in metadata if (m := _KNOWN_AT_KEY.match(key))]
    return sorted(horizons, key=horizon_delta)


def outcome_update(metadata: Metadata, outcome: Outcome) -> dict[str, Any]:
    """The metadata changes that attach ``outcome`` to a stored decision.

    A value of None deletes a key (the stop flag when the corrected outcome has none).
    ``first_known_at`` is recomputed over every horizon, so a correction stays consistent.
    """
    known_at = to_epoch_us(outcome.known_at)
    update: dict[str, Any] = {
        ret_key(outcome.horizon): float(outcome.ret),
        known_at_key(outcome.horizon): known_at,
        stop_key(outcome.horizon): outcome.stop_hit,
    }
    merged = {**metadata, **update}
    update[FIRST_KNOWN_AT] = min(int(merged[known_at_key(h)]) for h in stored_horizons(merged))
    return update


def known_outcomes(
    metadata: Metadata, as_of_us: int | None
) -> tuple[dict[str, float], bool | None]:
    """The returns per horizon and the stop flag known at ``as_of_us`` (None: all known)."""
    returns: dict[str, float] = {}
    stops: list[bool] = []
    for horizon in stored_horizons(metadata):
        if as_of_us is not None and int(metadata[known_at_key(horizon)]) > as_of_us:
            continue
        returns[horizon] = float(metadata[ret_key(horizon)])
        stop = metadata.get(stop_key(horizon))
        if stop is not None:
            stops.append(bool(stop))
    stop_hit = any(stops) if stops else None
    return returns, stop_hit


def to_hit(
    decision_id: str,
    document: str | None,
    metadata: Metadata,
    similarity: float,
    as_of_us: int | None,
) -> MemoryHit:
    """A stored decision as a :class:`MemoryHit`, showing only outcomes known at ``as_of_us``."""
    returns, stop_hit = known_outcomes(metadata, as_of_us)
    return MemoryHit(
        decision_id=decision_id,
        symbol=str(metadata[SYMBOL]),
        decided_at=from_epoch_us(int(metadata[DECIDED_AT])),
        action=Action(str(metadata[ACTION])),
        situation=document or "",
        similarity=max(-1.0, min(1.0, float(similarity))),
        outcome_returns=returns,
        stop_hit=stop_hit,
        news=stored_news(metadata),
        votes=stored_votes(metadata),
    )


def newest(entries: Iterable[tuple[str, Metadata]], limit: int) -> list[tuple[str, Metadata]]:
    """The ``limit`` latest of ``(decision_id, metadata)`` entries, newest first (equal
    decision times in decision id order)."""
    return heapq.nsmallest(limit, entries, key=lambda e: (-int(e[1][DECIDED_AT]), e[0]))


@dataclass(frozen=True)
class RecallFilter:
    """Which stored decisions a recall may return, as a Chroma ``where`` clause and as the
    same test in Python (for filtering over-fetched nearest neighbours client-side)."""

    symbol: str | None = None
    as_of_us: int | None = None
    since_us: int | None = None
    with_outcome_only: bool = False

    @classmethod
    def of(
        cls,
        *,
        symbol: str | None = None,
        as_of: datetime | None = None,
        since: datetime | None = None,
        with_outcome_only: bool = False,
    ) -> RecallFilter:
        """The filter of a recall's arguments, refusing bad ones with a MemoryStoreError."""
        return cls(
            symbol=symbol_filter(symbol),
            as_of_us=epoch_us_filter(as_of, "as_of"),
            since_us=epoch_us_filter(since, "since"),
            with_outcome_only=with_outcome_only,
        )

    @property
    def outcome_limit(self) -> int:
        # a decision with any outcome known by as_of has its earliest one known by then
        return self.as_of_us if self.as_of_us is not None else 2**62

    def is_empty(self) -> bool:
        """Whether every stored decision passes."""
        return self.where() is None

    def where(self) -> dict[str, Any] | None:
        """The Chroma ``where`` clause (None: no filter)."""
        clauses: list[dict[str, Any]] = []
        if self.symbol is not None:
            clauses.append({SYMBOL: {"$eq": self.symbol}})
        if self.as_of_us is not None:
            clauses.append({DECIDED_AT: {"$lte": self.as_of_us}})
        if self.since_us is not None:
            clauses.append({DECIDED_AT: {"$gte": self.since_us}})
        if self.with_outcome_only:
            clauses.append({FIRST_KNOWN_AT: {"$lte": self.outcome_limit}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def accepts(self, metadata: Metadata) -> bool:
        """Whether a stored decision passes (the same test as :meth:`where`)."""
        decided = int(metadata[DECIDED_AT])
        if self.symbol is not None and metadata.get(SYMBOL) != self.symbol:
            return False
        if self.as_of_us is not None and decided > self.as_of_us:
            return False
        if self.since_us is not None and decided < self.since_us:
            return False
        if self.with_outcome_only:
            first = metadata.get(FIRST_KNOWN_AT)
            if first is None or int(first) > self.outcome_limit:
                return False
        return True


def epoch_us_filter(moment: datetime | None, name: str) -> int | None:
    """A recall's time bound as epoch microseconds (None: no bound), refused unless aware."""
    if moment is None:
        return None
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise MemoryStoreError(f"{name} must be a timezone-aware datetime, got {moment!r}")
    return to_epoch_us(moment)


def symbol_filter(symbol: str | None) -> str | None:
    """A recall's symbol filter normalised to 'BASE/QUOTE' (None: every symbol)."""
    if symbol is None:
        return None
    try:
        return canonical_symbol(symbol)
    except (ValueError, AttributeError) as exc:
        raise MemoryStoreError(str(exc)) from None

"""When the desk ticks: a replay between two instants, or live as bars close.

Two strategies behind one small Protocol, picked in :mod:`tradecast.bootstrap` with the market
they belong to (a replay market has a span; an exchange has only "now"), so the loop never
asks which one it has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from tradecast.domain import utc_now
from tradecast.errors import DeskConflict
from tradecast.market.closed_bars import parse_timeframe
from tradecast.settings import DeskConfig

LIVE_GRACE = timedelta(seconds=5)
"""How long after a bar's close a live tick waits for the exchange to publish it."""

Span = Callable[[str], tuple[datetime, datetime]]
"""A symbol's first and last bar open times (what a replay market knows)."""


class Timeline(Protocol):
    """The instants the desk decides at, from a cursor (the next instant to decide)."""

    @property
    def mode(self) -> Literal["replay", "live"]:
        """What the status and the logs call it."""
        ...

    @property
    def step(self) -> timedelta:
        """The cadence: the cursor moves on by this much after each tick."""
        ...

    @property
    def first(self) -> datetime:
        """Where a desk with no stored cursor starts."""
        ...

    @property
    def last(self) -> datetime | None:
        """The last instant that can be decided (None: no end)."""
        ...

    @property
    def resumable(self) -> bool:
        """Whether the cursor is worth storing: a restart goes on from it."""
        ...

    def finished(self, cursor: datetime) -> bool:
        """Whether ``cursor`` is past the end (nothing is left to tick)."""
        ...

    def moment(self, cursor: datetime) -> datetime:
        """The instant a tick at ``cursor`` decides at."""
        ...

    def seconds_until_due(self, cursor: datetime) -> float:
        """Wall seconds before ``cursor`` can be decided (0: now)."""
        ...


TimelineFactory = Callable[[DeskConfig], Timeline]
"""Builds the timeline of one desk configuration (what the market it belongs to allows).

Raises:
    DeskConflict: the configuration asks for instants the market cannot give.
"""


@dataclass(frozen=True)
class ReplayTimeline:
    """Recorded bars from ``first`` through ``last``, as fast as the desk is paced."""

    step: timedelta
    first: datetime
    last: datetime
    """The close of the last bar (nothing can be decided after it)."""

    mode: Literal["replay"] = "replay"
    resumable: bool = True

    def finished(self, cursor: datetime) -> bool:
        """Whether ``cursor`` is past the last bar's close."""
        return cursor > self.last

    def moment(self, cursor: datetime) -> datetime:
        """The cursor itself: a replayed instant is whatever was recorded then."""
        return cursor

    def seconds_until_due(self, cursor: datetime) -> float:
        """Always 0: a recorded bar has already closed."""
        return 0.0


@dataclass(frozen=True)
class LiveTimeline:
    """An exchange's bars as they close, from ``first`` on, with no end."""

    step: timedelta
    first: datetime
    last: None = None
    mode: Literal["live"] = "live"
    resumable: bool = False

    def finished(self, cursor: datetime) -> bool:
        """Never: a live market goes on."""
        return False

    def moment(self, cursor: datetime) -> datetime:
        """The cursor, or the latest closed instant when the cursor is ahead of the clock."""
        return min(cursor, floor_instant(utc_now(), self.step))

    def seconds_until_due(self, cursor: datetime) -> float:
        """Until the cursor's bar has closed and had :data:`LIVE_GRACE` to be published."""
        return max(0.0, (cursor + LIVE_GRACE - utc_now()).total_seconds())


def floor_instant(moment: datetime, step: timedelta) -> datetime:
    """``moment`` rounded down to a whole multiple of ``step`` since the epoch."""
    seconds = step.total_seconds()
    return datetime.fromtimestamp(moment.timestamp() // seconds * seconds, UTC)


def replay_timeline(span: Span, config: DeskConfig, bar: timedelta) -> ReplayTimeline:
    """The replay of ``config.symbol``: from ``config.replay_from`` (default: the first instant
    with ``config.candles`` bars closed) through the last bar's close.

    Raises:
        DeskConflict: ``replay_from`` is after the replay ends.
    """
    step = parse_timeframe(config.every)
    first_open, last_open = span(config.symbol)
    last = last_open + bar
    earliest = first_open + bar * config.candles
    first = config.replay_from or floor_instant(earliest + step - timedelta(microseconds=1), step)
    if first > last:
        raise DeskConflict(
            f"TRADECAST_DESK__REPLAY_FROM {first.isoformat()} is after the replay of "
            f"{config.symbol} ends ({last.isoformat()})"
        )
    return ReplayTimeline(step, first, last)


def live_timeline(config: DeskConfig) -> LiveTimeline:
    """Live from the current ``config.every`` bar on."""
    step = parse_timeframe(config.every)
    return LiveTimeline(step, floor_instant(utc_now(), step))

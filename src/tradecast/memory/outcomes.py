"""Realised outcomes of a decision, measured on the candles that followed it.

An outcome over a horizon is knowable only once the last bar inside the horizon has closed,
so ``known_at`` is that bar's close time, never earlier: the memory uses it to hide outcomes
from a replay that has not reached that time yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from tradecast.domain import Action, Candle
from tradecast.memory.base import Outcome, horizon_delta


def realised_outcome(
    action: Action,
    entry_price: Decimal,
    decided_at: datetime,
    candles: Sequence[Candle],
    horizon: str,
    bar: timedelta,
    stop_price: Decimal | None = None,
) -> Outcome:
    """The price return over ``horizon`` after a decision, and whether its stop was touched.

    ``candles`` are bars (oldest first, each ``bar`` long, opened at ``timestamp``); only bars
    that opened at or after ``decided_at`` and closed by the horizon's end count. A BUY's stop
    is hit when a bar's low reaches it, a SELL's when a bar's high does; a HOLD has no stop.
    Raises ValueError when the bars do not yet cover the horizon (ask again later).
    """
    if entry_price <= 0:
        raise ValueError(f"entry price must be positive, got {entry_price}")
    if bar <= timedelta(0):
        raise ValueError("bar length must be positive")
    end = decided_at + horizon_delta(horizon)
    path = [c for c in candles if c.timestamp >= decided_at and c.timestamp + bar <= end]
    if not path or path[-1].timestamp + bar <= end - bar:
        raise ValueError(
            f"the bars do not cover the {horizon} after {decided_at.isoformat()} yet "
            f"(need a bar closing after {(end - bar).isoformat()})"
        )
    last = path[-1]
    ret = float(last.close / entry_price) - 1.0
    return Outcome(
        horizon=horizon,
        ret=ret,
        known_at=last.timestamp + bar,
        stop_hit=_stop_hit(action, path, stop_price),
    )


def _stop_hit(action: Action, path: Sequence[Candle], stop_price: Decimal | None) -> bool | None:
    if stop_price is None or action is Action.HOLD:
        return None
    if action is Action.BUY:
        return any(c.low <= stop_price for c in path)
    return any(c.high >= stop_price for c in path)

"""Realised outcomes measured on the real candles that followed a decision."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from support.memory import load_candles
from tradecast.domain import Action
from tradecast.memory import realised_outcome

HOUR = timedelta(hours=1)


def _at(timestamp: str) -> int:
    return next(i for i, c in enumerate(load_candles()) if c.timestamp.isoformat() == timestamp)


def test_memory_outcome_of_a_buy_before_the_crash() -> None:
    candles = load_candles()
    i = _at("2021-05-19T00:00:00+00:00")
    entry = candles[i].open
    decided_at = candles[i].timestamp
    outcome = realised_outcome(
        Action.BUY, entry, decided_at, candles, "24h", HOUR, stop_price=entry * Decimal("0.95")
    )
    assert outcome.horizon == "24h"
    assert outcome.known_at == decided_at + 24 * HOUR
    assert outcome.ret == pytest.approx(float(candles[i + 23].close / entry) - 1.0)
    assert outcome.ret < -0.05
    assert outcome.stop_hit is True


def test_memory_outcome_stop_sides_and_hold() -> None:
    candles = load_candles()
    i = _at("2021-01-07T12:00:00+00:00")
    entry = candles[i].open
    at = candles[i].timestamp
    high = max(c.high for c in candles[i : i + 4])
    low = min(c.low for c in candles[i : i + 4])
    assert realised_outcome(Action.SELL, entry, at, candles, "4h", HOUR, high).stop_hit is True
    assert realised_outcome(Action.SELL, entry, at, candles, "4h", HOUR, high + 1).stop_hit is False
    assert realised_outcome(Action.BUY, entry, at, candles, "4h", HOUR, low - 1).stop_hit is False
    assert realised_outcome(Action.HOLD, entry, at, candles, "4h", HOUR, low).stop_hit is None
    assert realised_outcome(Action.BUY, entry, at, candles, "4h", HOUR).stop_hit is None


def test_memory_outcome_needs_bars_covering_the_horizon() -> None:
    candles = load_candles()
    last = candles[-1]
    with pytest.raises(ValueError, match="do not cover"):
        realised_outcome(Action.BUY, last.close, last.timestamp, candles, "24h", HOUR)
    with pytest.raises(ValueError, match="entry price"):
        realised_outcome(Action.BUY, Decimal(0), candles[0].timestamp, candles, "1h", HOUR)
    # a decision between bars: the bar closing at the horizon's end does not exist
    mid = candles[100].timestamp + timedelta(minutes=30)
    outcome = realised_outcome(Action.BUY, candles[100].close, mid, candles, "4h", HOUR)
    assert outcome.known_at <= mid + 4 * HOUR
    assert outcome.known_at > mid + 3 * HOUR

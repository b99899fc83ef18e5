"""The canonical situation text, built from the bundled real candles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from support.memory import load_candles
from tradecast.domain import Candle
from tradecast.memory import describe_situation
from tradecast.memory.situation import rsi


def _index(timestamp: str) -> int:
    return next(i for i, c in enumerate(load_candles()) if c.timestamp.isoformat() == timestamp)


def test_memory_situation_of_the_may_2021_crash() -> None:
    end = _index("2021-05-19T14:00:00+00:00")
    text = describe_situation(load_candles()[end - 200 : end + 1])
    assert text.startswith("Downtrend, price below its 20-bar average.")
    assert "Last 24h: selloff -13.2%" in text
    assert "last 7d: crash" in text
    assert "Extreme volatility" in text
    assert "Heavy volume" in text
    assert "BTC" not in text and "2021" not in text  # no symbol, no date, no price level


def test_memory_situation_of_a_rally() -> None:
    end = _index("2021-01-07T12:00:00+00:00")
    text = describe_situation(load_candles()[end - 200 : end + 1])
    assert text.startswith("Uptrend, price above its 20-bar average.")
    assert "surge" in text and "rally" in text


def test_memory_situation_depends_only_on_bars_up_to_now() -> None:
    candles = load_candles()
    end = _index("2020-10-01T12:00:00+00:00")
    assert describe_situation(candles[end - 200 : end + 1]) == describe_situation(
        candles[end - 250 : end + 1]
    )


def test_memory_situation_with_short_history_omits_what_it_cannot_compute() -> None:
    candles = load_candles()[:3]
    assert describe_situation(candles) == "Last bar " + (
        f"{float(candles[2].close / candles[1].close) - 1:+.1%}."
    )
    with pytest.raises(ValueError, match="at least 2"):
        describe_situation(candles[:1])


def test_memory_situation_labels_other_bar_lengths() -> None:
    t0 = datetime(2021, 1, 1, tzinfo=UTC)
    candles = [
        Candle(
            timestamp=t0 + i * timedelta(days=1),
            open=Decimal(100 + i),
            high=Decimal(101 + i),
            low=Decimal(99 + i),
            close=Decimal(100 + i),
            volume=Decimal(10),
        )
        for i in range(200)
    ]
    text = describe_situation(candles)
    assert "Last 24d:" in text and "last 168d:" in text
    assert "RSI 100, overbought" in text


def test_memory_rsi_bounds() -> None:
    assert rsi([1.0] * 10) is None
    assert rsi([float(i) for i in range(1, 30)]) == 100.0
    assert rsi([float(i) for i in range(30, 1, -1)]) == pytest.approx(0.0)
    closes = [float(c.close) for c in load_candles()[:500]]
    value = rsi(closes)
    assert value is not None and 0.0 < value < 100.0

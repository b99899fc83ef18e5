"""A canonical text description of a market situation, the key the memory is searched by.

Recording and recalling must describe situations the same way for similarity to mean
anything, so the desk, the eval harness and the benchmarks all use this one function. A
sentence model separates words (uptrend, overbought, selloff, heavy volume) far better than
figures, so each feature is named in words first, with a rounded figure for the agents that
read the hit. The symbol, date and price level are left out on purpose: the ETH crash of a
day should recall the BTC crash of that day, and the memory filters by symbol when asked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from itertools import pairwise
from statistics import median

from tradecast.domain import Candle

RSI_PERIOD = 14
_DAY, _WEEK = 24, 168  # in bars of one hour; other bar lengths reuse the same bar counts


def describe_situation(candles: Sequence[Candle]) -> str:
    """Describe the market at the last of ``candles`` (oldest first; 2 bars or more, ideally
    200 so every feature is present)."""
    if len(candles) < 2:
        raise ValueError("describing a situation needs at least 2 candles")
    closes = [float(c.close) for c in candles]
    bar = _bar_length(candles)
    parts = [
        _trend(closes),
        _momentum(closes),
        _returns(closes, bar),
        _volatility(closes, bar),
        _range(candles, bar),
        _volume(candles),
    ]
    return " ".join(p for p in parts if p)


def rsi(closes: Sequence[float], period: int = RSI_PERIOD) -> float | None:
    """Wilder's RSI of the last close, or None with too few bars."""
    if len(closes) <= period:
        return None
    changes = [b - a for a, b in pairwise(closes)]
    gain = sum(max(c, 0.0) for c in changes[:period]) / period
    loss = sum(max(-c, 0.0) for c in changes[:period]) / period
    for change in changes[period:]:
        gain = (gain * (period - 1) + max(change, 0.0)) / period
        loss = (loss * (period - 1) + max(-change, 0.0)) / period
    if loss == 0:
        return 100.0
    return 100.0 - 100.0 / (1.0 + gain / loss)


def _bar_length(candles: Sequence[Candle]) -> timedelta:
    steps = [b.timestamp - a.timestamp for a, b in pairwise(candles[-25:])]
    # typeshed types statistics.median for numbers only; at runtime it takes any values that
    # sort, add and divide by 2, as timedelta does.
    length = median(steps)  # type: ignore[type-var]
    if length <= timedelta(0):
        raise ValueError("candles must be in time order with distinct timestamps")
    return length


def _label(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes % 1440 == 0 and minutes > 1440:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _trend(closes: Sequence[float]) -> str | None:
    if len(closes) < 20:
        return None
    fast = _mean(closes[-20:])
    side = "above" if closes[-1] >= fast else "below"
    if len(closes) < 50:
        return f"Price {side} its 20-bar average."
    direction = "Uptrend" if fast > _mean(closes[-50:]) else "Downtrend"
    return f"{direction}, price {side} its 20-bar average."


def _momentum(closes: Sequence[float]) -> str | None:
    value = rsi(closes)
    if value is None:
        return None
    if value >= 70:
        zone = "overbought"
    elif value <= 30:
        zone = "oversold"
    else:
        zone = "bullish" if value >= 55 else "bearish" if value <= 45 else "neutral"
    return f"RSI {value:.0f}, {zone}."


def _move(change: float, small: float, big: float, up: str, down: str) -> str:
    if abs(change) < small:
        return "flat"
    if change > 0:
        return up if change >= big else "rise"
    return down if change <= -big else "drop"


def _returns(closes: Sequence[float], bar: timedelta) -> str:
    parts = []
    if len(closes) > _DAY:
        change = closes[-1] / closes[-1 - _DAY] - 1.0
        parts.append(
            f"Last {_label(bar * _DAY)}: {_move(change, 0.01, 0.05, 'surge', 'selloff')} "
            f"{change:+.1%}"
        )
    if len(closes) > _WEEK:
        change = closes[-1] / closes[-1 - _WEEK] - 1.0
        parts.append(
            f"last {_label(bar * _WEEK)}: {_move(change, 0.02, 0.15, 'rally', 'crash')} "
            f"{change:+.1%}"
        )
    parts.append(f"last bar {closes[-1] / closes[-2] - 1.0:+.1%}")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _volatility(closes: Sequence[float], bar: timedelta) -> str | None:
    if len(closes) <= _DAY:
        return None
    rets = [math.log(b / a) for a, b in pairwise(closes[-_DAY - 1 :])]
    mean = _mean(rets)
    per_bar = math.sqrt(sum((r - mean) ** 2 for r in rets) / (len(rets) - 1))
    # thresholds are for hourly moves; scale other bar lengths to an hour
    hourly = per_bar / math.sqrt(max(bar / timedelta(hours=1), 1e-9))
    level = (
        "Calm"
        if hourly < 0.003
        else "Normal"
        if hourly < 0.008
        else "High"
        if hourly < 0.015
        else "Extreme"
    )
    return f"{level} volatility ({per_bar:.2%} per bar)."


def _range(candles: Sequence[Candle], bar: timedelta) -> str | None:
    window = candles[-_DAY:]
    if len(window) < _DAY:
        return None
    high = max(float(c.high) for c in window)
    low = min(float(c.low) for c in window)
    if high <= low:
        return None
    where = (float(window[-1].close) - low) / (high - low)
    place = "near the high" if where >= 0.8 else "near the low" if where <= 0.2 else "mid-range"
    return f"Price {place} of its {_label(bar * _DAY)} range ({(high - low) / low:.1%} wide)."


def _volume(candles: Sequence[Candle]) -> str | None:
    window = [float(c.volume) for c in candles[-_DAY - 1 : -1]]
    if len(window) < _DAY or sum(window) == 0:
        return None
    ratio = float(candles[-1].volume) / _mean(window)
    word = "Heavy" if ratio >= 1.5 else "Light" if ratio <= 0.6 else "Normal"
    return f"{word} volume ({ratio:.1f}x average)."

"""A canonical text description of a market situation, the key the memory is searched by.

Recording and recalling must describe situations the same way for similarity to mean
anything, so the desk, the eval harness and the benchmarks all use this one function. It uses
words a sentence model separates well (uptrend, overbought, near the high) plus rounded
figures, and leaves out the date and the price level, which would make every situation in the
same month look alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from itertools import pairwise
from statistics import median

from tradecast.domain import Candle

RSI_PERIOD = 14


def describe_situation(symbol: str, candles: Sequence[Candle]) -> str:
    """Describe the market at the last of ``candles`` (oldest first, at least 2 bars)."""
    if len(candles) < 2:
        raise ValueError("describing a situation needs at least 2 candles")
    closes = [float(c.close) for c in candles]
    bar = _bar_length(candles)
    sentences = [f"{symbol} on {_label(bar)} bars."]
    sentences += [s for s in (_trend(closes), _momentum(closes)) if s]
    sentences.append(_returns(closes, bar))
    sentences += [s for s in (_volatility(closes), _range(candles), _volume(candles)) if s]
    return " ".join(sentences)


def _bar_length(candles: Sequence[Candle]) -> timedelta:
    steps = [b.timestamp - a.timestamp for a, b in pairwise(candles[-25:])]
    return median(steps)


def _label(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes % 1440 == 0 and minutes > 1440:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def _sma(values: Sequence[float], n: int) -> float | None:
    return sum(values[-n:]) / n if len(values) >= n else None


def _trend(closes: Sequence[float]) -> str | None:
    fast, slow = _sma(closes, 20), _sma(closes, 50)
    if fast is None:
        return None
    last = closes[-1]
    side = "above" if last >= fast else "below"
    if slow is None:
        return f"Price {side} its 20-bar average."
    direction = "uptrend" if fast > slow else "downtrend"
    slow_side = "above" if last >= slow else "below"
    return f"Trend: {direction}, price {side} the 20-bar and {slow_side} the 50-bar average."


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
    return f"Momentum: RSI {value:.0f} ({zone})."


def _returns(closes: Sequence[float], bar: timedelta) -> str:
    parts = []
    for bars in (1, 24, 168):
        if len(closes) > bars:
            change = closes[-1] / closes[-1 - bars] - 1.0
            parts.append(f"{_label(bar * bars)} {change:+.1%}")
    return "Returns: " + ", ".join(parts) + "."


def _volatility(closes: Sequence[float]) -> str | None:
    rets = [math.log(b / a) for a, b in pairwise(closes)]
    if len(rets) < 24:
        return None
    recent = _stdev(rets[-24:])
    text = f"Volatility: {recent:.2%} per bar"
    if len(rets) >= 168:
        ratio = recent / max(_stdev(rets[-168:]), 1e-12)
        text += ", rising" if ratio > 1.25 else ", falling" if ratio < 0.8 else ", steady"
    return text + "."


def _stdev(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1))


def _range(candles: Sequence[Candle]) -> str | None:
    window = candles[-24:]
    if len(window) < 24:
        return None
    high = max(float(c.high) for c in window)
    low = min(float(c.low) for c in window)
    if high <= low:
        return None
    where = (float(window[-1].close) - low) / (high - low)
    place = "near the high" if where >= 0.8 else "near the low" if where <= 0.2 else "mid-range"
    return f"Range: {place} of the last 24 bars ({(high - low) / low:.1%} wide)."


def _volume(candles: Sequence[Candle]) -> str | None:
    window = [float(c.volume) for c in candles[-25:-1]]
    if len(window) < 24 or sum(window) == 0:
        return None
    ratio = float(candles[-1].volume) / (sum(window) / len(window))
    word = "heavy" if ratio >= 1.5 else "light" if ratio <= 0.6 else "normal"
    return f"Volume: {word}, {ratio:.1f}x the 24-bar average."

"""Shared helpers of the memory tests: the bundled real candles and situation texts."""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import tradecast
from tradecast.domain import Candle
from tradecast.memory import describe_situation

OHLCV = Path(tradecast.__file__).parent / "data" / "ohlcv"


@cache
def load_candles(filename: str = "BTC-USDT-1h.csv") -> tuple[Candle, ...]:
    """Every bar of one bundled CSV, oldest first."""
    with (OHLCV / filename).open(newline="") as handle:
        return tuple(Candle.model_validate(row) for row in csv.DictReader(handle))


def situation_at(index: int, symbol: str = "BTC/USDT", filename: str = "BTC-USDT-1h.csv") -> str:
    """The situation text at bar ``index`` of a bundled CSV (from the 200 bars before it)."""
    candles = load_candles(filename)
    return describe_situation(symbol, candles[max(0, index - 200) : index + 1])

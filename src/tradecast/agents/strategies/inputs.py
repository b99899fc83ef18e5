"""What the strategy agents read: closed bars at the decision instant, grouped into days.

The desk decides every few hours or once a day on hourly bars, so the strategies look at
daily bars built from the closed ones (the last group ends at the latest closed bar, so no
bar after the decision instant is ever read), and at the account's exposure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradecast.domain import Candle
from tradecast.market.indicators import bollinger_values, rsi_values, true_range_values

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class DailyBars:
    """Daily high, low and close built from the closed bars, oldest first."""

    high: FloatArray
    low: FloatArray
    close: FloatArray

    def __len__(self) -> int:
        return len(self.close)


@dataclass(frozen=True)
class StrategyInputs:
    """Closed bars (as days) and the position's share of equity at the decision instant."""

    days: DailyBars
    held_weight: float = 0.0
    """Market value of the position over equity (0 when flat)."""

    @classmethod
    def from_candles(
        cls, candles: Sequence[Candle], bars_per_day: float, held_weight: float = 0.0
    ) -> StrategyInputs:
        """Group the closed ``candles`` (oldest first) into days that end at the last one."""
        high, low, close = (
            np.fromiter((float(getattr(c, name)) for c in candles), np.float64, len(candles))
            for name in ("high", "low", "close")
        )
        return cls.of_arrays(high, low, close, bars_per_day, held_weight)

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, bars_per_day: float, held_weight: float = 0.0
    ) -> StrategyInputs:
        """The same from a frame with columns high, low and close, oldest first."""
        high, low, close = (frame[name].to_numpy(np.float64) for name in ("high", "low", "close"))
        return cls.of_arrays(high, low, close, bars_per_day, held_weight)

    @classmethod
    def of_arrays(
        cls,
        high: FloatArray,
        low: FloatArray,
        close: FloatArray,
        bars_per_day: float,
        held_weight: float = 0.0,
    ) -> StrategyInputs:
        """Group bars into days that end at the last one (a partial oldest day is dropped, so
        every day has the same number of bars).

        Raises:
            ValueError: ``bars_per_day`` is not a positive number.
        """
        if not (math.isfinite(bars_per_day) and bars_per_day > 0):
            raise ValueError(f"bars_per_day must be a positive number (got {bars_per_day})")
        per_day = max(1, round(bars_per_day))
        usable = (len(close) // per_day) * per_day
        shape = (usable // per_day, per_day)
        days = DailyBars(
            high=high[len(high) - usable :].reshape(shape).max(axis=1, initial=-np.inf),
            low=low[len(low) - usable :].reshape(shape).min(axis=1, initial=np.inf),
            close=close[len(close) - usable :].reshape(shape)[:, -1],
        )
        return cls(days=days, held_weight=max(0.0, held_weight))

    @property
    def price(self) -> float:
        """The latest close."""
        return float(self.days.close[-1])

    def enough(self, days: int) -> bool:
        """Whether at least ``days`` daily bars exist."""
        return len(self.days) >= days

    def sma(self, days: int) -> float:
        """Mean of the last ``days`` daily closes (call :meth:`enough` first)."""
        return float(np.mean(self.days.close[-days:]))

    def trailing_return(self, days: int) -> float:
        """Return from the close ``days`` days ago to the latest one."""
        return float(self.days.close[-1] / self.days.close[-days - 1] - 1.0)

    def daily_volatility(self, days: int = 20) -> float | None:
        """Sample std of the last ``days`` daily log returns (None with too few)."""
        if len(self.days) < days + 1:
            return None
        returns = np.diff(np.log(self.days.close[-days - 1 :]))
        value = float(np.std(returns, ddof=1))
        return value if value > 0 else None

    def atr(self, days: int = 14) -> float | None:
        """Average true range of the last ``days`` days, in price (None with too few); a
        plain mean, unlike the hourly indicators' Wilder smoothing, so that every one of the
        days counts alike."""
        if len(self.days) < days + 1:
            return None
        high, low, close = (
            a[-days - 1 :] for a in (self.days.high, self.days.low, self.days.close)
        )
        return float(np.mean(true_range_values(high, low, close)[1:]))

    def rsi(self, days: int = 14) -> float | None:
        """Wilder's RSI over daily closes (None with fewer than ``2 * days`` days)."""
        if len(self.days) < 2 * days + 1:
            return None
        return float(rsi_values(self.days.close, days)[-1])

    def bollinger_pct_b(self, days: int = 20, width: float = 2.0) -> float | None:
        """Where the close sits in its Bollinger band: 0 at the lower, 1 at the upper."""
        if len(self.days) < days:
            return None
        pct_b = float(bollinger_values(self.days.close[-days:], days, width)[3][-1])
        return None if math.isnan(pct_b) else pct_b

    def channel(self, days: int) -> tuple[float, float] | None:
        """(highest high, lowest low) of the ``days`` days before the latest one."""
        if len(self.days) < days + 1:
            return None
        return float(self.days.high[-days - 1 : -1].max()), float(
            self.days.low[-days - 1 : -1].min()
        )

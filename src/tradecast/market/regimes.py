"""Market regimes of each bar, known at that bar (the desk weighs its agents by it; the eval
harness scores the desk within each one).

Each bar gets exactly one label, from closes up to and including its own (no look-ahead):

- ``unknown`` until there is enough history for both rules below;
- ``high_volatility`` when the trailing realised volatility is high: above ``vol_ratio``
  times the median of every earlier trailing-volatility reading (an expanding median, so
  the threshold is learned from the past only), or above a fixed annualised
  ``vol_threshold`` when one is given. It overrides the trend label;
- otherwise the trend of the trailing return over ``lookback_days``: ``trend_up`` above
  +``trend_threshold``, ``trend_down`` below −``trend_threshold``, else ``sideways``.

Trailing volatility at bar t is the sample standard deviation of the log returns of the
last ``vol_window_days`` of bars ending at t, annualised with √(bars per 365-day year).
"""

from __future__ import annotations

import heapq
import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
StrArray = npt.NDArray[np.str_]

TREND_UP = "trend_up"
TREND_DOWN = "trend_down"
SIDEWAYS = "sideways"
HIGH_VOLATILITY = "high_volatility"
UNKNOWN = "unknown"
REGIMES = (TREND_UP, TREND_DOWN, SIDEWAYS, HIGH_VOLATILITY, UNKNOWN)
DAYS_PER_YEAR = 365.0


class _RunningMedian:
    """Median of the values added so far (two heaps: O(log n) per value)."""

    def __init__(self) -> None:
        self._low: list[float] = []  # max-heap of the smaller half, negated
        self._high: list[float] = []  # min-heap of the larger half
        self.count = 0

    def add(self, value: float) -> None:
        if self._low and value > -self._low[0]:
            heapq.heappush(self._high, value)
        else:
            heapq.heappush(self._low, -value)
        if len(self._low) > len(self._high) + 1:
            heapq.heappush(self._high, -heapq.heappop(self._low))
        elif len(self._high) > len(self._low):
            heapq.heappush(self._low, -heapq.heappop(self._high))
        self.count += 1

    def median(self) -> float:
        if len(self._low) > len(self._high):
            return -self._low[0]
        return (-self._low[0] + self._high[0]) / 2.0


def _as_closes(closes: npt.ArrayLike) -> FloatArray:
    values = np.asarray(closes, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError("closes must be a non-empty 1-D series of prices")
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError("closes must be finite and greater than 0 (NaN found or a price <= 0)")
    return values


def positive(name: str, value: float) -> float:
    """``value`` as a float if finite and above 0.

    Raises:
        ValueError: otherwise, naming ``name``.
    """
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number greater than 0 (got {value})")
    return float(value)


def _bars(name: str, days: float, bars_per_day: float, minimum: int) -> int:
    bars = round(positive(name, days) * bars_per_day)
    if bars < minimum:
        raise ValueError(f"{name} covers {bars} bars; at least {minimum} are needed")
    return bars


def _trend(values: FloatArray, lookback: int, threshold: float) -> StrArray:
    labels = np.full(len(values), UNKNOWN, dtype="<U15")
    if len(values) > lookback:
        change = values[lookback:] / values[:-lookback] - 1.0
        labels[lookback:] = np.where(
            change > threshold, TREND_UP, np.where(change < -threshold, TREND_DOWN, SIDEWAYS)
        )
    return labels


def trailing_volatility(closes: npt.ArrayLike, window: int, bars_per_year: float) -> FloatArray:
    """Annualised sample std of the last ``window`` log returns ending at each bar.

    Args:
        closes: positive, finite prices.
        window: log returns per reading, at least 2.
        bars_per_year: bars in a 365-day year (annualisation).

    Returns:
        One value per bar; NaN for the first ``window`` bars (not enough returns yet).

    Raises:
        ValueError: on bad closes, window < 2 or bars_per_year <= 0.
    """
    values = _as_closes(closes)
    if window < 2:
        raise ValueError(f"the volatility window must be at least 2 bars (got {window})")
    positive("bars_per_year", bars_per_year)
    out = np.full(len(values), np.nan)
    if len(values) > window:
        windows = np.lib.stride_tricks.sliding_window_view(np.diff(np.log(values)), window)
        out[window:] = windows.std(axis=1, ddof=1) * math.sqrt(bars_per_year)
    return out


def _high_by_history(vol: FloatArray, history: int, ratio: float) -> tuple[BoolArray, BoolArray]:
    """(high, known): above ``ratio`` × the median of all earlier readings, once there are
    ``history`` of them."""
    high = np.zeros(len(vol), dtype=bool)
    known = np.zeros(len(vol), dtype=bool)
    earlier = _RunningMedian()
    for t in np.flatnonzero(np.isfinite(vol)):
        if earlier.count >= history:
            known[t] = True
            high[t] = vol[t] > ratio * earlier.median()
        earlier.add(float(vol[t]))
    return high, known


def label_regimes(
    closes: npt.ArrayLike,
    bars_per_day: float,
    *,
    lookback_days: float = 30.0,
    trend_threshold: float = 0.05,
    vol_window_days: float = 7.0,
    vol_history_days: float = 30.0,
    vol_ratio: float = 1.5,
    vol_threshold: float | None = None,
) -> StrArray:
    """The regime of every bar, from the closes up to and including that bar.

    Args:
        closes: close prices, one per bar, oldest first (finite, > 0).
        bars_per_day: bars in a day (24 for hourly bars).
        lookback_days: window of the trailing return that sets the trend.
        trend_threshold: trailing return beyond ±this is a trend (0.05 = 5%).
        vol_window_days: window of the trailing realised volatility (at least 2 bars).
        vol_history_days: earlier volatility readings needed before the expanding-median
            rule applies (ignored with ``vol_threshold``).
        vol_ratio: high volatility is above this multiple of the expanding median.
        vol_threshold: a fixed annualised volatility (0.8 = 80%) to use instead of the
            expanding median; None for the expanding median.

    Returns:
        An array of labels from ``REGIMES`` (dtype ``<U15``), one per bar.

    Raises:
        ValueError: on bad closes or a parameter out of range.
    """
    values = _as_closes(closes)
    per_day = positive("bars_per_day", bars_per_day)
    lookback = _bars("lookback_days", lookback_days, per_day, 1)
    window = _bars("vol_window_days", vol_window_days, per_day, 2)
    if not (math.isfinite(trend_threshold) and trend_threshold >= 0):
        raise ValueError(f"trend_threshold must be >= 0 (got {trend_threshold})")
    vol = trailing_volatility(values, window, per_day * DAYS_PER_YEAR)
    if vol_threshold is None:
        history = _bars("vol_history_days", vol_history_days, per_day, 1)
        high, known = _high_by_history(vol, history, positive("vol_ratio", vol_ratio))
    else:
        high = vol > positive("vol_threshold", vol_threshold)
        known = np.isfinite(vol)
    trend = _trend(values, lookback, trend_threshold)
    labels: StrArray = np.where(high, HIGH_VOLATILITY, trend)
    labels[~known | (trend == UNKNOWN)] = UNKNOWN
    return labels

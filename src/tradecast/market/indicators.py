"""Technical indicators on candle frames and a summary of the latest values.

A pandas API over vectorised numpy cores (the summary runs on every desk tick, and pandas' per-
operation overhead made it ~15x slower on short series).

A candle frame has float columns ``open, high, low, close, volume`` and a UTC DatetimeIndex of
bar open times (``ReplayMarket.frame`` or :func:`candles_to_frame`). Every indicator is causal:
the value at a bar uses that bar and earlier ones only, so slicing a frame computed over the
whole history never leaks the future. Missing bars (exchange gaps) are not filled: indicators
count bars, not hours.

Conventions (the TA-Lib ones): EMA, RSI and ATR are seeded with the simple mean of their first
``period`` inputs, then smoothed recursively (EMA alpha ``2/(period+1)``; Wilder's RSI and ATR
alpha ``1/period``). RSI and ATR start at the bar after the first, where a previous close
exists, so RSI14 and ATR14 need 15 bars. Bollinger bands use the population standard
deviation. Realised volatility is the sample standard deviation of log returns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
import pandas as pd

from tradecast.domain import Candle, DomainModel

FRAME_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
Trend = Literal["up", "down", "mixed"]


def candles_to_frame(candles: Sequence[Candle]) -> pd.DataFrame:
    """Candles (Decimal) as a float frame indexed by UTC bar open time, oldest first."""
    index = pd.DatetimeIndex([c.timestamp for c in candles], name="timestamp").as_unit("ns")
    if index.tz is None:
        index = index.tz_localize("UTC")
    data = np.array(
        [
            [float(c.open), float(c.high), float(c.low), float(c.close), float(c.volume)]
            for c in candles
        ],
        dtype="float64",
    ).reshape(len(candles), len(FRAME_COLUMNS))
    return pd.DataFrame(data, index=index, columns=list(FRAME_COLUMNS)).sort_index()


def _check_period(period: int, name: str = "period") -> None:
    if period < 1:
        raise ValueError(f"{name} must be at least 1 (got {period})")


# --- numpy cores: the summary runs on every desk tick, so no per-step pandas overhead -----


def _array(values: pd.Series | np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype="float64")


def _shift(x: np.ndarray, periods: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    if periods < len(x):
        out[periods:] = x[: len(x) - periods]
    return out


def _seeded_ewm_np(x: np.ndarray, period: int, alpha: float) -> np.ndarray:
    """Recursive smoothing seeded with the mean of the first ``period`` non-missing values;
    a missing value later on carries the previous result forward."""
    _check_period(period)
    out = np.full(len(x), np.nan)
    valid = ~np.isnan(x)
    if not valid.any():
        return out
    first = int(np.argmax(valid))
    seed_at = first + period - 1
    if seed_at >= len(x):
        return out
    level = float(np.mean(x[first : seed_at + 1]))
    keep = 1.0 - alpha
    smoothed = [level]
    for value in x[seed_at + 1 :].tolist():  # a plain loop: fast on floats, exact recursion
        if value == value:  # not NaN
            level = alpha * value + keep * level
        smoothed.append(level)
    out[seed_at:] = smoothed
    return out


def _rolling(x: np.ndarray, window: int, stat: str, ddof: int = 0) -> np.ndarray:
    """Rolling mean or std over complete windows (NaN until ``window`` values, or if any is)."""
    _check_period(window, "window")
    out = np.full(len(x), np.nan)
    if len(x) >= window:
        windows = np.lib.stride_tricks.sliding_window_view(x, window)
        if stat == "mean":
            out[window - 1 :] = windows.mean(axis=1)
        elif window > ddof:
            out[window - 1 :] = windows.std(axis=1, ddof=ddof)
    return out


def _ema_np(x: np.ndarray, period: int) -> np.ndarray:
    return _seeded_ewm_np(x, period, 2.0 / (period + 1))


def rsi_values(close: np.ndarray, period: int) -> np.ndarray:
    """Wilder's RSI of every bar of a float array (NaN until ``period`` changes): the numpy
    core of :func:`rsi`, for callers that hold arrays rather than frames."""
    delta = close - _shift(close, 1)
    with np.errstate(invalid="ignore"):
        gains = np.where(np.isnan(delta), np.nan, np.maximum(delta, 0.0))
        losses = np.where(np.isnan(delta), np.nan, np.maximum(-delta, 0.0))
    avg_gain = _seeded_ewm_np(gains, period, 1.0 / period)
    avg_loss = _seeded_ewm_np(losses, period, 1.0 / period)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    value = np.where(avg_loss == 0, 100.0, value)
    return np.where((avg_loss == 0) & (avg_gain == 0), 50.0, value)


def _macd_np(
    close: np.ndarray, fast: int, slow: int, signal: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if fast >= slow:
        raise ValueError(f"fast period ({fast}) must be shorter than slow period ({slow})")
    line = _ema_np(close, fast) - _ema_np(close, slow)
    signal_line = _ema_np(line, signal)
    return line, signal_line, line - signal_line


def bollinger_values(
    close: np.ndarray, window: int, k: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bollinger mid, upper, lower and %b of every bar (NaN until ``window`` bars; %b NaN
    where the band has no width): the numpy core of :func:`bollinger`."""
    mid = _rolling(close, window, "mean")
    spread = k * _rolling(close, window, "std", ddof=0)
    upper, lower = mid + spread, mid - spread
    width = upper - lower
    with np.errstate(divide="ignore", invalid="ignore"):
        pct_b = np.where(width > 0, (close - lower) / width, np.nan)
    return mid, upper, lower, pct_b


def true_range_values(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """The true range of every bar (NaN on the first): the numpy core of :func:`true_range`."""
    prev_close = _shift(close, 1)
    true_range: np.ndarray = np.maximum(
        high - low, np.maximum(np.abs(high - prev_close), np.abs(low - prev_close))
    )
    return true_range


def _simple_returns_np(close: np.ndarray, periods: int) -> np.ndarray:
    _check_period(periods, "periods")
    returns: np.ndarray = close / _shift(close, periods) - 1.0
    return returns


def _log_returns_np(close: np.ndarray, periods: int = 1) -> np.ndarray:
    _check_period(periods, "periods")
    returns: np.ndarray = np.log(close / _shift(close, periods))
    return returns


# --- the pandas API -----------------------------------------------------------------------


def sma(values: pd.Series, window: int) -> pd.Series:
    """Simple moving average; NaN until ``window`` values are available."""
    return pd.Series(_rolling(_array(values), window, "mean"), index=values.index)


def ema(values: pd.Series, period: int) -> pd.Series:
    """Exponential moving average (alpha 2/(period+1)), seeded with the first SMA."""
    return pd.Series(_ema_np(_array(values), period), index=values.index)


def rsi(close: pd.Series, period: int = 14) -> pd.Series:
    """Wilder's relative strength index in [0, 100]; 100 with no losses, 50 with no moves."""
    return pd.Series(rsi_values(_array(close), period), index=close.index)


def macd(close: pd.Series, fast: int = 12, slow: int = 26, signal: int = 9) -> pd.DataFrame:
    """MACD line (EMA fast - EMA slow), its signal line (EMA of the line) and the histogram."""
    line, signal_line, hist = _macd_np(_array(close), fast, slow, signal)
    return pd.DataFrame({"macd": line, "signal": signal_line, "hist": hist}, index=close.index)


def bollinger(close: pd.Series, window: int = 20, k: float = 2.0) -> pd.DataFrame:
    """Bollinger bands: SMA mid, mid +/- k population std, and %b = (close-lower)/(upper-lower)."""
    mid, upper, lower, pct_b = bollinger_values(_array(close), window, k)
    return pd.DataFrame(
        {"mid": mid, "upper": upper, "lower": lower, "pct_b": pct_b}, index=close.index
    )


def true_range(frame: pd.DataFrame) -> pd.Series:
    """max(high-low, |high-prev close|, |low-prev close|); NaN on the first bar."""
    tr = true_range_values(_array(frame["high"]), _array(frame["low"]), _array(frame["close"]))
    return pd.Series(tr, index=frame.index)


def atr(frame: pd.DataFrame, period: int = 14) -> pd.Series:
    """Wilder's average true range."""
    tr = true_range_values(_array(frame["high"]), _array(frame["low"]), _array(frame["close"]))
    return pd.Series(_seeded_ewm_np(tr, period, 1.0 / period), index=frame.index)


def simple_returns(close: pd.Series, periods: int = 1) -> pd.Series:
    """close / close ``periods`` bars earlier - 1."""
    return pd.Series(_simple_returns_np(_array(close), periods), index=close.index)


def log_returns(close: pd.Series, periods: int = 1) -> pd.Series:
    """ln(close / close ``periods`` bars earlier)."""
    return pd.Series(_log_returns_np(_array(close), periods), index=close.index)


def realized_volatility(
    close: pd.Series, window: int = 24, periods_per_year: float | None = None
) -> pd.Series:
    """Rolling sample std of 1-bar log returns; times sqrt(periods_per_year) when given."""
    vol = _rolling(_log_returns_np(_array(close)), window, "std", ddof=1)
    if periods_per_year:
        vol = vol * math.sqrt(periods_per_year)
    return pd.Series(vol, index=close.index)


def bars_per_year(index: pd.DatetimeIndex) -> float | None:
    """Bars in a 365-day year at the index's median spacing (crypto trades around the clock)."""
    if len(index) < 2:
        return None
    step_ns = float(np.median(np.diff(index.as_unit("ns").asi8)))
    return timedelta(days=365) / timedelta(microseconds=step_ns / 1000) if step_ns > 0 else None


def _indicator_arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    close = _array(frame["close"])
    high, low = _array(frame["high"]), _array(frame["low"])
    per_year = bars_per_year(frame.index) if isinstance(frame.index, pd.DatetimeIndex) else None
    line, signal_line, hist = _macd_np(close, 12, 26, 9)
    volatility = _rolling(_log_returns_np(close), 24, "std", ddof=1)
    return {
        "close": close,
        "return_1": _simple_returns_np(close, 1),
        "return_24": _simple_returns_np(close, 24),
        "rsi_14": rsi_values(close, 14),
        "macd": line,
        "macd_signal": signal_line,
        "macd_hist": hist,
        "bollinger_pct_b": bollinger_values(close, 20, 2.0)[3],
        "atr_14": _seeded_ewm_np(true_range_values(high, low, close), 14, 1.0 / 14),
        "volatility_24": volatility,
        "volatility_annualised": volatility * math.sqrt(per_year)
        if per_year
        else np.full(len(close), np.nan),
        "sma_20": _rolling(close, 20, "mean"),
        "sma_50": _rolling(close, 50, "mean"),
    }


def indicator_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Every indicator the summary uses, one column each, aligned with ``frame``'s rows."""
    return pd.DataFrame(_indicator_arrays(frame), index=frame.index)


class IndicatorSummary(DomainModel):
    """Latest indicator values of a candle series; None where there are too few bars."""

    as_of: datetime | None = None
    bars: int = 0
    last_close: float | None = None
    return_1: float | None = None
    return_24: float | None = None
    rsi_14: float | None = None
    macd: float | None = None
    macd_signal: float | None = None
    macd_hist: float | None = None
    bollinger_pct_b: float | None = None
    atr_14: float | None = None
    volatility_24: float | None = None
    volatility_annualised: float | None = None
    sma_20: float | None = None
    sma_50: float | None = None
    trend: Trend | None = None

    def as_text(self) -> str:
        """One line with every value: 'bars=200 close=... ret1=+0.12% ... trend=up'."""
        return " ".join([f"bars={self.bars}", *self._fields(None)])

    def as_prompt_text(self) -> str:
        """The values a desk prompt adds to its situation sentence (which already says the
        returns, RSI band and volatility): 'rsi14=56.2 macd_hist=-140.8 ... trend=mixed'.
        Each digit is a token to a small model, so raw levels (SMAs, MACD lines) stay out."""
        return " ".join(self._fields(_PROMPT_FIELDS))

    def _fields(self, names: tuple[str, ...] | None) -> list[str]:
        """'label=value' for the ``names`` asked (None: all), then the trend."""
        parts = []
        for label, value, fmt in (
            ("close", self.last_close, "{:.6g}"),
            ("ret1", self.return_1, "{:+.2%}"),
            ("ret24", self.return_24, "{:+.2%}"),
            ("rsi14", self.rsi_14, "{:.1f}"),
            ("macd", self.macd, "{:.4g}"),
            ("macd_signal", self.macd_signal, "{:.4g}"),
            ("macd_hist", self.macd_hist, "{:+.4g}"),
            ("boll_pct_b", self.bollinger_pct_b, "{:.2f}"),
            ("atr14", self.atr_14, "{:.4g}"),
            ("vol24", self.volatility_24, "{:.2%}"),
            ("vol_annual", self.volatility_annualised, "{:.0%}"),
            ("sma20", self.sma_20, "{:.6g}"),
            ("sma50", self.sma_50, "{:.6g}"),
        ):
            if names is None or label in names:
                parts.append(f"{label}={fmt.format(value) if value is not None else 'n/a'}")
        return [*parts, f"trend={self.trend or 'n/a'}"]


_PROMPT_FIELDS = ("rsi14", "macd_hist", "boll_pct_b")


def _finite(value: object) -> float | None:
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def _trend(close: float | None, sma_20: float | None, sma_50: float | None) -> Trend | None:
    if close is None or sma_20 is None or sma_50 is None:
        return None
    if close > sma_20 > sma_50:
        return "up"
    if close < sma_20 < sma_50:
        return "down"
    return "mixed"


def _summary(last: dict[str, float | None], bars: int, stamp: object) -> IndicatorSummary:
    close = last.pop("close")
    return IndicatorSummary(
        as_of=stamp.to_pydatetime() if isinstance(stamp, pd.Timestamp) else None,
        bars=bars,
        last_close=close,
        trend=_trend(close, last["sma_20"], last["sma_50"]),
        **last,
    )


def summary_from_indicators(indicators: pd.DataFrame) -> IndicatorSummary:
    """The summary of the last row of an :func:`indicator_frame` (slice it to go back in time)."""
    if indicators.empty:
        return IndicatorSummary()
    row = indicators.iloc[-1]
    last = {name: _finite(row[name]) for name in indicators.columns}
    return _summary(last, len(indicators), indicators.index[-1])


def summarize(frame: pd.DataFrame) -> IndicatorSummary:
    """Latest indicator values of a candle frame (see :class:`IndicatorSummary`)."""
    if frame.empty:
        return IndicatorSummary()
    arrays = _indicator_arrays(frame)
    last = {name: _finite(values[-1]) for name, values in arrays.items()}
    return _summary(last, len(frame), frame.index[-1])

"""Technical indicators on candle frames (pandas, vectorised) and a summary of the latest values.

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
        [[float(c.open), float(c.high), float(c.low), float(c.close), float(c.volume)]
         for c in candles],
        dtype="float64",
    ).reshape(len(candles), len(FRAME_COLUMNS))
    return pd.DataFrame(data, index=index, columns=list(FRAME_COLUMNS)).sort_index()


def _check_period(period: int, name: str = "period") -> None:
    if period < 1:
        raise ValueError(f"{name} must be at least 1 (got {period})")


def _seeded_ewm(values: pd.Series, period: int, alpha: float) -> pd.Series:
    """Recursive smoothing seeded with the mean of the first ``period`` non-missing values."""
    _check_period(period)
    out = pd.Series(np.nan, index=values.index, dtype="float64")
    valid = values.notna().to_numpy()
    if not valid.any():
        return out
    first = int(np.argmax(valid))
    seed_at = first + period - 1
    if seed_at >= len(values):
        return out
    tail = values.iloc[seed_at:].astype("float64").copy()
    tail.iloc[0] = values.iloc[first : seed_at + 1].mean()
    out.iloc[seed_at:] = tail.ewm(alpha=alpha, adjust=False).mean().to_numpy()
    return out


def sma(values: pd.Series, window: int) -> pd.Series:
    """Simple moving average; NaN until ``window`` values are available."""
    _check_period(window, "window")
    return values.rolling(window, min_periods=window).mean()


def ema(values: pd.Series, period: int) -> pd.Series:
    """Exponential moving average (alpha 2/(period+1)), seeded with the first SMA."""
    return _seeded_ewm(values, period, 2.0 / (period + 1))


def rsi(close: pd.Series, period: int = 14) -> pd.Series:
    """Wilder's relative strength index in [0, 100]; 100 with no losses, 50 with no moves."""
    delta = close.diff()
    avg_gain = _seeded_ewm(delta.clip(lower=0), period, 1.0 / period)
    avg_loss = _seeded_ewm((-delta).clip(lower=0), period, 1.0 / period)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    value = value.mask(avg_loss == 0, 100.0)
    return value.mask((avg_loss == 0) & (avg_gain == 0), 50.0)


def macd(close: pd.Series, fast: int = 12, slow: int = 26, signal: int = 9) -> pd.DataFrame:
    """MACD line (EMA fast - EMA slow), its signal line (EMA of the line) and the histogram."""
    if fast >= slow:
        raise ValueError(f"fast period ({fast}) must be shorter than slow period ({slow})")
    line = ema(close, fast) - ema(close, slow)
    signal_line = ema(line, signal)
    return pd.DataFrame({"macd": line, "signal": signal_line, "hist": line - signal_line})


def bollinger(close: pd.Series, window: int = 20, k: float = 2.0) -> pd.DataFrame:
    """Bollinger bands: SMA mid, mid +/- k population std, and %b = (close-lower)/(upper-lower)."""
    mid = sma(close, window)
    spread = k * close.rolling(window, min_periods=window).std(ddof=0)
    upper, lower = mid + spread, mid - spread
    width = upper - lower
    pct_b = ((close - lower) / width).where(width > 0)
    return pd.DataFrame({"mid": mid, "upper": upper, "lower": lower, "pct_b": pct_b})


def true_range(frame: pd.DataFrame) -> pd.Series:
    """max(high-low, |high-prev close|, |low-prev close|); NaN on the first bar."""
    prev_close = frame["close"].shift(1)
    ranges = pd.concat(
        [
            frame["high"] - frame["low"],
            (frame["high"] - prev_close).abs(),
            (frame["low"] - prev_close).abs(),
        ],
        axis=1,
    )
    return ranges.max(axis=1).where(prev_close.notna())


def atr(frame: pd.DataFrame, period: int = 14) -> pd.Series:
    """Wilder's average true range."""
    return _seeded_ewm(true_range(frame), period, 1.0 / period)


def simple_returns(close: pd.Series, periods: int = 1) -> pd.Series:
    """close / close ``periods`` bars earlier - 1."""
    _check_period(periods, "periods")
    return close / close.shift(periods) - 1.0


def log_returns(close: pd.Series, periods: int = 1) -> pd.Series:
    """ln(close / close ``periods`` bars earlier)."""
    _check_period(periods, "periods")
    return np.log(close / close.shift(periods))


def realized_volatility(
    close: pd.Series, window: int = 24, periods_per_year: float | None = None
) -> pd.Series:
    """Rolling sample std of 1-bar log returns; times sqrt(periods_per_year) when given."""
    _check_period(window, "window")
    vol = log_returns(close).rolling(window, min_periods=window).std(ddof=1)
    return vol * math.sqrt(periods_per_year) if periods_per_year else vol


def bars_per_year(index: pd.DatetimeIndex) -> float | None:
    """Bars in a 365-day year at the index's median spacing (crypto trades around the clock)."""
    if len(index) < 2:
        return None
    step = pd.Series(index).diff().median()
    return timedelta(days=365) / step if step > pd.Timedelta(0) else None


def indicator_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Every indicator the summary uses, one column each, aligned with ``frame``'s rows."""
    close = frame["close"]
    per_year = bars_per_year(frame.index) if isinstance(frame.index, pd.DatetimeIndex) else None
    out = pd.DataFrame(index=frame.index)
    out["close"] = close
    out["return_1"] = simple_returns(close, 1)
    out["return_24"] = simple_returns(close, 24)
    out["rsi_14"] = rsi(close, 14)
    out = out.join(macd(close).rename(columns={"signal": "macd_signal", "hist": "macd_hist"}))
    out["bollinger_pct_b"] = bollinger(close)["pct_b"]
    out["atr_14"] = atr(frame, 14)
    out["volatility_24"] = realized_volatility(close, 24)
    out["volatility_annualised"] = (
        out["volatility_24"] * math.sqrt(per_year) if per_year else np.nan
    )
    out["sma_20"] = sma(close, 20)
    out["sma_50"] = sma(close, 50)
    return out


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
        """One compact line for a prompt: 'close=... ret1=+0.12% ... trend=up'."""
        parts = [f"bars={self.bars}"]
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
            parts.append(f"{label}={fmt.format(value) if value is not None else 'n/a'}")
        parts.append(f"trend={self.trend or 'n/a'}")
        return " ".join(parts)


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


def summary_from_indicators(indicators: pd.DataFrame) -> IndicatorSummary:
    """The summary of the last row of an :func:`indicator_frame` (slice it to go back in time)."""
    if indicators.empty:
        return IndicatorSummary()
    last = indicators.iloc[-1]
    values = {name: _finite(last[name]) for name in indicators.columns if name != "close"}
    close = _finite(last["close"])
    stamp = indicators.index[-1]
    return IndicatorSummary(
        as_of=stamp.to_pydatetime() if isinstance(stamp, pd.Timestamp) else None,
        bars=len(indicators),
        last_close=close,
        trend=_trend(close, values["sma_20"], values["sma_50"]),
        **values,
    )


def summarize(frame: pd.DataFrame) -> IndicatorSummary:
    """Latest indicator values of a candle frame (see :class:`IndicatorSummary`)."""
    return summary_from_indicators(indicator_frame(frame))

"""Scores of an equity curve, a trade log and the desk's decisions: pure numpy/pandas.

Conventions (the report and docs/EVALUATION.md repeat them):
- returns are simple per-bar returns of the equity curve; Sharpe and Sortino are annualised
  with the number of bars in a year of a market that trades 24/7 (365 days), at a 0% risk-free
  rate; Sharpe uses the sample standard deviation, Sortino the root mean square of the
  negative returns (target 0) over all bars;
- max drawdown is the largest fall from a running peak, as a positive fraction;
- undefined scores (no variance, no trades) are None, never a made-up 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import pandas as pd

YEAR = timedelta(days=365)


def periods_per_year(interval: timedelta) -> float:
    """How many bars of ``interval`` make a (365-day, 24/7) year."""
    if interval <= timedelta(0):
        raise ValueError("bar interval must be positive")
    return YEAR / interval


def simple_returns(equity: pd.Series | np.ndarray) -> np.ndarray:
    """Per-step returns of an equity curve (one fewer than the points)."""
    values = np.asarray(equity, dtype="float64")
    if len(values) < 2:
        return np.empty(0)
    return values[1:] / values[:-1] - 1.0


def cumulative_return(equity: pd.Series | np.ndarray) -> float:
    """Last over first value, minus one."""
    values = np.asarray(equity, dtype="float64")
    if len(values) == 0:
        raise ValueError("an empty equity curve has no return")
    return float(values[-1] / values[0] - 1.0)


def sharpe_ratio(returns: Sequence[float] | np.ndarray, periods: float) -> float | None:
    """Annualised Sharpe ratio (mean over sample std, times sqrt(periods)); None when flat."""
    values = np.asarray(returns, dtype="float64")
    if len(values) < 2:
        return None
    std = float(np.std(values, ddof=1))
    if std == 0 or not math.isfinite(std):
        return None
    return float(np.mean(values) / std * math.sqrt(periods))


def sortino_ratio(returns: Sequence[float] | np.ndarray, periods: float) -> float | None:
    """Annualised Sortino ratio: mean over downside deviation (target 0); None when no loss."""
    values = np.asarray(returns, dtype="float64")
    if len(values) < 2:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(values, 0.0) ** 2)))
    if downside == 0:
        return None
    return float(np.mean(values) / downside * math.sqrt(periods))


def drawdowns(equity: pd.Series | np.ndarray) -> np.ndarray:
    """Fall from the running peak at each point, as a positive fraction (0 at a new peak)."""
    values = np.asarray(equity, dtype="float64")
    if len(values) == 0:
        return np.empty(0)
    peaks = np.maximum.accumulate(values)
    return 1.0 - values / peaks


def max_drawdown(equity: pd.Series | np.ndarray) -> float:
    """The largest fall from a running peak (0.25 = a 25% drawdown)."""
    falls = drawdowns(equity)
    return float(falls.max()) if len(falls) else 0.0


def win_rate(trade_pnls: Sequence[float] | np.ndarray) -> float | None:
    """Share of closed trades with a positive net P&L; None without closed trades."""
    values = np.asarray(trade_pnls, dtype="float64")
    if len(values) == 0:
        return None
    return float(np.mean(values > 0))


def exposure(position: Sequence[float] | np.ndarray) -> float:
    """Share of the curve's points at which a position was held (time in the market)."""
    values = np.asarray(position, dtype="float64")
    if len(values) == 0:
        return 0.0
    return float(np.mean(values != 0))


def directional_accuracy(
    actions: Sequence[str], forward_returns: Sequence[float | None]
) -> tuple[float | None, int]:
    """Share of BUY/SELL decisions whose next-horizon return went their way.

    A BUY is right when the return is positive, a SELL when it is negative; a flat return
    is wrong for both. HOLDs and decisions without a known forward return are not scored.
    Returns (accuracy or None, how many decisions were scored).
    """
    if len(actions) != len(forward_returns):
        raise ValueError("one forward return per decision is needed")
    right = scored = 0
    for action, forward in zip(actions, forward_returns, strict=True):
        if action not in ("BUY", "SELL") or forward is None or not math.isfinite(forward):
            continue
        scored += 1
        right += (forward > 0) if action == "BUY" else (forward < 0)
    return (right / scored if scored else None), scored


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float | None:
    """The q-th percentile (linear interpolation); None for no values."""
    array = np.asarray(values, dtype="float64")
    if len(array) == 0:
        return None
    return float(np.percentile(array, q))


def share(numerator: int, denominator: int) -> float | None:
    """numerator / denominator, None when there is nothing to divide."""
    return numerator / denominator if denominator else None


def performance(
    equity: pd.Series | np.ndarray,
    position: Sequence[float] | np.ndarray,
    trade_pnls: Sequence[float] | np.ndarray,
    interval: timedelta,
) -> dict[str, float | None]:
    """The return and risk scores every strategy (desk and baselines) is reported with."""
    returns = simple_returns(equity)
    periods = periods_per_year(interval)
    return {
        "cumulative_return": cumulative_return(equity),
        "sharpe": sharpe_ratio(returns, periods),
        "sortino": sortino_ratio(returns, periods),
        "max_drawdown": max_drawdown(equity),
        "win_rate": win_rate(trade_pnls),
        "exposure": exposure(position),
    }

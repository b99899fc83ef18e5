"""Rule baselines the desk is scored against: buy-and-hold and an SMA crossover.

Vectorised over a whole close series (numpy): millions of bars per second, so the eval
harness can run them beside every replay. They are analytical curves in float64 (not the
Decimal books of the paper broker): a position is all-in (1) or all-out (0) of one symbol.

No look-ahead: the position held from bar t to bar t+1 is decided at bar t's close, from
closes up to and including t. Trading costs (``cost_bps``: fee plus slippage) are paid on the
value traded whenever the position changes, including the first entry.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
BPS = 10_000.0


def _closes(close: npt.ArrayLike) -> FloatArray:
    values = np.asarray(close, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError("close must be a non-empty 1-D series of prices")
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError("close prices must be finite and greater than 0")
    return values


def _check_costs(starting_cash: float, cost_bps: float) -> None:
    if not (np.isfinite(starting_cash) and starting_cash > 0):
        raise ValueError(f"starting_cash must be greater than 0 (got {starting_cash})")
    if not (np.isfinite(cost_bps) and 0 <= cost_bps < BPS):
        raise ValueError(f"cost_bps must be in [0, 10000) (got {cost_bps})")


def simple_moving_average(close: npt.ArrayLike, window: int) -> FloatArray:
    """Mean of the last ``window`` closes at each bar (NaN before ``window`` bars)."""
    if window < 1:
        raise ValueError(f"window must be at least 1 (got {window})")
    values = _closes(close)
    out = np.full(len(values), np.nan)
    if len(values) < window:
        return out
    sums = np.cumsum(np.concatenate(([0.0], values)))
    out[window - 1 :] = (sums[window:] - sums[:-window]) / window
    return out


def sma_crossover_positions(close: npt.ArrayLike, fast: int = 20, slow: int = 50) -> FloatArray:
    """1.0 while the fast SMA is above the slow one (at that bar's close), else 0.0."""
    if not 1 <= fast < slow:
        raise ValueError(f"need 1 <= fast < slow (got fast={fast}, slow={slow})")
    fast_sma = simple_moving_average(close, fast)
    slow_sma = simple_moving_average(close, slow)
    with np.errstate(invalid="ignore"):
        return (fast_sma > slow_sma).astype(np.float64)  # NaN compares False: flat


def equity_from_positions(
    close: npt.ArrayLike,
    positions: npt.ArrayLike,
    starting_cash: float = 10_000.0,
    cost_bps: float = 10.0,
) -> FloatArray:
    """Equity at each bar's close of holding ``positions[t]`` (0..1) from bar t to t+1.

    Costs of ``cost_bps`` of the traded value are paid at the close where a position changes.
    """
    values = _closes(close)
    held = np.asarray(positions, dtype=np.float64)
    if held.shape != values.shape:
        raise ValueError("positions must have one value per close")
    _check_costs(starting_cash, cost_bps)
    growth = np.ones(len(values))
    growth[1:] = 1.0 + held[:-1] * (values[1:] / values[:-1] - 1.0)
    traded = np.abs(np.diff(held, prepend=0.0))
    growth *= 1.0 - traded * (cost_bps / BPS)
    # numpy's stubs widen python float * float64 array to floating[Any]; it is float64.
    return cast(FloatArray, starting_cash * np.cumprod(growth))


def buy_and_hold_equity(
    close: npt.ArrayLike, starting_cash: float = 10_000.0, cost_bps: float = 10.0
) -> FloatArray:
    """Equity of buying everything at the first close and holding to the end."""
    values = _closes(close)
    _check_costs(starting_cash, cost_bps)
    return starting_cash * (1.0 - cost_bps / BPS) * values / values[0]


def sma_crossover_equity(
    close: npt.ArrayLike,
    fast: int = 20,
    slow: int = 50,
    starting_cash: float = 10_000.0,
    cost_bps: float = 10.0,
) -> FloatArray:
    """Equity of the SMA crossover rule: long while SMA(fast) > SMA(slow), else in cash."""
    return equity_from_positions(
        close, sma_crossover_positions(close, fast, slow), starting_cash, cost_bps
    )


def baseline_curves(
    frame: pd.DataFrame,
    starting_cash: float = 10_000.0,
    cost_bps: float = 10.0,
    fast: int = 20,
    slow: int = 50,
) -> pd.DataFrame:
    """Both baselines' equity over a candle frame (``close`` column), indexed like it."""
    close = frame["close"].to_numpy(dtype=np.float64)
    return pd.DataFrame(
        {
            "buy_and_hold": buy_and_hold_equity(close, starting_cash, cost_bps),
            f"sma_{fast}_{slow}": sma_crossover_equity(close, fast, slow, starting_cash, cost_bps),
        },
        index=frame.index,
    )


# --- extensions for the eval harness: RSI mean reversion, a decision cadence, windows --------


def _forward_fill(signal: FloatArray) -> FloatArray:
    """Each NaN replaced by the last value before it (0.0 before the first value)."""
    seen = np.where(np.isnan(signal), -1, np.arange(len(signal)))
    last = np.maximum.accumulate(seen)
    return np.where(last >= 0, signal[np.maximum(last, 0)], 0.0)


def rsi_mean_reversion_positions(
    close: npt.ArrayLike, period: int = 14, oversold: float = 30.0, overbought: float = 70.0
) -> FloatArray:
    """1.0 from a close with RSI below ``oversold`` until one above ``overbought``, else 0.0.

    RSI is Wilder's (the desk's own indicator, :func:`tradecast.market.indicators.rsi`).
    """
    from tradecast.market.indicators import rsi

    if not 0 < oversold < overbought < 100:
        raise ValueError(f"need 0 < oversold < overbought < 100 (got {oversold}, {overbought})")
    values = _closes(close)
    strength = rsi(pd.Series(values), period).to_numpy(dtype=np.float64)
    signal = np.where(strength < oversold, 1.0, np.where(strength > overbought, 0.0, np.nan))
    return _forward_fill(signal)


def at_decisions(positions: npt.ArrayLike, decide: npt.ArrayLike) -> FloatArray:
    """``positions`` as a strategy that may only trade at the bars where ``decide`` is True
    holds them: the value of the last decision bar, flat before the first."""
    held = np.asarray(positions, dtype=np.float64)
    mask = np.asarray(decide, dtype=bool)
    if mask.shape != held.shape:
        raise ValueError("decide must have one flag per position")
    return _forward_fill(np.where(mask, held, np.nan))


def closed_trade_returns(
    close: npt.ArrayLike, positions: npt.ArrayLike, cost_bps: float = 10.0
) -> FloatArray:
    """Net return of every closed all-in trade (entry and exit costs included), in order."""
    values = _closes(close)
    held = np.asarray(positions, dtype=np.float64)
    change = np.diff(held, prepend=0.0)
    entries = np.flatnonzero(change > 0)
    exits = np.flatnonzero(change < 0)
    entries = entries[: len(exits)]  # a trade still open at the end is not closed
    keep = (1.0 - cost_bps / BPS) ** 2
    return keep * values[exits] / values[entries] - 1.0


def window_baselines(
    close: pd.Series,
    window: pd.DatetimeIndex,
    decisions: pd.DatetimeIndex,
    starting_cash: float = 10_000.0,
    cost_bps: float = 10.0,
    fast: int = 20,
    slow: int = 50,
    rsi_period: int = 14,
) -> dict[str, dict[str, FloatArray]]:
    """Every baseline over the instants ``window`` (a slice of ``close``'s index), trading
    only at ``decisions`` (the desk's cadence: each maps to the last instant at or before it).

    Signals are computed on all of ``close`` up to each instant, so the rules are warmed up
    by the history before the window and never see after it. Returns, per baseline, its
    ``equity``, ``positions`` and ``trade_returns`` over the window.
    """
    history = close.loc[: window[-1]]
    prices = history.loc[window[0] :].to_numpy(dtype=np.float64)
    offset = len(history) - len(prices)
    decide = np.zeros(len(prices), dtype=bool)
    spots = window.searchsorted(decisions, side="right") - 1
    decide[spots[spots >= 0]] = True
    full = history.to_numpy(dtype=np.float64)
    rules = {
        "buy_and_hold": np.ones(len(prices)),
        f"sma_crossover_{fast}_{slow}": sma_crossover_positions(full, fast, slow)[offset:],
        f"rsi_mean_reversion_{rsi_period}": rsi_mean_reversion_positions(full, rsi_period)[offset:],
    }
    out: dict[str, dict[str, FloatArray]] = {}
    for name, wanted in rules.items():
        positions = at_decisions(wanted, decide)
        out[name] = {
            "equity": equity_from_positions(prices, positions, starting_cash, cost_bps),
            "positions": positions,
            "trade_returns": closed_trade_returns(prices, positions, cost_bps),
        }
    return out

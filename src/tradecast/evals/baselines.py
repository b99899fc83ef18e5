"""Rule baselines the desk is scored against: buy-and-hold and an SMA crossover.

Vectorised over a whole close series (numpy): millions of bars per second, so the eval
harness can run them beside every replay. They are analytical curves in float64 (not the
Decimal books of the paper broker): a position is all-in (1) or all-out (0) of one symbol.

No look-ahead: the position held from bar t to bar t+1 is decided at bar t's close, from
closes up to and including t. Trading costs (``cost_bps``: fee plus slippage) are paid on the
value traded whenever the position changes, including the first entry.
"""

from __future__ import annotations

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
    out[window - 1:] = (sums[window:] - sums[:-window]) / window
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
    return starting_cash * np.cumprod(growth)


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
            f"sma_{fast}_{slow}": sma_crossover_equity(close, fast, slow, starting_cash,
                                                       cost_bps),
        },
        index=frame.index,
    )

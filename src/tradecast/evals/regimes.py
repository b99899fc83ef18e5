"""The desk's scores within each market regime (the labels: :mod:`tradecast.market.regimes`)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tradecast.evals.metrics import sharpe_ratio
from tradecast.market.regimes import REGIMES, FloatArray, label_regimes, positive

__all__ = ["REGIMES", "label_regimes", "split_by_regime"]

Score = float | int | str | None


def _as_series(values: npt.ArrayLike, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or len(array) == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of per-bar returns")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _scores(desk: FloatArray, benchmark: FloatArray, bars_per_year: float) -> dict[str, Score]:
    desk_return = float(np.prod(1.0 + desk) - 1.0)
    benchmark_return = float(np.prod(1.0 + benchmark) - 1.0)
    outcome = "even"
    if desk_return != benchmark_return:
        outcome = "helped" if desk_return > benchmark_return else "hurt"
    return {
        "bars": len(desk),
        "desk_return": desk_return,
        "benchmark_return": benchmark_return,
        "desk_sharpe": sharpe_ratio(desk, bars_per_year),
        "benchmark_sharpe": sharpe_ratio(benchmark, bars_per_year),
        "excess_mean_return": float(np.mean(desk - benchmark)),
        "outcome": outcome,
    }


def split_by_regime(
    desk_returns: npt.ArrayLike,
    benchmark_returns: npt.ArrayLike,
    labels: npt.ArrayLike,
    bars_per_year: float,
) -> dict[str, dict[str, Score]]:
    """The desk's and the benchmark's scores over the bars of each regime.

    ``labels[i]`` must be the regime of return i: the label known when the return's holding
    period began (for returns of the bars after each close, ``label_regimes(...)[:-1]``).

    Args:
        desk_returns: the desk's simple per-bar returns.
        benchmark_returns: the benchmark's (e.g. buy and hold), aligned with the desk's.
        labels: one label from ``REGIMES`` per return.
        bars_per_year: bars in a 365-day year, for the annualised Sharpe ratios.

    Returns:
        For each regime present, in ``REGIMES`` order: ``bars``, ``desk_return`` and
        ``benchmark_return`` (compounded over the regime's bars), ``desk_sharpe`` and
        ``benchmark_sharpe`` (annualised; None when undefined), ``excess_mean_return``
        (mean per-bar desk − benchmark) and ``outcome``: ``helped`` when the desk's
        compounded return beat the benchmark's, ``hurt`` when it fell short, else ``even``.

    Raises:
        ValueError: on empty or non-finite returns, different lengths or unknown labels.
    """
    desk = _as_series(desk_returns, "desk_returns")
    benchmark = _as_series(benchmark_returns, "benchmark_returns")
    names = np.asarray(labels, dtype=str)
    if not len(desk) == len(benchmark) == len(names):
        raise ValueError(
            f"one label and one benchmark return per desk return are needed (got "
            f"{len(desk)} desk, {len(benchmark)} benchmark returns, {len(names)} labels)"
        )
    unknown = sorted(set(names.tolist()) - set(REGIMES))
    if unknown:
        raise ValueError(f"unknown regime labels: {unknown}; expected one of {REGIMES}")
    positive("bars_per_year", bars_per_year)
    return {
        regime: _scores(desk[names == regime], benchmark[names == regime], bars_per_year)
        for regime in REGIMES
        if np.any(names == regime)
    }

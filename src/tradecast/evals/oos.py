"""Out-of-sample statistics of a walk-forward: the test windows chained into one series per
configuration, with intervals, tests against the baselines and between configurations, the
deflated Sharpe ratio, the probability of backtest overfitting and the regime split."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from tradecast.evals import metrics, stats
from tradecast.evals.regimes import label_regimes, split_by_regime

BENCHMARK = "buy_and_hold"


def chained_returns(windows: Sequence[Any]) -> pd.DataFrame:
    """Per-bar returns of the desk and every baseline over the test windows, in time order.

    Each window starts from fresh cash, so returns are taken within a window only; the bars
    between two windows (if any) are not part of the out-of-sample series.
    """
    parts = []
    for window in sorted(windows, key=lambda w: w.window):
        equity = pd.DataFrame(window.equity, index=pd.DatetimeIndex(window.times))
        parts.append(equity.pct_change().iloc[1:])
    if not parts:
        raise ValueError("no test window finished")
    frame = pd.concat(parts)
    return frame[~frame.index.duplicated(keep="first")]


def equity_from(returns: pd.Series | np.ndarray) -> np.ndarray:
    """A curve starting at 1 from per-bar returns."""
    return np.concatenate([[1.0], np.cumprod(1.0 + np.asarray(returns, dtype="float64"))])


STATISTICS: tuple[Literal["cumulative_return", "sharpe", "max_drawdown"], ...] = (
    "cumulative_return",
    "sharpe",
    "max_drawdown",
)


def performance_intervals(
    returns: np.ndarray, periods: float, *, draws: int, seed: int
) -> dict[str, dict[str, float | None]]:
    """Return, Sharpe and drawdown of ``returns`` with 95% block-bootstrap intervals; all
    None for a statistic that is undefined (the Sharpe ratio of a desk that never traded)."""
    out: dict[str, dict[str, float | None]] = {}
    for name in STATISTICS:
        if len(returns) < 2:
            out[name] = {"estimate": None, "low": None, "high": None}
            continue
        try:
            interval = stats.bootstrap_ci(
                returns,
                name,
                bars_per_year=periods,
                draws=draws,
                seed=seed,
            )
        except ValueError as exc:
            if "undefined" not in str(exc):
                raise
            out[name] = {"estimate": None, "low": None, "high": None}
            continue
        out[name] = {"estimate": interval.estimate, "low": interval.low, "high": interval.high}
    return out


def paired_test(
    a: np.ndarray, b: np.ndarray, periods: float, *, draws: int, seed: int
) -> dict[str, Any]:
    """A one-sided paired block-bootstrap test that ``a`` earns more per bar than ``b``,
    with the difference's interval, annualised, and the cumulative returns' difference
    (every figure None with fewer than 2 bars)."""
    if len(a) < 2:
        keys = ("mean_difference", "low", "high", "p_value", "p_value_two_sided")
        return dict.fromkeys(
            (
                *keys,
                "annualised_mean_difference",
                "annualised_low",
                "annualised_high",
                "cumulative_return_difference",
            )
        )
    test = stats.paired_bootstrap_test(a, b, draws=draws, seed=seed)
    return {
        "mean_difference": test.difference,
        "low": test.interval.low,
        "high": test.interval.high,
        "p_value": test.p_value,
        "p_value_two_sided": test.p_value_two_sided,
        "annualised_mean_difference": test.difference * periods,
        "annualised_low": test.interval.low * periods,
        "annualised_high": test.interval.high * periods,
        "cumulative_return_difference": float(equity_from(a)[-1] - equity_from(b)[-1]),
    }


def deflated_sharpe(returns: np.ndarray, trials: int) -> float | None:
    """The deflated Sharpe ratio of ``returns`` given ``trials`` configurations tried (None
    when the returns do not vary)."""
    if len(returns) < 3 or float(np.std(returns)) == 0:
        return None
    return stats.deflated_sharpe_ratio(returns, trials=trials).dsr


def summarize(
    frame: pd.DataFrame, periods: float, *, draws: int, seed: int, trials: int
) -> dict[str, Any]:
    """One configuration: return, Sharpe and drawdown with block-bootstrap intervals, a
    paired test against every baseline, and its deflated Sharpe ratio given ``trials``."""
    desk = frame["desk"].to_numpy()
    versus = {
        name: paired_test(desk, frame[name].to_numpy(), periods, draws=draws, seed=seed)
        for name in frame.columns
        if name != "desk"
    }
    return {
        **performance_intervals(desk, periods, draws=draws, seed=seed),
        "bars": len(desk),
        "versus": versus,
        "deflated_sharpe": deflated_sharpe(desk, trials),
    }


def baseline_performance(
    frame: pd.DataFrame, periods: float, *, draws: int, seed: int
) -> dict[str, dict[str, Any]]:
    """Every baseline's return, Sharpe and drawdown with intervals over the same chained
    out-of-sample bars as the desk (the frame of one configuration)."""
    return {
        name: {
            **performance_intervals(frame[name].to_numpy(), periods, draws=draws, seed=seed),
            "bars": len(frame),
        }
        for name in frame.columns
        if name != "desk"
    }


def contributions(
    frames: Mapping[str, pd.DataFrame], periods: float, *, draws: int, seed: int
) -> list[dict[str, Any]]:
    """What each left-out component earns: the full desk minus the ablation, per bar, on
    their common bars; positive means the component helps."""
    if "full" not in frames:
        return []
    full = frames["full"]["desk"]
    rows = []
    for name, frame in frames.items():
        if name == "full":
            continue
        common = full.index.intersection(frame.index)
        a, b = full.loc[common].to_numpy(), frame["desk"].loc[common].to_numpy()
        if len(common) < 3:
            continue
        row = {"component": _component(name), "ablation": name, "bars": len(common)}
        row |= paired_test(a, b, periods, draws=draws, seed=seed)
        row["sharpe_full"] = metrics.sharpe_ratio(a, periods)
        row["sharpe_without"] = metrics.sharpe_ratio(b, periods)
        rows.append(row)
    return rows


_COMPONENTS = {
    "rules_only": "LLM agents and memory",
    "no_memory": "memory",
    "no_news": "news",
    "fixed_weights": "adaptive weights",
    "sizing_volatility": "the sizing method (against volatility targeting)",
    "sizing_kelly": "the sizing method (against fractional Kelly)",
    "sizing_fixed": "the sizing method (against fixed sizing)",
    "exits_trader": "ATR exits (against the trader's)",
}


def _component(ablation: str) -> str:
    return _COMPONENTS.get(ablation, f"{ablation.removeprefix('no_')} agent")


def overfitting(frames: Mapping[str, pd.DataFrame], splits: int = 16) -> dict[str, Any] | None:
    """PBO by combinatorially symmetric cross-validation over the configurations' bars (None
    with fewer than two configurations or too few bars)."""
    if len(frames) < 2:
        return None
    matrix = pd.concat({name: f["desk"] for name, f in frames.items()}, axis=1).dropna()
    # identical columns (desks that never traded) tie every rank and read as overfitting
    matrix = matrix.T.drop_duplicates().T
    if matrix.shape[1] < 2:
        return None
    splits = min(splits, (len(matrix) // 4) // 2 * 2)
    if splits < 2:
        return None
    result = stats.probability_of_backtest_overfitting(matrix.to_numpy(), splits=splits)
    return {"pbo": result.pbo, "splits": splits, "combinations": result.combinations}


def regime_split(
    closes: pd.Series, frame: pd.DataFrame, periods: float, bars_per_day: float
) -> dict[str, Any]:
    """The desk against buy-and-hold in each market regime, labelled from the bars known at
    each bar's start (``closes`` indexed by close time)."""
    labels = pd.Series(
        label_regimes(closes.to_numpy(), bars_per_day=bars_per_day), index=closes.index
    )
    # a return over the bar closing at t is decided by what was known at the previous close
    known = labels.shift(1).reindex(frame.index).fillna("unknown").to_numpy()
    return split_by_regime(
        frame["desk"].to_numpy(), frame[BENCHMARK].to_numpy(), known, bars_per_year=periods
    )

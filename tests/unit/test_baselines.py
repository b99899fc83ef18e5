"""The vectorised rule baselines against a plain loop, on the bundled real BTC/USDT closes."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from tradecast.evals.baselines import (
    baseline_curves,
    buy_and_hold_equity,
    simple_moving_average,
    sma_crossover_equity,
    sma_crossover_positions,
)
from tradecast.market.replay import ReplayMarket


@cache
def btc() -> pd.DataFrame:
    return ReplayMarket().frame("BTC/USDT")


def crossover_by_loop(close: list[float], fast: int, slow: int, cash: float, bps: float) -> list:
    """The rule written the slow, obvious way: one bar at a time."""
    equity, units, in_market, out = cash, 0.0, False, []
    for t, price in enumerate(close):
        value = units * price if in_market else equity
        want = (
            t >= slow - 1
            and sum(close[t - fast + 1 : t + 1]) / fast > sum(close[t - slow + 1 : t + 1]) / slow
        )
        if want != in_market:
            value *= 1 - bps / 10_000
            in_market = want
            units = value / price
        equity = value
        out.append(value)
    return out


def test_baseline_sma_crossover_matches_a_bar_by_bar_loop() -> None:
    close = btc()["close"].to_numpy()[:1500]
    expected = crossover_by_loop(list(close), 10, 30, 10_000.0, 10.0)
    got = sma_crossover_equity(close, 10, 30, 10_000.0, 10.0)
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert sma_crossover_positions(close, 10, 30).sum() > 100  # it does trade


def test_baseline_never_looks_ahead() -> None:
    close = btc()["close"].to_numpy()[:2000].copy()
    before = sma_crossover_equity(close)
    close[1000:] *= 3.0  # rewrite the future
    after = sma_crossover_equity(close)
    np.testing.assert_array_equal(before[:1000], after[:1000])


def test_baseline_buy_and_hold_pays_the_entry_cost_once() -> None:
    close = btc()["close"].to_numpy()
    equity = buy_and_hold_equity(close, 1000.0, 10.0)
    assert equity[0] == pytest.approx(999.0)
    assert equity[-1] == pytest.approx(999.0 * close[-1] / close[0])


def test_baseline_sma_is_the_rolling_mean() -> None:
    close = btc()["close"]
    np.testing.assert_allclose(
        simple_moving_average(close, 20),
        close.rolling(20).mean().to_numpy(),
        rtol=1e-9,
        equal_nan=True,
    )


def test_baseline_curves_frame_is_indexed_like_the_candles() -> None:
    curves = baseline_curves(btc())
    assert list(curves.columns) == ["buy_and_hold", "sma_20_50"]
    assert curves.index.equals(btc().index)
    assert curves.notna().all().all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"close": []}, "non-empty"),
        ({"close": [1.0, float("nan")]}, "finite"),
        ({"close": [1.0, 0.0]}, "greater than 0"),
        ({"close": [1.0, 2.0], "fast": 5, "slow": 5}, "fast < slow"),
        ({"close": [1.0, 2.0], "cost_bps": -1.0}, "cost_bps"),
        ({"close": [1.0, 2.0], "starting_cash": 0.0}, "starting_cash"),
    ],
)
def test_baseline_refuses_bad_input(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sma_crossover_equity(**kwargs)

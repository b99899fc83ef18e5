"""Eval scores against series worked out by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest

from tradecast.evals import metrics


def test_periods_per_year_for_a_market_that_never_closes():
    assert metrics.periods_per_year(timedelta(hours=1)) == 8760
    assert metrics.periods_per_year(timedelta(days=1)) == 365
    assert metrics.periods_per_year(timedelta(minutes=15)) == 35040
    with pytest.raises(ValueError):
        metrics.periods_per_year(timedelta(0))


def test_returns_and_cumulative_return():
    equity = [100.0, 110.0, 99.0]
    # 110/100 - 1 = 0.1; 99/110 - 1 = -0.1; 99/100 - 1 = -0.01
    np.testing.assert_allclose(metrics.simple_returns(equity), [0.1, -0.1])
    assert metrics.cumulative_return(equity) == pytest.approx(-0.01)
    assert len(metrics.simple_returns([100.0])) == 0


def test_sharpe_by_hand():
    returns = [0.1, -0.1, 0.2]
    # mean 0.0666667; deviations 0.0333, -0.1667, 0.1333; squares 0.001111, 0.027778,
    # 0.017778; sum 0.046667 / (n-1=2) = 0.023333; std 0.152753; 0.0666667/0.152753 =
    # 0.436436 per period; times sqrt(4 periods a year) = 0.872872
    assert metrics.sharpe_ratio(returns, 4) == pytest.approx(0.872872, abs=1e-6)


def test_sortino_by_hand():
    returns = [0.1, -0.1, 0.2]
    # downside: min(r, 0) = 0, -0.1, 0; squares 0, 0.01, 0; mean 0.0033333; sqrt 0.0577350;
    # 0.0666667 / 0.0577350 = 1.154701; times sqrt(4) = 2.309401
    assert metrics.sortino_ratio(returns, 4) == pytest.approx(2.309401, abs=1e-6)


def test_undefined_ratios_are_none_not_zero():
    assert metrics.sharpe_ratio([0.01, 0.01, 0.01], 8760) is None  # no variance
    assert metrics.sharpe_ratio([0.01], 8760) is None
    assert metrics.sortino_ratio([0.01, 0.02, 0.0], 8760) is None  # no loss
    assert metrics.win_rate([]) is None
    assert metrics.percentile([], 50) is None
    assert metrics.share(1, 0) is None


def test_drawdowns_and_max_drawdown_by_hand():
    equity = [100.0, 120.0, 90.0, 130.0, 65.0]
    # peaks 100, 120, 120, 130, 130 -> falls 0, 0, 30/120 = 0.25, 0, 65/130 = 0.5
    np.testing.assert_allclose(metrics.drawdowns(equity), [0, 0, 0.25, 0, 0.5])
    assert metrics.max_drawdown(equity) == pytest.approx(0.5)
    assert metrics.max_drawdown([100.0, 101.0, 102.0]) == 0.0


def test_win_rate_counts_only_positive_trades():
    # 10 wins, -5 loses, 0 is not a win, 3 wins: 2 of 4
    assert metrics.win_rate([10.0, -5.0, 0.0, 3.0]) == 0.5


def test_exposure_is_the_share_of_time_in_the_market():
    assert metrics.exposure([0, 0.5, 1.0, 0]) == 0.5
    assert metrics.exposure([]) == 0.0


def test_directional_accuracy_by_hand():
    actions = ["BUY", "SELL", "HOLD", "BUY", "SELL", "BUY"]
    forward = [0.02, 0.01, 0.5, -0.01, None, 0.0]
    # BUY up: right; SELL up: wrong; HOLD: not scored; BUY down: wrong; SELL with no
    # forward return: not scored; BUY flat: wrong -> 1 right of 4 scored
    accuracy, scored = metrics.directional_accuracy(actions, forward)
    assert (accuracy, scored) == (0.25, 4)
    assert metrics.directional_accuracy(["HOLD"], [0.1]) == (None, 0)
    with pytest.raises(ValueError):
        metrics.directional_accuracy(["BUY"], [])


def test_percentiles_interpolate():
    values = [10.0, 20.0, 30.0, 40.0]
    assert metrics.percentile(values, 50) == 25.0
    # rank 0.95 * 3 = 2.85 -> 30 + 0.85 * 10 = 38.5
    assert metrics.percentile(values, 95) == pytest.approx(38.5)


def test_performance_bundles_the_same_functions():
    equity = np.array([100.0, 110.0, 99.0, 120.0])
    scores = metrics.performance(equity, [1, 1, 0, 1], [5.0, -1.0], timedelta(days=1))
    returns = metrics.simple_returns(equity)
    assert scores["cumulative_return"] == pytest.approx(0.2)
    assert scores["sharpe"] == pytest.approx(
        np.mean(returns) / np.std(returns, ddof=1) * math.sqrt(365)
    )
    assert scores["max_drawdown"] == pytest.approx(0.1)
    assert scores["win_rate"] == 0.5
    assert scores["exposure"] == 0.75

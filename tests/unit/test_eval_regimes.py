"""Regime labels on synthetic price paths whose regime is known, and scores per regime."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tradecast.evals import metrics, regimes
from tradecast.market import regimes as market_regimes

HOURLY = 24  # bars per day
DAYS = 90
BARS = HOURLY * DAYS
# Defaults: 30-day trend lookback (720 bars), 7-day volatility window (168 bars) and 30 days
# (720 bars) of earlier volatility readings before the expanding median applies.
WARMUP = max(30 * HOURLY, 7 * HOURLY + 30 * HOURLY)  # 888: the first labelled bar


def _path(log_returns: np.ndarray) -> np.ndarray:
    return 100.0 * np.exp(np.concatenate(([0.0], np.cumsum(log_returns))))[: len(log_returns)]


def _noise(seed: int, sd: float, n: int = BARS) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, sd, n)


def test_rising_falling_and_flat_paths_are_labelled_after_the_warm_up():
    drift = np.full(BARS, 0.001)  # +0.1% an hour: +105% over 30 days
    rising = regimes.label_regimes(_path(drift + _noise(1, 0.002)), HOURLY)
    falling = regimes.label_regimes(_path(-drift + _noise(2, 0.002)), HOURLY)
    flat = regimes.label_regimes(_path(_noise(3, 0.0005)), HOURLY)  # 30-day sd ≈ 1.3%
    for labels, expected in ((rising, "trend_up"), (falling, "trend_down"), (flat, "sideways")):
        assert labels.shape == (BARS,)
        assert set(labels[:WARMUP]) == {"unknown"}
        assert set(labels[WARMUP:]) == {expected}


def test_the_trend_threshold_is_configurable():
    closes = _path(0.0001 + _noise(10, 0.0002))  # +7.5% over 30 days
    assert set(regimes.label_regimes(closes, HOURLY)[WARMUP:]) == {"trend_up"}
    loose = regimes.label_regimes(closes, HOURLY, trend_threshold=0.10)
    assert set(loose[WARMUP:]) == {"sideways"}
    short = regimes.label_regimes(closes, HOURLY, lookback_days=10)  # +2.4%: sideways
    assert set(short[WARMUP:]) == {"sideways"}


def test_a_volatility_burst_is_high_volatility_and_overrides_the_trend():
    returns = _noise(4, 0.0005)
    burst = slice(1500, 1572)  # three days at ten times the volatility, going nowhere
    swings = 0.005 * (-1.0) ** np.arange(72)
    returns[burst] = swings
    labels = regimes.label_regimes(_path(returns), HOURLY)
    assert set(labels[WARMUP:1500]) == {"sideways"}
    assert set(labels[1524:1572]) == {"high_volatility"}
    # the 7-day window forgets the burst a week after it ends
    assert set(labels[1572 + 7 * HOURLY + 24 :]) == {"sideways"}
    rising = _noise(4, 0.0005) + 0.001
    rising[burst] += swings
    labels = regimes.label_regimes(_path(rising), HOURLY)
    assert set(labels[1524:1572]) == {"high_volatility"}
    assert set(labels[WARMUP:1500]) == {"trend_up"}


def test_a_fixed_annualised_volatility_threshold():
    returns = _noise(6, 0.002)  # 0.002 × √8760 ≈ 18.7% a year
    returns[1500:1572] = _noise(7, 0.02, 72)
    closes = _path(returns)
    labels = regimes.label_regimes(closes, HOURLY, vol_threshold=0.5)
    warmup = 30 * HOURLY  # only the trend lookback and the 7-day window are needed
    assert set(labels[:warmup]) == {"unknown"} and "unknown" not in labels[warmup:]
    assert set(labels[1524:1572]) == {"high_volatility"}
    assert "high_volatility" not in labels[warmup:1500]
    vol = market_regimes.trailing_volatility(closes, 7 * HOURLY, HOURLY * 365)
    assert np.all(np.isnan(vol[: 7 * HOURLY]))
    expected = np.std(np.diff(np.log(closes[1000 - 168 : 1001])), ddof=1) * math.sqrt(8760)
    assert vol[1000] == pytest.approx(expected)
    assert vol[1000] == pytest.approx(0.002 * math.sqrt(8760), rel=0.15)


@pytest.mark.parametrize("vol_threshold", [None, 0.3])
def test_changing_future_bars_never_changes_earlier_labels(vol_threshold):
    rng = np.random.default_rng(8)
    closes = _path(rng.normal(0.0, 0.003, BARS))
    labels = regimes.label_regimes(closes, HOURLY, vol_threshold=vol_threshold)
    for k in (WARMUP - 1, WARMUP + 100, 1500, BARS - 2):
        rewritten = closes.copy()
        rewritten[k + 1 :] = closes[k] * np.exp(np.cumsum(rng.normal(0.01, 0.1, BARS - k - 1)))
        again = regimes.label_regimes(rewritten, HOURLY, vol_threshold=vol_threshold)
        np.testing.assert_array_equal(again[: k + 1], labels[: k + 1])
        assert not np.array_equal(again, labels) or k == BARS - 2  # the future did change


def test_labels_of_a_short_series_are_all_unknown():
    labels = regimes.label_regimes([100.0, 101.0, 102.0], HOURLY)
    assert labels.tolist() == ["unknown"] * 3
    assert regimes.label_regimes([100.0], 1).tolist() == ["unknown"]


@pytest.mark.parametrize(
    ("closes", "kwargs", "message"),
    [
        ([], {}, "non-empty"),
        ([[100.0, 101.0]], {}, "1-D"),
        ([100.0, math.nan, 101.0], {}, "finite"),
        ([100.0, 0.0, 101.0], {}, "greater than 0"),
        ([100.0, 101.0], {"bars_per_day": 0.0}, "bars_per_day"),
        ([100.0, 101.0], {"lookback_days": -1.0}, "lookback_days"),
        ([100.0, 101.0], {"vol_window_days": 0.05}, "at least 2"),
        ([100.0, 101.0], {"trend_threshold": -0.1}, "trend_threshold"),
        ([100.0, 101.0], {"vol_ratio": 0.0}, "vol_ratio"),
        ([100.0, 101.0], {"vol_threshold": math.nan}, "vol_threshold"),
    ],
)
def test_bad_label_inputs_are_refused(closes, kwargs, message):
    options = {"bars_per_day": HOURLY, **kwargs}
    with pytest.raises(ValueError, match=message):
        regimes.label_regimes(closes, **options)


def test_split_by_regime_by_hand():
    desk = np.array([0.5, 0.01, -0.02, 0.03, 0.0, 0.01])
    benchmark = np.array([0.0, 0.02, -0.04, 0.01, 0.01, 0.01])
    labels = ["unknown", "trend_up", "trend_down", "trend_up", "sideways", "sideways"]
    result = regimes.split_by_regime(desk, benchmark, labels, bars_per_year=365)
    assert list(result) == ["trend_up", "trend_down", "sideways", "unknown"]  # REGIMES order
    up = result["trend_up"]
    assert up["bars"] == 2
    assert up["desk_return"] == pytest.approx(1.01 * 1.03 - 1)  # 0.0403
    assert up["benchmark_return"] == pytest.approx(1.02 * 1.01 - 1)  # 0.0302
    assert up["desk_sharpe"] == pytest.approx(metrics.sharpe_ratio([0.01, 0.03], 365))
    assert up["excess_mean_return"] == pytest.approx(((0.01 - 0.02) + (0.03 - 0.01)) / 2)
    assert up["outcome"] == "helped"
    down = result["trend_down"]
    assert down["bars"] == 1 and down["desk_sharpe"] is None  # one bar: undefined
    assert down["outcome"] == "helped"  # lost 2% where the benchmark lost 4%
    side = result["sideways"]
    assert side["outcome"] == "hurt" and side["excess_mean_return"] == pytest.approx(-0.005)
    assert side["benchmark_sharpe"] is None  # flat returns
    assert result["unknown"]["bars"] == 1 and result["unknown"]["desk_return"] == 0.5
    even = regimes.split_by_regime([0.01], [0.01], ["sideways"], 365)
    assert even["sideways"]["outcome"] == "even"


def test_split_by_regime_works_on_labelled_paths():
    rng = np.random.default_rng(9)
    closes = _path(np.concatenate([rng.normal(0.001, 0.002, 1200), rng.normal(-0.001, 0.002, 960)]))
    labels = regimes.label_regimes(closes, HOURLY)
    benchmark = closes[1:] / closes[:-1] - 1  # buy and hold
    desk = np.where(labels[:-1] == "trend_up", benchmark, 0.0)  # long only in up-trends
    result = regimes.split_by_regime(desk, benchmark, labels[:-1], HOURLY * 365)
    assert result["trend_down"]["outcome"] == "helped"
    assert result["trend_down"]["desk_return"] == 0.0
    assert result["trend_up"]["outcome"] == "even"
    assert sum(scores["bars"] for scores in result.values()) == len(desk)


@pytest.mark.parametrize(
    ("desk", "benchmark", "labels", "message"),
    [
        ([], [], [], "non-empty"),
        ([0.01, 0.02], [0.01], ["sideways", "sideways"], "one label"),
        ([0.01, 0.02], [0.01, 0.0], ["sideways"], "one label"),
        ([0.01, math.nan], [0.01, 0.0], ["sideways"] * 2, "NaN"),
        ([0.01, 0.02], [0.01, 0.0], ["sideways", "bull"], "unknown regime labels"),
    ],
)
def test_bad_split_inputs_are_refused(desk, benchmark, labels, message):
    with pytest.raises(ValueError, match=message):
        regimes.split_by_regime(desk, benchmark, labels, 365)
    with pytest.raises(ValueError, match="bars_per_year"):
        regimes.split_by_regime([0.01], [0.01], ["sideways"], 0)

"""Skill-or-luck statistics on synthetic returns whose truth is known.

The seeds are fixed, so every test is deterministic; the rates below say what a correct
method must reach over many seeds, with tolerances from binomial bounds so that a correct
method would fail them only with a tiny probability on a fresh set of seeds.
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest

from tradecast.evals import metrics, stats

ALPHA = 0.05  # the tests' one-sided level
# Power: a planted edge of 0.002 per bar (sd 0.01 for desk and baseline, 1000 bars) has
# t ≈ 0.002 / 0.0141 × √1000 ≈ 4.5, a power near 1; we require 90% of 50 seeds.
EDGE_SEEDS = 50
MIN_POWER = 0.90
# Size: with no edge, rejections over 200 seeds are Binomial(200, 0.05) for an exact test:
# mean 10, sd √(200 × 0.05 × 0.95) ≈ 3.1. We allow 3 sd above the nominal rate (≈ 9.6%,
# i.e. at most 19 of 200), which an exact test exceeds with probability < 0.5%.
NULL_SEEDS = 200
MAX_FALSE_POSITIVE = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / NULL_SEEDS)
# Coverage of 95% intervals over 200 seeds: sd of the observed rate ≈ 1.5 points. The window
# is 4.5 sd below (percentile bootstrap intervals run a little short at finite n, more so
# with dependence) and 2.6 sd above the nominal rate.
COVERAGE_SEEDS = 200
COVERAGE_RANGE = (0.88, 0.99)
DRAWS = 400  # bootstrap draws in the many-seed tests: enough for 2.5% tails, and fast


def _ar1(rng: np.random.Generator, shape: tuple[int, int], phi: float) -> np.ndarray:
    """Rows of stationary AR(1) noise with unit innovation variance, vectorised over rows."""
    shocks = rng.standard_normal(shape)
    out = np.empty(shape)
    out[:, 0] = shocks[:, 0] / math.sqrt(1 - phi**2)
    for t in range(1, shape[1]):
        out[:, t] = phi * out[:, t - 1] + shocks[:, t]
    return out


# -- the normal distribution ---------------------------------------------------------------


def test_normal_quantiles_match_tabulated_values():
    assert stats.normal_ppf(0.975) == pytest.approx(1.959963984540054, abs=1e-12)
    assert stats.normal_ppf(0.5) == pytest.approx(0.0, abs=1e-15)
    assert stats.normal_ppf(0.001) == pytest.approx(-3.090232306167813, abs=1e-12)
    assert stats.normal_ppf(1e-10) == pytest.approx(-6.361340902404056, abs=1e-10)
    assert stats.normal_cdf(1.959963984540054) == pytest.approx(0.975, abs=1e-15)
    for p in np.linspace(1e-6, 1 - 1e-6, 101):
        assert stats.normal_cdf(stats.normal_ppf(float(p))) == pytest.approx(p, abs=1e-14)
    for bad in (0.0, 1.0, -0.1, math.nan):
        with pytest.raises(ValueError, match="0 < p < 1"):
            stats.normal_ppf(bad)


# -- the stationary bootstrap ----------------------------------------------------------------


def test_stationary_bootstrap_indices_are_wrapping_blocks_of_the_mean_length():
    rng = np.random.default_rng(7)
    idx = stats.stationary_bootstrap_indices(500, 10.0, 400, rng)
    assert idx.shape == (400, 500) and idx.dtype == np.int64
    assert idx.min() >= 0 and idx.max() <= 499
    steps = (idx[:, 1:] - idx[:, :-1]) % 500
    breaks = steps != 1  # a new block (or, rarely, one that starts on the next bar)
    assert 1 / breaks.mean() == pytest.approx(10.0, rel=0.05)
    assert np.mean(idx == 0) == pytest.approx(1 / 500, rel=0.1)  # every bar equally likely
    ones = stats.stationary_bootstrap_indices(5, 1.0, 3, rng)  # block 1: iid bootstrap
    assert ones.shape == (3, 5)
    again = stats.stationary_bootstrap_indices(50, None, 20, np.random.default_rng(3))
    np.testing.assert_array_equal(
        again, stats.stationary_bootstrap_indices(50, None, 20, np.random.default_rng(3))
    )
    assert stats.default_mean_block(1000) == 10.0 and stats.default_mean_block(1) == 1.0
    with pytest.raises(ValueError, match="mean_block"):
        stats.stationary_bootstrap_indices(10, 0.5, 5, rng)
    with pytest.raises(ValueError, match="at least 1"):
        stats.stationary_bootstrap_indices(0, 2.0, 5, rng)


def test_bootstrap_ci_estimates_match_the_metrics_module_and_are_seeded():
    rng = np.random.default_rng(11)
    returns = rng.normal(0.001, 0.01, 300)
    equity = np.concatenate(([1.0], np.cumprod(1 + returns)))
    sharpe = stats.bootstrap_ci(returns, "sharpe", bars_per_year=8760, draws=200)
    assert sharpe.estimate == pytest.approx(metrics.sharpe_ratio(returns, 8760))
    assert sharpe.low < sharpe.estimate < sharpe.high and sharpe.level == 0.95
    cumulative = stats.bootstrap_ci(returns, "cumulative_return", draws=200)
    assert cumulative.estimate == pytest.approx(metrics.cumulative_return(equity))
    drawdown = stats.bootstrap_ci(returns, "max_drawdown", draws=200)
    assert drawdown.estimate == pytest.approx(metrics.max_drawdown(equity))
    assert 0 <= drawdown.low <= drawdown.high <= 1
    assert stats.bootstrap_ci(returns, "mean", seed=5, draws=200) == stats.bootstrap_ci(
        returns, "mean", seed=5, draws=200
    )
    assert stats.bootstrap_ci(returns, "mean", seed=5, draws=200) != stats.bootstrap_ci(
        returns, "mean", seed=6, draws=200
    )
    wide = stats.bootstrap_ci(returns, "mean", level=0.99, draws=200)
    narrow = stats.bootstrap_ci(returns, "mean", level=0.5, draws=200)
    assert wide.low < narrow.low < narrow.high < wide.high


def test_a_first_bar_loss_counts_in_the_drawdown():
    # equity 1 -> 0.9 -> 0.99: the fall from the starting 1 is 10%
    interval = stats.bootstrap_ci([-0.1, 0.1], "max_drawdown", draws=100)
    assert interval.estimate == pytest.approx(0.1)


def _coverage(
    samples: np.ndarray, statistic: stats.Statistic, truth: float, **kwargs: float
) -> float:
    hits = 0
    for seed, row in enumerate(samples):
        interval = stats.bootstrap_ci(row, statistic, draws=DRAWS, seed=seed, **kwargs)
        hits += interval.low <= truth <= interval.high
    return hits / len(samples)


def test_mean_interval_covers_the_true_mean_at_its_nominal_rate_iid():
    rng = np.random.default_rng(2024)
    samples = rng.normal(0.0005, 0.01, (COVERAGE_SEEDS, 300))
    coverage = _coverage(samples, "mean", 0.0005)
    assert COVERAGE_RANGE[0] <= coverage <= COVERAGE_RANGE[1], coverage


def test_mean_interval_covers_the_true_mean_with_autocorrelated_returns():
    rng = np.random.default_rng(99)
    samples = 0.0005 + 0.01 * _ar1(rng, (COVERAGE_SEEDS, 300), phi=0.3)
    coverage = _coverage(samples, "mean", 0.0005)
    assert COVERAGE_RANGE[0] <= coverage <= COVERAGE_RANGE[1], coverage


def test_sharpe_interval_covers_the_true_sharpe_at_its_nominal_rate():
    rng = np.random.default_rng(5)
    samples = rng.normal(0.001, 0.01, (COVERAGE_SEEDS, 300))
    truth = 0.001 / 0.01 * math.sqrt(365)  # daily bars
    coverage = _coverage(samples, "sharpe", truth, bars_per_year=365)
    assert COVERAGE_RANGE[0] <= coverage <= COVERAGE_RANGE[1], coverage


def test_the_iid_bootstrap_undercovers_dependent_data_that_blocks_cover():
    # The reason for blocks: with strong autocorrelation, block length 1 (iid) is too narrow.
    rng = np.random.default_rng(8)
    samples = 0.01 * _ar1(rng, (60, 400), phi=0.6)
    iid = _coverage(samples, "mean", 0.0, mean_block=1.0)
    blocks = _coverage(samples, "mean", 0.0, mean_block=20.0)
    assert iid < 0.8 < blocks


# -- the paired test -------------------------------------------------------------------------


def test_a_planted_edge_is_found_significant():
    rng = np.random.default_rng(1)
    desk = rng.normal(0.002, 0.01, (EDGE_SEEDS, 1000))
    baseline = rng.normal(0.0, 0.01, (EDGE_SEEDS, 1000))
    found = [
        stats.paired_bootstrap_test(a, b, draws=DRAWS, seed=seed).p_value < ALPHA
        for seed, (a, b) in enumerate(zip(desk, baseline, strict=True))
    ]
    assert np.mean(found) >= MIN_POWER


def test_no_edge_is_rarely_found_significant():
    rng = np.random.default_rng(2)
    desk = rng.normal(0.0, 0.01, (NULL_SEEDS, 500))
    baseline = rng.normal(0.0, 0.01, (NULL_SEEDS, 500))
    results = [
        stats.paired_bootstrap_test(a, b, draws=DRAWS, seed=seed)
        for seed, (a, b) in enumerate(zip(desk, baseline, strict=True))
    ]
    one_sided = np.mean([result.p_value < ALPHA for result in results])
    two_sided = np.mean([result.p_value_two_sided < ALPHA for result in results])
    assert one_sided <= MAX_FALSE_POSITIVE
    assert two_sided <= MAX_FALSE_POSITIVE
    # under the null the p-values are spread out, not piled up near 0 or 1
    assert 0.35 < np.median([result.p_value for result in results]) < 0.65


def test_paired_test_fields_and_direction():
    rng = np.random.default_rng(3)
    baseline = rng.normal(0.0, 0.01, 800)
    desk = baseline + rng.normal(0.001, 0.002, 800)  # correlated with it, better by 0.001
    better = stats.paired_bootstrap_test(desk, baseline, draws=500)
    assert better.statistic == "mean" and better.draws == 500
    assert better.mean_block == stats.default_mean_block(800)
    assert better.difference == pytest.approx(np.mean(desk - baseline))
    assert better.interval.estimate == better.difference
    assert better.interval.low < better.difference < better.interval.high
    assert better.p_value < 0.01 and better.p_value_two_sided < 0.02
    worse = stats.paired_bootstrap_test(baseline, desk, draws=500)
    assert worse.p_value > 0.99 and worse.p_value_two_sided < 0.02
    assert worse.difference == pytest.approx(-better.difference)


def test_paired_test_on_the_sharpe_difference():
    rng = np.random.default_rng(4)
    baseline = rng.normal(0.0, 0.01, 1000)
    desk = rng.normal(0.0015, 0.005, 1000)  # per-bar Sharpe 0.3 against 0
    result = stats.paired_bootstrap_test(
        desk, baseline, statistic="sharpe", bars_per_year=365, draws=500
    )
    expected = metrics.sharpe_ratio(desk, 365) - metrics.sharpe_ratio(baseline, 365)
    assert result.statistic == "sharpe"
    assert result.difference == pytest.approx(expected)
    assert result.p_value < ALPHA


# -- the deflated Sharpe ratio ------------------------------------------------------------------


def test_expected_max_sharpe_grows_with_the_trials():
    assert stats.expected_max_sharpe(1, 0.01) == 0.0
    # N = 100, V = 1: 0.4228 × Φ⁻¹(0.99) + 0.5772 × Φ⁻¹(1 − 1/(100e)) = 0.4228 × 2.3263 +
    # 0.5772 × 2.6793 ≈ 2.5300
    assert stats.expected_max_sharpe(100, 1.0) == pytest.approx(2.5300, abs=1e-3)
    values = [stats.expected_max_sharpe(n, 0.01) for n in (2, 10, 100, 1000, 1_000_000)]
    assert values == sorted(values) and values[0] > 0
    assert stats.expected_max_sharpe(100, 4.0) == pytest.approx(
        2 * stats.expected_max_sharpe(100, 1.0)
    )


def test_dsr_of_a_strong_sharpe_is_near_one_with_one_trial_and_lower_with_many():
    rng = np.random.default_rng(6)
    returns = rng.normal(0.001, 0.01, 1000)  # per-bar Sharpe ≈ 0.1, t ≈ 3
    one = stats.deflated_sharpe_ratio(returns, trials=1)
    many = stats.deflated_sharpe_ratio(returns, trials=1000)
    assert one.dsr > 0.99
    assert many.dsr < one.dsr - 0.3
    assert one.expected_max_sharpe_per_bar == 0.0 < many.expected_max_sharpe_per_bar
    assert one.sharpe_per_bar == pytest.approx(returns.mean() / returns.std(ddof=1))
    assert one.bars == 1000 and many.trials == 1000
    assert one.skewness == pytest.approx(0.0, abs=0.2)
    assert one.kurtosis == pytest.approx(3.0, abs=0.4)


def test_dsr_by_hand_against_the_formula():
    returns = np.array([0.02, -0.01, 0.03, 0.0, -0.02, 0.01, 0.015, -0.005])
    result = stats.deflated_sharpe_ratio(returns, trials=10, sharpe_variance_across_trials=0.04)
    sharpe = returns.mean() / returns.std(ddof=1)
    centred = returns - returns.mean()
    skew = np.mean(centred**3) / np.mean(centred**2) ** 1.5
    kurt = np.mean(centred**4) / np.mean(centred**2) ** 2
    threshold = 0.2 * (
        (1 - np.euler_gamma) * stats.normal_ppf(0.9)
        + np.euler_gamma * stats.normal_ppf(1 - 1 / (10 * math.e))
    )
    z = (
        (sharpe - threshold)
        * math.sqrt(7)
        / math.sqrt(1 - skew * sharpe + (kurt - 1) / 4 * sharpe**2)
    )
    assert result.dsr == pytest.approx(stats.normal_cdf(z))
    assert result.expected_max_sharpe_per_bar == pytest.approx(threshold)


def test_dsr_of_no_edge_is_below_one_half():
    rng = np.random.default_rng(10)
    samples = rng.normal(0.0, 0.01, (50, 1000))
    below = [stats.deflated_sharpe_ratio(row, trials=100).dsr < 0.5 for row in samples]
    assert np.mean(below) >= 0.9
    exactly_zero = samples[0] - samples[0].mean()  # Sharpe 0: PSR(0) is exactly one half
    assert stats.deflated_sharpe_ratio(exactly_zero, trials=1).dsr == pytest.approx(0.5)
    assert stats.deflated_sharpe_ratio(exactly_zero, trials=2).dsr < 0.5


# -- the probability of backtest overfitting ----------------------------------------------------


def test_pbo_of_pure_noise_strategies_is_about_one_half_or_more():
    # With no skill the IS winner's OOS rank is uniform, so PBO is ~0.5 on average; any one
    # noise matrix can land well away from it (the combinations share their data).
    rng = np.random.default_rng(12)
    pbos = [
        stats.probability_of_backtest_overfitting(rng.normal(0, 0.01, (480, 20))).pbo
        for _ in range(8)
    ]
    assert 0.35 < np.mean(pbos) < 0.65  # observed: 0.49, individual values 0.16 to 0.80
    assert max(pbos) > 0.5


def test_pbo_is_low_when_one_strategy_has_a_real_edge():
    rng = np.random.default_rng(13)
    for _ in range(5):
        matrix = rng.normal(0, 0.01, (800, 20))
        matrix[:, 7] += 0.003  # per-bar Sharpe 0.3 against noise
        result = stats.probability_of_backtest_overfitting(matrix, splits=16)
        assert result.pbo < 0.2
        assert result.combinations == math.comb(16, 8) == len(result.logits)
        assert result.splits == 16


def test_pbo_by_hand_with_two_configurations_and_two_splits():
    # Blocks of 2 bars: config 0 wins block A, config 1 wins block B, so whichever half is
    # in-sample, the IS winner is last out-of-sample: rank 1 of 2, ω = 1/3, logit ln(1/2).
    matrix = np.array([[0.03, 0.0], [0.01, 0.001], [0.0, 0.02], [0.001, 0.04]])
    result = stats.probability_of_backtest_overfitting(matrix, splits=2)
    assert result.combinations == 2
    np.testing.assert_allclose(result.logits, [math.log(0.5), math.log(0.5)])
    assert result.pbo == 1.0


def test_pbo_drops_the_oldest_rows_that_do_not_fill_a_block():
    rng = np.random.default_rng(14)
    matrix = rng.normal(0, 0.01, (103, 6))
    full = stats.probability_of_backtest_overfitting(matrix, splits=4)
    trimmed = stats.probability_of_backtest_overfitting(matrix[3:], splits=4)
    np.testing.assert_array_equal(full.logits, trimmed.logits)


def test_pbo_matches_a_plain_loop_over_the_combinations():
    rng = np.random.default_rng(15)
    matrix = rng.normal(0.0, 0.01, (60, 5))
    matrix[:, 2] += 0.002
    blocks = np.split(matrix, 6)
    logits = []
    for chosen in combinations(range(6), 3):
        inside = np.vstack([blocks[i] for i in chosen])
        outside = np.vstack([blocks[i] for i in range(6) if i not in chosen])
        is_sharpe = inside.mean(0) / inside.std(0, ddof=1)
        oos_sharpe = outside.mean(0) / outside.std(0, ddof=1)
        rank = 1 + np.sum(oos_sharpe < oos_sharpe[np.argmax(is_sharpe)])
        logits.append(math.log(rank / (6 - rank)))
    result = stats.probability_of_backtest_overfitting(matrix, splits=6)
    np.testing.assert_allclose(result.logits, logits)
    assert result.pbo == np.mean(np.array(logits) <= 0)


# -- input validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("returns", "message"),
    [
        ([], "at least 2 returns"),
        ([0.01], "at least 2 returns"),
        ([0.01, math.nan, 0.02], "NaN"),
        ([0.01, math.inf], "NaN or infinite"),
        ([0.01, -1.5], "below -100%"),
        ([[0.01, 0.02]], "1-D"),
    ],
)
def test_bad_returns_are_refused(returns, message):
    with pytest.raises(ValueError, match=message):
        stats.bootstrap_ci(returns, "mean")


def test_bad_bootstrap_parameters_are_refused():
    returns = np.linspace(-0.01, 0.01, 50)
    with pytest.raises(ValueError, match="draws must be in"):
        stats.bootstrap_ci(returns, "mean", draws=stats.MAX_DRAWS + 1)
    with pytest.raises(ValueError, match="draws must be in"):
        stats.bootstrap_ci(returns, "mean", draws=10)
    with pytest.raises(ValueError, match="integer"):
        stats.bootstrap_ci(returns, "mean", draws=500.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="level"):
        stats.bootstrap_ci(returns, "mean", level=1.0)
    with pytest.raises(ValueError, match="bars_per_year"):
        stats.bootstrap_ci(returns, "sharpe")
    with pytest.raises(ValueError, match="unknown statistic"):
        stats.bootstrap_ci(returns, "median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mean_block"):
        stats.bootstrap_ci(returns, "mean", mean_block=0.0)
    with pytest.raises(ValueError, match="undefined"):
        stats.bootstrap_ci([0.01, 0.01, 0.01], "sharpe", bars_per_year=365)
    with pytest.raises(ValueError, match="aligned"):
        stats.paired_bootstrap_test(returns, returns[:-1])
    with pytest.raises(ValueError, match="NaN"):
        stats.paired_bootstrap_test(returns, np.full(50, math.nan))


def test_bad_dsr_inputs_are_refused():
    returns = np.linspace(-0.01, 0.02, 50)
    for trials in (0, stats.MAX_TRIALS + 1):
        with pytest.raises(ValueError, match="trials must be in"):
            stats.deflated_sharpe_ratio(returns, trials=trials)
    with pytest.raises(ValueError, match="integer"):
        stats.deflated_sharpe_ratio(returns, trials=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="do not vary"):
        stats.deflated_sharpe_ratio(np.full(20, 0.01), trials=1)
    with pytest.raises(ValueError, match="variance"):
        stats.deflated_sharpe_ratio(returns, trials=5, sharpe_variance_across_trials=-1.0)
    with pytest.raises(ValueError, match="at least 3"):
        stats.deflated_sharpe_ratio([0.01, 0.02], trials=1)


@pytest.mark.parametrize(
    ("shape", "splits", "message"),
    [
        ((100, 1), 4, "at least 2 configurations"),
        ((100, 5), 5, "even"),
        ((100, 5), 0, "even"),
        ((10, 5), 12, "cannot exceed"),
        ((1000, 5), 22, "at most 20"),
        ((3, 5), 2, "too few bars"),
    ],
)
def test_bad_pbo_inputs_are_refused(shape, splits, message):
    with pytest.raises(ValueError, match=message):
        stats.probability_of_backtest_overfitting(np.zeros(shape), splits=splits)


def test_pbo_refuses_nans_and_vectors():
    matrix = np.zeros((40, 3))
    matrix[5, 1] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        stats.probability_of_backtest_overfitting(matrix, splits=4)
    with pytest.raises(ValueError, match="2-D"):
        stats.probability_of_backtest_overfitting(np.zeros(40), splits=4)

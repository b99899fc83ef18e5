"""Statistics that tell skill from luck in a run's per-bar returns: pure numpy.

- ``bootstrap_ci``: percentile intervals of a return statistic by the stationary bootstrap of
  Politis & Romano (1994), which resamples blocks of random (geometric) length and so keeps
  the short-range dependence of returns that an iid bootstrap would destroy.
- ``paired_bootstrap_test``: is the desk better than a baseline on the same bars? The two
  series are resampled with the same indices; the null distribution is the bootstrap
  distribution of the difference centred on its observed value.
- ``deflated_sharpe_ratio``: Bailey & López de Prado (2014), the probability that the true
  Sharpe ratio beats the best of ``trials`` unskilled tries, given the skewness, kurtosis
  and length of the sample.
- ``probability_of_backtest_overfitting``: the combinatorially symmetric cross-validation
  (CSCV) of Bailey, Borwein, López de Prado & Zhu (2017).

Conventions are those of ``tradecast.evals.metrics``: simple per-bar returns, Sharpe = mean /
sample standard deviation × √(bars per year), a 365-day year, a 0% risk-free rate, max
drawdown of the compounded curve (starting at 1) as a positive fraction. Randomness comes
only from ``np.random.Generator`` objects seeded by the caller: a seed gives one answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Statistic = Literal["mean", "cumulative_return", "sharpe", "max_drawdown"]

DEFAULT_DRAWS = 2000
MIN_DRAWS = 100
MAX_DRAWS = 100_000
DEFAULT_LEVEL = 0.95
MAX_TRIALS = 1_000_000
DEFAULT_SPLITS = 16
MAX_SPLITS = 20  # C(20, 10) = 184,756 combinations; C(22, 11) would be 705,432
EULER_GAMMA = 0.5772156649015329
_CHUNK_ELEMENTS = 1_000_000  # bootstrap indices (or CSCV cells) held in memory at once


@dataclass(frozen=True)
class Interval:
    """A point estimate and its percentile bootstrap interval at ``level`` (e.g. 0.95)."""

    estimate: float
    low: float
    high: float
    level: float


@dataclass(frozen=True)
class PairedTest:
    """Bootstrap test that a statistic of ``a`` exceeds that of ``b`` on the same bars.

    ``difference`` is the observed statistic(a) − statistic(b) (``interval.estimate`` too);
    ``p_value`` is one-sided (H1: difference > 0), ``p_value_two_sided`` for H1: ≠ 0.
    """

    statistic: str
    difference: float
    interval: Interval
    p_value: float
    p_value_two_sided: float
    draws: int
    mean_block: float


@dataclass(frozen=True)
class DeflatedSharpe:
    """The deflated Sharpe ratio and what went into it (Sharpe ratios per bar, not annual)."""

    dsr: float
    sharpe_per_bar: float
    expected_max_sharpe_per_bar: float
    trials: int
    bars: int
    skewness: float
    kurtosis: float


@dataclass(frozen=True, eq=False)
class BacktestOverfitting:
    """CSCV result: ``pbo`` is the share of ``logits`` that are ≤ 0 (one per combination)."""

    pbo: float
    logits: FloatArray
    combinations: int
    splits: int


# -- the normal distribution (no scipy) ---------------------------------------------------

_PPF_A = (-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.3577518672690,
          -30.66479806614716, 2.506628277459239)  # fmt: skip
_PPF_B = (-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972,
          -13.28068155288572)  # fmt: skip
_PPF_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838,
          -2.549732539343734, 4.374664141464968, 2.938163982698783)  # fmt: skip
_PPF_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996, 3.754408661907416)
_PPF_LOW = 0.02425


def normal_cdf(x: float) -> float:
    """Standard normal distribution function Φ(x)."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _poly(coefficients: tuple[float, ...], x: float) -> float:
    total = 0.0
    for coefficient in coefficients:
        total = total * x + coefficient
    return total


def normal_ppf(p: float) -> float:
    """Standard normal quantile Φ⁻¹(p): Acklam's rational approximation, one Halley step.

    Args:
        p: a probability strictly between 0 and 1.

    Returns:
        x with Φ(x) = p (relative error about 1e-15 after the refinement).

    Raises:
        ValueError: if p is not in (0, 1).
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"a normal quantile needs 0 < p < 1 (got {p})")
    if p < _PPF_LOW or p > 1.0 - _PPF_LOW:
        q = math.sqrt(-2.0 * math.log(min(p, 1.0 - p)))
        x = _poly(_PPF_C, q) / (_poly(_PPF_D, q) * q + 1.0)
        x = x if p < 0.5 else -x
    else:
        q = p - 0.5
        r = q * q
        x = _poly(_PPF_A, r) * q / (_poly(_PPF_B, r) * r + 1.0)
    error = normal_cdf(x) - p
    u = error * math.sqrt(2.0 * math.pi) * math.exp(x * x / 2.0)
    return x - u / (1.0 + x * u / 2.0)


# -- validation ---------------------------------------------------------------------------


def _as_returns(values: npt.ArrayLike, name: str, min_len: int = 2) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of per-bar returns (got {array.ndim}-D)")
    if len(array) < min_len:
        raise ValueError(f"{name} needs at least {min_len} returns (got {len(array)})")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if np.any(array < -1.0):
        raise ValueError(f"{name} has a simple return below -100%, which is impossible")
    return array


def _check_draws(draws: int) -> None:
    if isinstance(draws, bool) or not isinstance(draws, int | np.integer):
        raise ValueError(f"draws must be an integer (got {draws!r})")
    if not MIN_DRAWS <= draws <= MAX_DRAWS:
        raise ValueError(f"draws must be in [{MIN_DRAWS}, {MAX_DRAWS}] (got {draws})")


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be strictly between 0 and 1 (got {level})")


def _mean_block(n: int, mean_block: float | None) -> float:
    block = default_mean_block(n) if mean_block is None else float(mean_block)
    if not (math.isfinite(block) and block >= 1.0):
        raise ValueError(f"mean_block must be a finite number >= 1 (got {mean_block})")
    return block


# -- the stationary bootstrap -------------------------------------------------------------


def default_mean_block(n: int) -> float:
    """The default mean block length: n^(1/3) rounded, at least 1."""
    return float(max(1, round(n ** (1.0 / 3.0))))


def stationary_bootstrap_indices(
    n: int, mean_block: float | None, draws: int, rng: np.random.Generator
) -> IntArray:
    """Indices of ``draws`` stationary-bootstrap resamples of a series of length ``n``.

    Politis & Romano (1994): each resample is a chain of blocks that wrap around the end of
    the series; every block starts at a uniform random bar and its length is geometric with
    mean ``mean_block`` (each next bar starts a new block with probability 1/mean_block).

    Args:
        n: length of the series (and of each resample), at least 1.
        mean_block: mean block length >= 1; None for ``default_mean_block(n)``.
        draws: how many resamples, at least 1.
        rng: the generator every random number comes from.

    Returns:
        An int64 array of shape (draws, n); row i indexes the series for resample i.

    Raises:
        ValueError: if n or draws is below 1 or mean_block below 1.
    """
    if n < 1 or draws < 1:
        raise ValueError(f"n and draws must be at least 1 (got n={n}, draws={draws})")
    block = _mean_block(n, mean_block)
    new_block = rng.random(draws * n) < 1.0 / block  # all resamples end to end
    new_block[::n] = True  # each resample starts a block
    starts = np.flatnonzero(new_block)
    # a block starting at flat position s with origin o (uniform) reads (o + p - s) mod n
    shift = rng.integers(0, n, size=len(starts), dtype=np.int64) - starts
    positions = np.arange(draws * n, dtype=np.int64)
    indices: IntArray = ((positions + shift[np.cumsum(new_block) - 1]) % n).reshape(draws, n)
    return indices


def _replicates(
    n: int, block: float, draws: int, rng: np.random.Generator, fn: Callable[[IntArray], FloatArray]
) -> FloatArray:
    """``fn`` of every resample's indices, in chunks that bound the memory used."""
    chunk = max(1, _CHUNK_ELEMENTS // n)
    parts = [
        fn(stationary_bootstrap_indices(n, block, min(chunk, draws - done), rng))
        for done in range(0, draws, chunk)
    ]
    return np.concatenate(parts)


# -- statistics of many resamples at once (one per row) -----------------------------------


def _row_sharpe(samples: FloatArray, bars_per_year: float) -> FloatArray:
    """Annualised Sharpe of each row; NaN for a constant row (its std is 0 up to rounding)."""
    std = np.where(np.ptp(samples, axis=1) > 0, samples.std(axis=1, ddof=1), 0.0)
    safe = np.where(std > 0, std, 1.0)
    ratio = samples.mean(axis=1) / safe * math.sqrt(bars_per_year)
    return np.where(std > 0, ratio, np.nan)


def _row_max_drawdown(samples: FloatArray) -> FloatArray:
    equity = np.cumprod(1.0 + samples, axis=1)
    peaks = np.maximum(np.maximum.accumulate(equity, axis=1), 1.0)
    falls: FloatArray = (1.0 - equity / peaks).max(axis=1)
    return falls


def _statistic(
    statistic: Statistic, bars_per_year: float | None
) -> Callable[[FloatArray], FloatArray]:
    if statistic == "mean":
        return lambda samples: samples.mean(axis=1)
    if statistic == "cumulative_return":
        return lambda samples: np.prod(1.0 + samples, axis=1) - 1.0
    if statistic == "max_drawdown":
        return _row_max_drawdown
    if statistic == "sharpe":
        if bars_per_year is None or not (math.isfinite(bars_per_year) and bars_per_year > 0):
            raise ValueError(f"the Sharpe ratio needs bars_per_year > 0 (got {bars_per_year})")
        periods = bars_per_year
        return lambda samples: _row_sharpe(samples, periods)
    raise ValueError(f"unknown statistic {statistic!r}")


def _percentiles(values: FloatArray, level: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        raise ValueError("the statistic is undefined in every resample")
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return float(low), float(high)


def _observed(fn: Callable[[FloatArray], FloatArray], returns: FloatArray) -> float:
    value = float(fn(returns[np.newaxis, :])[0])
    if not math.isfinite(value):
        raise ValueError("the statistic is undefined for these returns (do they vary?)")
    return value


def bootstrap_ci(
    returns: npt.ArrayLike,
    statistic: Statistic,
    *,
    bars_per_year: float | None = None,
    level: float = DEFAULT_LEVEL,
    draws: int = DEFAULT_DRAWS,
    mean_block: float | None = None,
    seed: int = 0,
) -> Interval:
    """Percentile interval of a statistic of per-bar returns by the stationary bootstrap.

    Args:
        returns: simple per-bar returns (at least 2, finite, none below -1).
        statistic: ``"mean"`` (per-bar), ``"cumulative_return"`` (compounded),
            ``"sharpe"`` (annualised) or ``"max_drawdown"`` (of the compounded curve).
        bars_per_year: bars in a 365-day year; required for ``"sharpe"``.
        level: coverage of the interval, in (0, 1).
        draws: bootstrap resamples, in [MIN_DRAWS, MAX_DRAWS].
        mean_block: mean block length; None for n^(1/3).
        seed: seed of the generator; the same seed gives the same interval.

    Returns:
        ``Interval(estimate, low, high, level)``; the estimate is the statistic of
        ``returns`` itself, the bounds the (1 ± level)/2 quantiles of the resamples'.

    Raises:
        ValueError: on bad input, or when the statistic is undefined (a flat Sharpe).
    """
    values = _as_returns(returns, "returns")
    _check_level(level)
    _check_draws(draws)
    fn = _statistic(statistic, bars_per_year)
    estimate = _observed(fn, values)
    block = _mean_block(len(values), mean_block)
    rng = np.random.default_rng(seed)
    replicates = _replicates(len(values), block, draws, rng, lambda idx: fn(values[idx]))
    low, high = _percentiles(replicates, level)
    return Interval(estimate=estimate, low=low, high=high, level=level)


def paired_bootstrap_test(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    statistic: Literal["mean", "sharpe"] = "mean",
    bars_per_year: float | None = None,
    level: float = DEFAULT_LEVEL,
    draws: int = DEFAULT_DRAWS,
    mean_block: float | None = None,
    seed: int = 0,
) -> PairedTest:
    """Test that ``a`` (the desk) beats ``b`` (a baseline) on the same bars.

    Both series are resampled with the same stationary-bootstrap indices, so their
    correlation is kept. With θ = statistic(a) − statistic(b) observed as θ̂ and θ* in the
    resamples, θ* − θ̂ approximates the null distribution, and the one-sided p-value is
    (1 + #{θ* − θ̂ ≥ θ̂}) / (1 + draws); the two-sided one compares absolute values. For
    ``"mean"`` this is the bootstrap of the difference series a − b centred to mean 0.

    Args:
        a: per-bar returns of the strategy under test.
        b: per-bar returns of the baseline, aligned bar by bar with ``a``.
        statistic: ``"mean"`` (mean per-bar return) or ``"sharpe"`` (annualised Sharpe).
        bars_per_year: bars in a 365-day year; required for ``"sharpe"``.
        level: coverage of the interval of the difference.
        draws: bootstrap resamples, in [MIN_DRAWS, MAX_DRAWS].
        mean_block: mean block length; None for n^(1/3).
        seed: seed of the generator.

    Returns:
        A ``PairedTest``.

    Raises:
        ValueError: on bad input (different lengths included) or an undefined statistic.
    """
    left, right = _as_returns(a, "a"), _as_returns(b, "b")
    if len(left) != len(right):
        raise ValueError(f"a and b must be aligned: {len(left)} and {len(right)} returns")
    _check_level(level)
    _check_draws(draws)
    fn = _statistic(statistic, bars_per_year)
    observed = _observed(fn, left) - _observed(fn, right)
    block = _mean_block(len(left), mean_block)
    rng = np.random.default_rng(seed)
    replicates = _replicates(
        len(left), block, draws, rng, lambda idx: fn(left[idx]) - fn(right[idx])
    )
    low, high = _percentiles(replicates, level)
    null = replicates[np.isfinite(replicates)] - observed
    return PairedTest(
        statistic=statistic,
        difference=observed,
        interval=Interval(estimate=observed, low=low, high=high, level=level),
        p_value=float((1 + np.sum(null >= observed)) / (1 + len(null))),
        p_value_two_sided=float((1 + np.sum(np.abs(null) >= abs(observed))) / (1 + len(null))),
        draws=draws,
        mean_block=block,
    )


# -- the deflated Sharpe ratio ------------------------------------------------------------


def expected_max_sharpe(trials: int, variance: float) -> float:
    """Expected maximum Sharpe ratio of ``trials`` unskilled tries (true Sharpe 0).

    Bailey & López de Prado (2014): √V · ((1 − γ) Φ⁻¹(1 − 1/N) + γ Φ⁻¹(1 − 1/(N e))), with γ
    the Euler–Mascheroni constant; 0 for a single trial.

    Args:
        trials: N, the number of independent configurations tried, in [1, MAX_TRIALS].
        variance: V, the variance of the Sharpe ratio estimates across the trials.

    Returns:
        The expected maximum, in the units of the Sharpe ratios behind ``variance``.

    Raises:
        ValueError: if trials or variance is out of range.
    """
    _check_trials(trials)
    if not (math.isfinite(variance) and variance >= 0):
        raise ValueError(f"the Sharpe variance across trials must be >= 0 (got {variance})")
    if trials == 1:
        return 0.0
    spread = (1 - EULER_GAMMA) * normal_ppf(1 - 1 / trials)
    spread += EULER_GAMMA * normal_ppf(1 - 1 / (trials * math.e))
    return math.sqrt(variance) * spread


def _check_trials(trials: int) -> None:
    if isinstance(trials, bool) or not isinstance(trials, int | np.integer):
        raise ValueError(f"trials must be an integer (got {trials!r})")
    if not 1 <= trials <= MAX_TRIALS:
        raise ValueError(f"trials must be in [1, {MAX_TRIALS}] (got {trials})")


def _moments(values: FloatArray) -> tuple[float, float]:
    """Sample skewness and (non-excess) kurtosis, from the population central moments."""
    centred = values - values.mean()
    m2 = float(np.mean(centred**2))
    return float(np.mean(centred**3)) / m2**1.5, float(np.mean(centred**4)) / m2**2


def deflated_sharpe_ratio(
    returns: npt.ArrayLike, trials: int, sharpe_variance_across_trials: float | None = None
) -> DeflatedSharpe:
    """Deflated Sharpe ratio (Bailey & López de Prado 2014) of the chosen strategy.

    DSR = Φ((SR − SR₀) √(T − 1) / √(1 − γ₃ SR + (γ₄ − 1)/4 · SR²)), where SR is the per-bar
    Sharpe ratio of ``returns`` (mean / sample std), T the number of bars, γ₃ and γ₄ their
    skewness and kurtosis, and SR₀ = ``expected_max_sharpe(trials, V)``. It is the
    probability that the true Sharpe ratio exceeds what the best of ``trials`` unskilled
    configurations would show by luck. With one trial it is the probabilistic Sharpe ratio
    against 0.

    Args:
        returns: per-bar returns of the strategy that was picked (at least 3, not constant).
        trials: how many independent configurations were tried to find it (1 to 1,000,000).
        sharpe_variance_across_trials: V, the variance of the trials' per-bar (not
            annualised) Sharpe ratios. None assumes the trials differ only by sampling
            noise: V = 1 / (T − 1), the variance of a zero Sharpe estimate over T bars.

    Returns:
        A ``DeflatedSharpe`` (Sharpe ratios per bar).

    Raises:
        ValueError: on bad returns, constant returns, or trials / V out of range.
    """
    values = _as_returns(returns, "returns", min_len=3)
    _check_trials(trials)
    std = float(values.std(ddof=1))
    if np.ptp(values) == 0:
        raise ValueError("returns do not vary: their Sharpe ratio is undefined")
    bars = len(values)
    sharpe = float(values.mean()) / std
    skewness, kurtosis = _moments(values)
    variance = (
        1 / (bars - 1)
        if sharpe_variance_across_trials is None
        else float(sharpe_variance_across_trials)
    )
    threshold = expected_max_sharpe(trials, variance)
    spread = 1 - skewness * sharpe + (kurtosis - 1) / 4 * sharpe**2
    z = (sharpe - threshold) * math.sqrt(bars - 1) / math.sqrt(max(spread, 1e-12))
    return DeflatedSharpe(
        dsr=normal_cdf(z),
        sharpe_per_bar=sharpe,
        expected_max_sharpe_per_bar=threshold,
        trials=trials,
        bars=bars,
        skewness=skewness,
        kurtosis=kurtosis,
    )


# -- probability of backtest overfitting (CSCV) -------------------------------------------


def _as_matrix(matrix: npt.ArrayLike) -> FloatArray:
    values = np.asarray(matrix, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"matrix must be 2-D (bars × configurations), got {values.ndim}-D")
    if values.shape[1] < 2:
        raise ValueError(f"matrix needs at least 2 configurations (got {values.shape[1]})")
    if not np.all(np.isfinite(values)):
        raise ValueError("matrix contains NaN or infinite values")
    return values


def _check_splits(splits: int, bars: int) -> None:
    if splits < 2 or splits % 2:
        raise ValueError(f"splits must be an even number >= 2 (got {splits})")
    if splits > MAX_SPLITS:
        raise ValueError(f"splits must be at most {MAX_SPLITS} (got {splits})")
    if splits > bars:
        raise ValueError(f"splits ({splits}) cannot exceed the number of bars ({bars})")
    if bars // splits * (splits // 2) < 2:
        raise ValueError(f"too few bars ({bars}) for {splits} splits: a half needs 2 bars")


def _sharpe_from_sums(total: FloatArray, squares: FloatArray, count: FloatArray) -> FloatArray:
    """Per-bar Sharpe ratios from sums; ±inf when flat with a mean, 0 when all zero."""
    mean = total / count
    variance = np.maximum(squares - total * mean, 0.0) / (count - 1)
    std = np.sqrt(variance)
    ratio = mean / np.where(std > 0, std, 1.0)
    flat = np.where(mean > 0, np.inf, np.where(mean < 0, -np.inf, 0.0))
    return np.where(std > 0, ratio, flat)


def _logits(
    masks: npt.NDArray[np.bool_], sums: FloatArray, squares: FloatArray, rows: int
) -> FloatArray:
    """One logit of the IS winner's relative OOS rank per combination (row of ``masks``)."""
    inside = masks.astype(np.float64)
    count = inside.sum(axis=1, keepdims=True) * rows
    in_sharpe = _sharpe_from_sums(inside @ sums, inside @ squares, count)
    outside = 1.0 - inside
    out_sharpe = _sharpe_from_sums(outside @ sums, outside @ squares, count)
    best = np.argmax(in_sharpe, axis=1)
    chosen = out_sharpe[np.arange(len(masks)), best][:, np.newaxis]
    rank = np.sum(out_sharpe < chosen, axis=1) + (np.sum(out_sharpe == chosen, axis=1) + 1) / 2
    omega = rank / (sums.shape[1] + 1)
    logits: FloatArray = np.log(omega / (1.0 - omega))
    return logits


def _combination_masks(splits: int) -> npt.NDArray[np.bool_]:
    picks = np.array(list(combinations(range(splits), splits // 2)), dtype=np.int64)
    masks = np.zeros((len(picks), splits), dtype=bool)
    np.put_along_axis(masks, picks, True, axis=1)
    return masks


def probability_of_backtest_overfitting(
    matrix: npt.ArrayLike, splits: int = DEFAULT_SPLITS
) -> BacktestOverfitting:
    """Probability of backtest overfitting by CSCV (Bailey, Borwein, López de Prado & Zhu).

    The rows (bars) are cut into ``splits`` contiguous blocks of equal length (the oldest
    T mod splits bars are dropped). For every choice of half the blocks as in-sample (IS),
    the rest being out-of-sample (OOS), the configuration with the best IS Sharpe ratio is
    ranked among all configurations by OOS Sharpe; with ω = rank / (N + 1) (rank 1 the worst,
    ties averaged) the logit is ln(ω / (1 − ω)). PBO is the share of logits ≤ 0: how often
    the IS winner is at or below the OOS median.

    Args:
        matrix: T × N per-bar returns, one column per configuration (N >= 2).
        splits: S, the number of blocks: even, 2 to 20, at most T.

    Returns:
        ``BacktestOverfitting(pbo, logits, combinations, splits)``; C(S, S/2) combinations.

    Raises:
        ValueError: for N < 2, S odd or out of range, S > T, NaNs or a non-2-D matrix.
    """
    values = _as_matrix(matrix)
    _check_splits(splits, len(values))
    rows = len(values) // splits
    blocks = values[len(values) - rows * splits :].reshape(splits, rows, values.shape[1])
    sums, squares = blocks.sum(axis=1), (blocks**2).sum(axis=1)
    masks = _combination_masks(splits)
    step = max(1, _CHUNK_ELEMENTS // values.shape[1])
    logits = np.concatenate(
        [_logits(masks[i : i + step], sums, squares, rows) for i in range(0, len(masks), step)]
    )
    return BacktestOverfitting(
        pbo=float(np.mean(logits <= 0)), logits=logits, combinations=len(masks), splits=splits
    )

"""The book measured: exposure, correlated groups and historical VaR/CVaR, as plain code.

:func:`measure` turns signed position values (a short is negative), the equity and the
symbols' daily returns into an :class:`Exposure`; :mod:`tradecast.risk.portfolio` rules on
targets with it. Everything is a share of equity, like :class:`tradecast.settings.RiskLimits`.

The choices made:

- **daily returns** (:func:`daily_returns`): close-to-close returns of whole UTC days, a day's
  close being the close of its last bar (a bar belongs to the day in which it closes, so the
  bar closing at midnight ends the day before). The day still in progress is left out, and a
  return is only taken between consecutive calendar days: a gap in the data would otherwise
  pass a several-day move off as one day's.
- **correlated groups** (:func:`correlated_groups`): single linkage. Two symbols whose Pearson
  correlation over the last ``window_days`` days both have is at least the threshold share a
  group, and so (transitively) do their partners. Fewer than 10 common days, or a flat series,
  says nothing and groups nobody. Each symbol is in exactly one group; a group of one is not a
  correlated group, so :attr:`Exposure.group_net` only has groups of two or more (the
  per-symbol cap covers a lone symbol).
- **VaR/CVaR** (:func:`historical_var`): 95%, one day, historical simulation with today's
  values: scenario ``t`` loses ``-sum_i value_i * r_i,t`` over the last ``window_days`` days
  every held symbol has. VaR is minus the lower order statistic ``sorted[floor(0.05 n)]``
  (never below 0), CVaR minus the mean of the worst ``ceil(0.05 n)`` scenarios (never below
  VaR). Fewer than 20 scenarios: unknown (None), never guessed. An empty book risks nothing
  (0, not unknown).
- **equity at or below zero**: any exposure is an infinite share of it (a zero one is 0), so
  every limit reads as breached rather than dividing by zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from tradecast.domain import Candle
from tradecast.settings import RiskLimits

ZERO = Decimal(0)
INFINITY = Decimal("Infinity")
MIN_CORRELATION_DAYS = 10
"""Fewer common days than this say nothing about a pair's correlation."""
MIN_VAR_SCENARIOS = 20
"""Fewer scenarios than this leave VaR unknown: the 5% tail would be under one day."""
Returns = Mapping[str, Mapping[date, float]]
"""Daily returns per symbol (what :func:`daily_returns` gives, per symbol)."""
AnyReturns = Mapping[str, Mapping[date, float | Decimal]]
"""Returns as floats or as their exact Decimals (converted once, for repeated VaR)."""
VAR_TAIL_EVERY = 20
"""The 5% tail: one scenario in 20."""
_DAY = timedelta(days=1)
_INSTANT = timedelta(microseconds=1)


def daily_returns(candles: Sequence[Candle], bar: timedelta) -> dict[date, float]:
    """Simple close-to-close returns of whole UTC days, keyed by the day they end.

    Args:
        candles: bars of one symbol, any order (``timestamp`` is the bar's open time).
        bar: the bars' length.

    Returns:
        ``{day: close(day) / close(day before) - 1}`` for every whole day whose previous
        calendar day is also there; empty with fewer than two whole days.
    """
    if bar <= timedelta(0):
        raise ValueError(f"bar must be a positive duration, got {bar}")
    if not candles:
        return {}
    latest_close = max(c.timestamp for c in candles) + bar
    closes: dict[date, Decimal] = {}
    for candle in sorted(candles, key=lambda c: c.timestamp):
        # A bar closing exactly at midnight is the last bar of the day before.
        closes[(candle.timestamp + bar - _INSTANT).date()] = candle.close
    # The day still in progress has no close yet.
    whole = {day: close for day, close in closes.items() if _day_end(day) <= latest_close}
    return {
        day: float(close / whole[day - _DAY] - 1)
        for day, close in sorted(whole.items())
        if day - _DAY in whole
    }


def _day_end(day: date) -> datetime:
    """Midnight (UTC) after ``day``."""
    return datetime.combine(day + _DAY, time(), tzinfo=UTC)


@dataclass(frozen=True)
class Exposure:
    """The book measured, as shares of equity (money for :attr:`values` and :attr:`equity`)."""

    equity: Decimal
    values: Mapping[str, Decimal]
    """Signed position value per symbol (a short is negative)."""
    gross: Decimal
    """Sum of ``|value|`` over equity."""
    net: Decimal
    """``|sum of values|`` over equity."""
    groups: tuple[tuple[str, ...], ...]
    """Correlated groups, singletons included: each symbol is in exactly one."""
    group_net: Mapping[str, Decimal]
    """``"+".join(group)`` -> ``|sum of values in the group|`` over equity, for every group of
    two or more symbols."""
    var: Decimal | None
    """95% one-day historical VaR over equity (None: not enough history)."""
    cvar: Decimal | None
    """95% one-day historical CVaR (expected shortfall) over equity, at least :attr:`var`."""
    days: int
    """Scenarios (days) VaR used."""


def measure(
    values: Mapping[str, Decimal],
    equity: Decimal,
    returns: Returns,
    limits: RiskLimits,
) -> Exposure:
    """Exposure, correlated groups and VaR/CVaR of ``values`` against ``equity``."""
    groups = correlated_groups(
        returns, values, float(limits.correlation_threshold), limits.risk_window_days
    )
    return measure_grouped(values, equity, returns, limits.risk_window_days, groups)


def measure_grouped(
    values: Mapping[str, Decimal],
    equity: Decimal,
    returns: AnyReturns,
    window_days: int,
    groups: tuple[tuple[str, ...], ...],
) -> Exposure:
    """:func:`measure` with the groups already known (they depend on returns, not values)."""
    var, cvar, days = historical_var(values, returns, window_days)
    ordered = [value for _, value in sorted(values.items())]  # sums rounded the same way
    return Exposure(
        equity=equity,
        values=dict(values),
        gross=share(sum((abs(v) for v in ordered), ZERO), equity),
        net=share(abs(sum(ordered, ZERO)), equity),
        groups=groups,
        group_net={
            "+".join(group): share(abs(sum((values.get(s, ZERO) for s in group), ZERO)), equity)
            for group in groups
            if len(group) > 1
        },
        var=None if var is None else share(var, equity),
        cvar=None if cvar is None else share(cvar, equity),
        days=days,
    )


def share(amount: Decimal, equity: Decimal) -> Decimal:
    """``amount / equity``; with no equity left, any exposure is infinite (none is 0)."""
    if equity <= 0:
        return INFINITY if amount > 0 else ZERO
    return amount / equity


def correlated_groups(
    returns: Returns,
    symbols: Iterable[str],
    threshold: float,
    window_days: int,
) -> tuple[tuple[str, ...], ...]:
    """Single-linkage groups of ``symbols`` whose daily returns correlate at ``threshold`` or
    more (over the last ``window_days`` days each pair has in common); sorted."""
    names = sorted(set(symbols))
    parent = {name: name for name in names}

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            rho = _correlation(returns.get(first, {}), returns.get(second, {}), window_days)
            if rho is not None and rho >= threshold:
                a, b = sorted((root(first), root(second)))
                parent[b] = a
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(root(name), []).append(name)
    return tuple(sorted(tuple(group) for group in groups.values()))


def _correlation(
    first: Mapping[date, float], second: Mapping[date, float], window_days: int
) -> float | None:
    """Pearson correlation over the last ``window_days`` common days (None: too few, flat)."""
    common = (d for d in first.keys() & second.keys() if _finite(first[d], second[d]))
    days = sorted(common)[-window_days:]
    if len(days) < MIN_CORRELATION_DAYS:
        return None
    xs = [first[d] for d in days]
    ys = [second[d] for d in days]
    mean_x, mean_y = math.fsum(xs) / len(xs), math.fsum(ys) / len(ys)
    cov = math.fsum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    var_x = math.fsum((x - mean_x) ** 2 for x in xs)
    var_y = math.fsum((y - mean_y) ** 2 for y in ys)
    if var_x <= 0 or var_y <= 0 or not math.isfinite(cov):
        return None  # a flat series has no correlation with anything
    return cov / math.sqrt(var_x * var_y)


def _finite(*numbers: float) -> bool:
    return all(math.isfinite(x) for x in numbers)


def scenario_days(held: Iterable[str], returns: AnyReturns, window_days: int) -> list[date]:
    """The last ``window_days`` days every ``held`` symbol has a (finite) return for, in
    order."""
    common: set[date] | None = None
    for symbol in held:
        days = {day for day, r in returns.get(symbol, {}).items() if math.isfinite(r)}
        common = days if common is None else common & days
    return sorted(common or ())[-window_days:]


def historical_var(
    values: Mapping[str, Decimal],
    returns: AnyReturns,
    window_days: int,
) -> tuple[Decimal | None, Decimal | None, int]:
    """95% one-day historical VaR and CVaR of ``values`` in quote money, and the scenarios.

    Symbols with a zero value are ignored. Returns ``(None, None, n)`` with fewer than 20
    scenarios, ``(0, 0, 0)`` for an empty book.
    """
    # Sorted: the same book gives the same Decimal sums whatever order it came in.
    held = {symbol: value for symbol, value in sorted(values.items()) if value != 0}
    if not held:
        return ZERO, ZERO, 0
    days = scenario_days(held, returns, window_days)
    n = len(days)
    if n < MIN_VAR_SCENARIOS:
        return None, None, n
    pnl = sorted(
        sum((value * Decimal(returns[symbol][day]) for symbol, value in held.items()), ZERO)
        for day in days
    )
    var = max(-pnl[n // VAR_TAIL_EVERY], ZERO)  # floor(0.05 n): the lower order statistic
    worst = pnl[: -(-n // VAR_TAIL_EVERY)]  # ceil(0.05 n)
    cvar = max(-sum(worst, ZERO) / len(worst), var)
    return var, cvar, n

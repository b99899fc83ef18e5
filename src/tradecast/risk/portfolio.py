"""The portfolio gate: pure code that rules on a tick's target holdings for the whole book.

:func:`check_portfolio` takes the signed holdings the desk wants after this tick (a short is
negative), the one portfolio, the limits (:class:`tradecast.settings.RiskLimits`), each
symbol's daily returns and the time, and returns the holdings it approves, with reasons. It
sits beside the per-order gate (:mod:`tradecast.risk.gate`), which still rules on every order
the targets turn into (exchange steps, order notional, cash). The measurement is
:mod:`tradecast.risk.exposure`; its names are re-exported here.

What it enforces, in this order, and the choices made:

- **reductions pass**: a target that moves a holding toward zero without crossing it is always
  approved (a lock that traps a losing position makes the loss worse); a target across zero
  is an exit, which passes, plus a new position the other way, which is an increase.
- **kill switch**: nothing trades; every target stays at the current holding.
- **shorts off** (``shorts_allowed=False``): no short is opened or added to; a short already
  held may still be bought back.
- **max drawdown lock** and **daily loss limit** (as in the per-order gate: equity at the
  targets' prices at or below ``peak * (1 - max_drawdown_pct)`` or ``day_start * (1 -
  daily_loss_limit_pct)``, a new UTC day restarting the day), and **no equity left**: no
  increases.
- **cooldown**: no increase in a symbol within ``cooldown_minutes`` of its last stop-out.
- **max open positions**: a symbol not held after the exits opens only while fewer than
  ``max_open_positions`` are held, in the targets' order (so that the book's room is not
  counted for a buy the per-order gate would refuse).
- **max position**: ``|value| <= max_position_pct * equity``, each increase clipped to it, the
  equity being the least it can be after this tick's costs. A holding already above the cap
  is not forced down.
- **the book's limits** (gross, net, every correlated group's net, VaR, CVaR, and the lock
  lines after the costs): the increases left are scaled by ONE factor ``s`` in [0, 1], the
  largest that bisection (30 steps, in steps of 1e-9) finds with every limit holding after the
  whole set: reductions at full size, increases times ``s``, equity less ``fee_rate`` of the
  traded notional. Every candidate is measured, so the answer is one that was verified. If
  the reductions alone breach a limit, no increase is approved: the gate rules on what the
  targets add and never forces positions down. One factor for all keeps the desk's relative
  sizing, and is deterministic (no optimiser picks winners).
- **VaR history**: when the book's VaR after the targets cannot be computed (fewer than 20
  common days of returns), increases in symbols without that history are refused (their own
  returns first, then, longest history first, the new symbols that leave fewer than 20 days
  in common with the book), never waved through. If the book held before the tick already
  lacks the history, the VaR and CVaR limits cannot be checked and a note says so.

Quantities are not rounded to exchange steps (the per-order gate rounds DOWN, which only
shrinks increases), and no approved target goes beyond what was asked or flips a sign that
was not asked to flip. Every shrink says why, per symbol and book-wide.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal, localcontext

from tradecast.domain import Portfolio
from tradecast.risk.exposure import (
    MIN_VAR_SCENARIOS,
    AnyReturns,
    Exposure,
    Returns,
    correlated_groups,
    daily_returns,
    historical_var,
    measure,
    measure_grouped,
    scenario_days,
    share,
)
from tradecast.settings import RiskLimits

__all__ = [
    "Exposure",
    "PortfolioVerdict",
    "Target",
    "check_portfolio",
    "correlated_groups",
    "daily_returns",
    "historical_var",
    "measure",
]

ZERO = Decimal(0)
STEPS = 10**9
"""The scale factor is searched in steps of 1e-9 (30 bisection steps)."""
_STEP = Decimal(1).scaleb(-9)


@dataclass(frozen=True)
class Target:
    """The signed holding wanted in ``symbol`` after this tick, judged at ``price``."""

    symbol: str
    quantity: Decimal
    """Signed target holding (a short is negative)."""
    price: Decimal
    """The mark it is judged at (> 0)."""

    def __post_init__(self) -> None:
        if not self.quantity.is_finite():
            raise ValueError(f"target quantity of {self.symbol} must be finite")
        if not self.price.is_finite() or self.price <= 0:
            raise ValueError(f"price of {self.symbol} must be finite and above 0")


@dataclass(frozen=True)
class PortfolioVerdict:
    """The approved targets, why any was shrunk, and the book before and after."""

    targets: Mapping[str, Decimal]
    """Approved signed target quantity for every input symbol."""
    reasons: Mapping[str, tuple[str, ...]]
    """Per input symbol: why it was shrunk or blocked (empty if approved as asked)."""
    notes: tuple[str, ...]
    """Book-wide notes (locks, scaling, VaR history)."""
    before: Exposure
    after: Exposure
    scale: float
    """The factor the increases left after the per-symbol rules were scaled by (1.0: all of
    them, 0: none). 0 under the kill switch, when no increase is left, or when reductions
    alone breach a limit; 1.0 when nothing asks to increase and the book is within limits.
    Above 0 only if the book after the targets was verified within every limit."""


@dataclass
class _Plan:
    """One symbol's move: ``current -> base`` (an exit or reduction, always approved), then
    ``base -> base + inc`` (the increase, away from zero, which the rules may shrink)."""

    symbol: str
    price: Decimal
    current: Decimal
    asked: Decimal
    base: Decimal
    inc: Decimal
    reasons: list[str] = field(default_factory=list)
    wanted: bool = False
    """Whether an increase was asked (before any rule shrank it)."""

    def __post_init__(self) -> None:
        self.wanted = self.inc != 0

    def final(self, scale: Decimal) -> Decimal:
        return self.base + self.inc * scale

    def block(self, reason: str) -> None:
        """No increase, for ``reason`` (said only when there was one to block)."""
        if self.inc:
            self.reasons.append(reason)
            self.inc = ZERO


def _split(symbol: str, price: Decimal, current: Decimal, asked: Decimal) -> _Plan:
    if asked == 0 or (current * asked > 0 and abs(asked) <= abs(current)):
        base, inc = asked, ZERO  # a reduction or an exit
    elif current * asked > 0:
        base, inc = current, asked - current  # adding to the holding
    else:
        base, inc = ZERO, asked  # opening, or crossing zero: exit, then open the other way
    return _Plan(symbol, price, current, asked, base, inc)


@dataclass(frozen=True)
class _Book:
    """The portfolio at the targets' prices: signed holdings, equity and the lock lines."""

    prices: Mapping[str, Decimal]
    holdings: Mapping[str, Decimal]
    equity: Decimal
    peak: Decimal
    day_start: Decimal

    @classmethod
    def of(cls, portfolio: Portfolio, targets: Sequence[Target], now: datetime) -> _Book:
        prices: dict[str, Decimal] = {**portfolio.prices, **{t.symbol: t.price for t in targets}}
        holdings: dict[str, Decimal] = {}
        for p in portfolio.positions:
            prices.setdefault(p.symbol, p.avg_price)
            holdings[p.symbol] = holdings.get(p.symbol, ZERO) + p.signed_quantity
        for t in targets:
            holdings.setdefault(t.symbol, ZERO)
        equity = portfolio.cash + sum((q * prices[s] for s, q in holdings.items()), ZERO)
        new_day = portfolio.timestamp is None or now.date() > portfolio.timestamp.date()
        day_start = (
            equity if new_day or portfolio.day_start_equity is None else portfolio.day_start_equity
        )
        return cls(
            prices={s: prices[s] for s in sorted(holdings)},
            holdings=dict(sorted(holdings.items())),
            equity=equity,
            peak=max(equity, portfolio.peak_equity or equity),
            day_start=day_start,
        )

    def values(self, quantities: Mapping[str, Decimal]) -> dict[str, Decimal]:
        return {s: quantities.get(s, q) * self.prices[s] for s, q in self.holdings.items()}


def check_portfolio(
    targets: Sequence[Target],
    portfolio: Portfolio,
    limits: RiskLimits,
    returns: Returns,
    now: datetime,
    *,
    fee_rate: Decimal = ZERO,
    shorts_allowed: bool = False,
) -> PortfolioVerdict:
    """Approve, shrink or block each target so that the book stays within every limit."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    if not fee_rate.is_finite() or fee_rate < 0:
        raise ValueError(f"fee_rate must be 0 or more, got {fee_rate}")
    symbols = [t.symbol for t in targets]
    if len(set(symbols)) != len(symbols):
        raise ValueError(f"a symbol has two targets: {', '.join(symbols)}")
    book = _Book.of(portfolio, targets, now)
    groups = correlated_groups(
        returns, book.holdings, float(limits.correlation_threshold), limits.risk_window_days
    )
    before = measure_grouped(book.values({}), book.equity, returns, limits.risk_window_days, groups)
    plans = [_split(t.symbol, t.price, book.holdings[t.symbol], t.quantity) for t in targets]
    notes: list[str] = []
    if limits.kill_switch:
        notes.append("kill switch is on: nothing trades")
        for plan in plans:
            if plan.asked != plan.current:
                plan.reasons.append("kill switch is on: nothing trades until an admin turns it off")
        return _verdict(plans, book.holdings, notes, before, before, ZERO)
    for plan in plans:
        if plan.asked < 0 and not shorts_allowed:
            plan.block(f"shorts are off: target {_qty(plan.asked)} clipped to {_qty(plan.base)}")
    for lock in _locks(book, limits):
        notes.append(lock)
        for plan in plans:
            plan.block(lock)
    for plan in plans:
        stopped = portfolio.stop_outs.get(plan.symbol)
        if stopped is not None and limits.cooldown_minutes > 0:
            until = stopped + timedelta(minutes=limits.cooldown_minutes)
            if now < until:
                plan.block(
                    f"cooldown: {plan.symbol} hit its stop-loss at {stopped.isoformat()}; "
                    f"no increase until {until.isoformat()} ({limits.cooldown_minutes} min)"
                )
    _cap_open_positions(plans, book, limits)
    _cap_positions(plans, book, limits, fee_rate)
    _refuse_without_history(plans, book, returns, limits, notes)
    # Each candidate scale is measured; converting the returns once makes that cheap.
    exact = {
        symbol: {day: Decimal(r) for day, r in returns[symbol].items()}
        for symbol in book.holdings
        if symbol in returns
    }
    scale = _scale(plans, book, limits, exact, groups, fee_rate, notes)
    after = _after(plans, book, exact, limits, groups, fee_rate, scale)
    finals = {p.symbol: p.final(scale) for p in plans}
    return _verdict(plans, finals, notes, before, after.exposure, scale)


def _locks(book: _Book, limits: RiskLimits) -> list[str]:
    """Why no increase may be made at all (empty: none)."""
    equity = book.equity
    if equity <= 0:
        return [f"equity is {_cash(equity)}: no position may grow"]
    locks = []
    if equity <= book.peak * (1 - limits.max_drawdown_pct):
        locks.append(
            f"max drawdown lock: equity {_cash(equity)} is {_pct(1 - equity / book.peak)} below"
            f" the peak {_cash(book.peak)} (limit {_pct(limits.max_drawdown_pct)}); "
            "only reductions are allowed"
        )
    if equity <= book.day_start * (1 - limits.daily_loss_limit_pct):
        locks.append(
            f"daily loss limit: equity {_cash(equity)} is "
            f"{_pct(1 - equity / book.day_start)} below the day's start "
            f"{_cash(book.day_start)} (limit {_pct(limits.daily_loss_limit_pct)}); "
            "only reductions are allowed until tomorrow (UTC)"
        )
    return locks


def _cap_open_positions(plans: list[_Plan], book: _Book, limits: RiskLimits) -> None:
    """A symbol not held after this tick's exits may open only while fewer than
    ``max_open_positions`` are held (the per-order gate would refuse it anyway); the targets'
    order decides which open first."""
    planned = {p.symbol: p.base for p in plans}
    held = {s for s, q in book.holdings.items() if planned.get(s, q) != 0}
    for plan in plans:
        if not plan.inc or plan.base != 0:
            continue
        if len(held) >= limits.max_open_positions:
            plan.block(
                f"max open positions {limits.max_open_positions}: "
                f"{', '.join(sorted(held))} are open"
            )
        else:
            held.add(plan.symbol)


def _cap_positions(plans: list[_Plan], book: _Book, limits: RiskLimits, fee_rate: Decimal) -> None:
    """Clip each increase to ``max_position_pct`` of the least equity this tick can leave
    (every asked trade at full size paying its costs), so the cap holds at any scale."""
    traded = sum((p.price * (abs(p.base - p.current) + abs(p.inc)) for p in plans), ZERO)
    equity = book.equity - fee_rate * traded
    room = limits.max_position_pct * equity
    for plan in plans:
        if not plan.inc:
            continue
        why = f"max position {_pct(limits.max_position_pct)} of equity {_cash(equity)}"
        if room <= 0:
            plan.block(f"{why}: no room")
            continue
        with localcontext() as ctx:
            ctx.rounding = ROUND_DOWN  # the clipped value stays at or under the cap
            most = room / plan.price
        if abs(plan.base) >= most:
            plan.block(f"{why}: {plan.symbol} is already at or above it")
        elif abs(plan.base + plan.inc) > most:
            plan.inc = (most - abs(plan.base)) * (1 if plan.inc > 0 else -1)
            plan.reasons.append(
                f"{why}: target {_qty(plan.asked)} clipped to {_qty(plan.final(Decimal(1)))}"
            )


def _refuse_without_history(
    plans: list[_Plan], book: _Book, returns: Returns, limits: RiskLimits, notes: list[str]
) -> None:
    """Refuse the increases that leave the book's VaR unknown for lack of their history."""
    window = limits.risk_window_days

    def var_days(held: set[str]) -> int:
        return len(scenario_days(held, returns, window)) if held else MIN_VAR_SCENARIOS

    growing = [p for p in plans if p.inc]
    after = {p.symbol for p in plans if p.base or p.inc} | {
        s for s, q in book.holdings.items() if q and s not in {p.symbol for p in plans}
    }
    if not growing or var_days(after) >= MIN_VAR_SCENARIOS:
        return
    for plan in growing:
        own = min(len(returns.get(plan.symbol, {})), window)
        if own < MIN_VAR_SCENARIOS:
            plan.block(
                f"not enough history for VaR: {plan.symbol} has {own} days of returns "
                f"({MIN_VAR_SCENARIOS} needed)"
            )
    held = after - {p.symbol for p in plans if not p.base}  # the book without its new names
    if var_days(held) < MIN_VAR_SCENARIOS:
        if any(p.inc for p in plans):
            notes.append(
                f"VaR unknown: the book holds only {var_days(held)} days of returns in common "
                f"({MIN_VAR_SCENARIOS} needed); the VaR and CVaR limits could not be checked"
            )
        return
    # The new names, longest history first, while the book keeps 20 days in common.
    new = sorted(
        (p for p in plans if p.inc and not p.base),
        key=lambda p: (-len(returns.get(p.symbol, {})), p.symbol),
    )
    for plan in new:
        days = var_days(held | {plan.symbol})
        if days >= MIN_VAR_SCENARIOS:
            held.add(plan.symbol)
        else:
            plan.block(
                f"not enough history for VaR: {plan.symbol} has {days} days of returns in "
                f"common with the book ({MIN_VAR_SCENARIOS} needed)"
            )


@dataclass(frozen=True)
class _After:
    """The book at one scale factor, and the limits it breaches (name, measured)."""

    exposure: Exposure
    breaches: tuple[tuple[str, str], ...]


def _after(
    plans: list[_Plan],
    book: _Book,
    returns: AnyReturns,
    limits: RiskLimits,
    groups: tuple[tuple[str, ...], ...],
    fee_rate: Decimal,
    scale: Decimal,
) -> _After:
    finals = {p.symbol: p.final(scale) for p in plans}
    traded = sum((p.price * abs(finals[p.symbol] - p.current) for p in plans), ZERO)
    equity = book.equity - fee_rate * traded
    ex = measure_grouped(book.values(finals), equity, returns, limits.risk_window_days, groups)
    checks: list[tuple[str, Decimal | None, Decimal]] = [
        ("gross exposure", ex.gross, limits.max_gross_exposure_pct),
        ("net exposure", ex.net, limits.max_net_exposure_pct),
        *(
            (f"correlated group {name}", value, limits.max_correlated_exposure_pct)
            for name, value in ex.group_net.items()
        ),
        ("VaR", ex.var, limits.max_var_pct),
        ("CVaR", ex.cvar, limits.max_cvar_pct),
    ]
    if scale > 0:
        checks += [
            (
                f"max position ({p.symbol})",
                share(abs(ex.values[p.symbol]), equity),
                limits.max_position_pct,
            )
            for p in plans
            if p.inc
        ]
    breaches = [
        (f"{name} cap {_pct(cap)}", f"{name} {_pct(value)} over its cap {_pct(cap)}")
        for name, value, cap in checks
        if value is not None and value > cap
    ]
    if equity <= 0:
        breaches.append(("equity after costs", f"equity after costs {_cash(equity)}"))
    else:
        for line, name in (
            (book.peak * (1 - limits.max_drawdown_pct), "max drawdown lock"),
            (book.day_start * (1 - limits.daily_loss_limit_pct), "daily loss limit"),
        ):
            if equity <= line:
                detail = f"equity after costs {_cash(equity)} at or below the {name} line"
                breaches.append((name, f"{detail} {_cash(line)}"))
    return _After(ex, tuple(breaches))


def _scale(
    plans: list[_Plan],
    book: _Book,
    limits: RiskLimits,
    returns: AnyReturns,
    groups: tuple[tuple[str, ...], ...],
    fee_rate: Decimal,
    notes: list[str],
) -> Decimal:
    """The largest verified factor for the increases left (see the module's docstring)."""

    def at(steps: int) -> _After:
        return _after(plans, book, returns, limits, groups, fee_rate, steps * _STEP)

    growing = [p for p in plans if p.inc]
    floor = at(0)
    if floor.breaches:
        why = "; ".join(detail for _, detail in floor.breaches)
        if growing:
            notes.append(f"reductions alone leave {why}: no increase approved")
            for plan in growing:
                plan.block(f"the book is over a limit without it ({why})")
        else:
            notes.append(f"the book is over a limit ({why}); it is not forced down")
        return ZERO
    if not growing:
        # Nothing left to scale: all of nothing asked is approved, a blocked ask is not.
        return ZERO if any(p.wanted for p in plans) else Decimal(1)
    high = at(STEPS)
    if not high.breaches:
        return Decimal(1)
    low_steps, high_steps = 0, STEPS
    while high_steps - low_steps > 1:  # invariant: low is verified within limits, high is not
        middle = (low_steps + high_steps) // 2
        candidate = at(middle)
        if candidate.breaches:
            high_steps, high = middle, candidate
        else:
            low_steps = middle
    scale = low_steps * _STEP
    binding = ", ".join(dict.fromkeys(name for name, _ in high.breaches))
    notes.append(f"{binding}: increases scaled to {_pct(scale)}")
    for plan in growing:
        asked = plan.final(Decimal(1))
        if scale:
            plan.reasons.append(
                f"{binding}: increase scaled to {_pct(scale)}, target {_qty(asked)} -> "
                f"{_qty(plan.final(scale))}"
            )
        else:
            plan.reasons.append(f"{binding}: no room for an increase")
    return scale


def _verdict(
    plans: list[_Plan],
    targets: Mapping[str, Decimal],
    notes: list[str],
    before: Exposure,
    after: Exposure,
    scale: Decimal,
) -> PortfolioVerdict:
    return PortfolioVerdict(
        targets={p.symbol: targets[p.symbol] for p in plans},
        reasons={p.symbol: tuple(p.reasons) for p in plans},
        notes=tuple(notes),
        before=before,
        after=after,
        scale=float(scale),
    )


def _pct(fraction: Decimal) -> str:
    if not fraction.is_finite():
        return "infinite"
    return f"{_round(fraction * 100, '0.01').normalize():f}%"


def _cash(amount: Decimal) -> str:
    return f"{_round(amount, '0.01'):f}"


def _qty(quantity: Decimal) -> str:
    return f"{_round(quantity, '0.00000001').normalize():f}"


def _round(amount: Decimal, places: str) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 80  # quantize fails on a result longer than the context's precision
        return amount.quantize(Decimal(places))

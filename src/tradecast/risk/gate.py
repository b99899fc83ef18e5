"""The hard risk gate: pure code between any order intent and the broker.

:func:`check_order` rules on one intent against the portfolio, the limits
(:class:`tradecast.settings.RiskLimits`), the exchange's rules and the current price. It never
looks at who asked or why: no LLM output and no chat message can talk it round.

What it enforces, and the choices made:

- **kill switch**: every order is rejected, buys and sells alike ("stop trading"). Positions
  stay protected by the stop-loss / take-profit exits the broker runs on prices.
- **max drawdown lock** (equity at or below ``peak * (1 - max_drawdown_pct)``) and **daily loss
  limit** (equity at or below ``day_start * (1 - daily_loss_limit_pct)``): no buys. Sells stay
  allowed, because they only reduce exposure and a lock that traps a losing position would
  make the loss worse. A buy whose own costs would push equity across either line is rejected.
- **cooldown**: no buy of a symbol within ``cooldown_minutes`` of its last stop-loss exit (per
  symbol, like freqtrade's cooldown). Sells are allowed.
- **max open positions**: a buy may not open a new symbol when that many are open (resting buy
  orders in other symbols count as open).
- **max position % of equity** (position value after the fill, resting buys included, at the
  current price, against equity after the fill's fees and slippage), **max order notional**
  (at the fill price, slippage included), and the cash available: an oversize buy is shrunk to
  what they all allow, rounded DOWN to the exchange step; below the exchange minimums it is
  rejected.
- **sells**: only what is held and not already offered by a resting sell (spot, no shorts),
  shrunk to ``max_order_notional`` like buys; stop-loss/take-profit belong on buys.

With a **margin account** (``MarketContext.margin`` enabled; None means spot and nothing above
changes) a SELL with a long held closes at most the long (shrunk to what is held, like spot):
an order never goes through zero. A SELL with nothing held long opens (or adds to) a short and
a BUY of a symbol held short covers it, by the rules in :mod:`tradecast.risk.gate_shorts`.

The gate rules on what an order adds: a position grown past its limit by price moves is not
forced down. Every rejection and every shrink carries human-readable reasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any, ClassVar

from pydantic import ValidationError

from tradecast.broker.market_rules import CostModel, MarketRules, money, tidy
from tradecast.domain import (
    DomainModel,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    Portfolio,
    Price,
    RiskVerdict,
    Side,
    Symbol,
)
from tradecast.errors import RiskLimitsError
from tradecast.settings import MarginConfig, RiskLimits

ZERO = Decimal(0)


class MarketContext(DomainModel):
    """What the gate knows about the market for one order."""

    symbol: Symbol
    price: Price
    """The current price (the broker's mark) the order is judged at."""
    rules: MarketRules
    costs: CostModel = CostModel()
    open_orders: tuple[Order, ...] = ()
    """Orders resting at the broker (any symbol); they count against the limits."""
    margin: MarginConfig | None = None
    """The account's margin terms (None, or not enabled: spot, a SELL never opens a short)."""

    @property
    def shorts_allowed(self) -> bool:
        """Whether a SELL with nothing held may open a short."""
        return self.margin is not None and self.margin.enabled


def check_order(
    intent: OrderIntent,
    portfolio: Portfolio,
    limits: RiskLimits,
    market: MarketContext,
    now: datetime,
) -> RiskVerdict:
    """Approve, shrink or reject ``intent``; every rejection and shrink says why."""
    # Imported here, not at the top: the short rules build on this module's view, buy rules,
    # sizer and verdicts.
    from tradecast.risk.gate_shorts import check_cover, check_short

    if market.symbol != intent.symbol:
        raise ValueError(f"market context is for {market.symbol}, the order for {intent.symbol}")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    if limits.kill_switch:
        return _reject("kill switch is on: no new orders until an admin turns it off")
    intent, notes = _limit_on_tick(intent, market.rules)
    view = _View.of(portfolio, market, now)
    if intent.side is Side.SELL:
        if market.shorts_allowed and view.held == 0:
            return check_short(intent, view, limits, market, now, notes)
        return _check_sell(intent, view, limits, market, notes)
    buy = _BuySizer(intent, view, limits, market)
    if view.short > 0:
        return check_cover(buy, notes)
    return buy.verdict(now, notes)


# --- the portfolio as the gate sees it ---------------------------------------------------


@dataclass(frozen=True)
class _View:
    """Equity, watermarks and exposure of the portfolio at the current price."""

    equity: Decimal
    peak: Decimal
    day_start: Decimal
    held: Decimal
    pending_buy_qty: Decimal
    pending_sell_qty: Decimal
    pending_buy_cash: Decimal
    open_symbols: frozenset[str]
    cash: Decimal
    last_stop: datetime | None
    short: Decimal
    """The short held in the symbol (0: none)."""
    signed: Mapping[str, Decimal]
    prices: Mapping[str, Decimal]
    """Every held symbol's price (the current one for the order's symbol)."""

    @classmethod
    def of(cls, portfolio: Portfolio, market: MarketContext, now: datetime) -> _View:
        prices: Mapping[str, Decimal] = {
            **{p.symbol: p.avg_price for p in portfolio.positions},
            **portfolio.prices,
            market.symbol: market.price,
        }
        equity = portfolio.cash + sum(
            (p.signed_quantity * prices[p.symbol] for p in portfolio.positions), ZERO
        )
        new_day = portfolio.timestamp is None or now.date() > portfolio.timestamp.date()
        day_start = (
            equity
            if new_day or portfolio.day_start_equity is None
            else (portfolio.day_start_equity)
        )
        position = portfolio.position(market.symbol)
        short = portfolio.short(market.symbol)
        resting = [o for o in market.open_orders if o.status is OrderStatus.OPEN]
        buys = [o for o in resting if o.intent.side is Side.BUY]
        mine = [o for o in resting if o.intent.symbol == market.symbol]
        return cls(
            equity=equity,
            peak=max(equity, portfolio.peak_equity or equity),
            day_start=day_start,
            held=position.quantity if position else ZERO,
            pending_buy_qty=_total_qty(o for o in mine if o.intent.side is Side.BUY),
            pending_sell_qty=_total_qty(o for o in mine if o.intent.side is Side.SELL),
            pending_buy_cash=sum((_reserved_cash(o, market.costs) for o in buys), ZERO),
            open_symbols=frozenset(
                {p.symbol for p in portfolio.positions if p.quantity > 0}
                | {o.intent.symbol for o in buys}
            ),
            cash=portfolio.cash,
            last_stop=portfolio.stop_outs.get(market.symbol),
            short=short.quantity if short else ZERO,
            signed={p.symbol: p.signed_quantity for p in portfolio.positions if p.quantity > 0},
            prices=prices,
        )


def _total_qty(orders: Any) -> Decimal:
    return sum((o.intent.quantity for o in orders), ZERO)


def _reserved_cash(order: Order, costs: CostModel) -> Decimal:
    limit = order.intent.limit_price or ZERO
    notional = money(order.intent.quantity * limit)
    return notional + costs.fee(notional)


# --- buys ---------------------------------------------------------------------------------


def _buy_blockers(
    intent: OrderIntent, view: _View, limits: RiskLimits, market: MarketContext, now: datetime
) -> list[str]:
    if view.equity <= 0:
        return [f"equity is {_cash(view.equity)}: nothing may be bought"]
    reasons = []
    drawdown_line = view.peak * (1 - limits.max_drawdown_pct)
    if view.equity <= drawdown_line:
        reasons.append(
            f"max drawdown lock: equity {_cash(view.equity)} is {_pct(1 - view.equity / view.peak)}"
            f" below the peak {_cash(view.peak)} (limit {_pct(limits.max_drawdown_pct)}); "
            "only sells are allowed"
        )
    daily_line = view.day_start * (1 - limits.daily_loss_limit_pct)
    if view.equity <= daily_line:
        reasons.append(
            f"daily loss limit: equity {_cash(view.equity)} is "
            f"{_pct(1 - view.equity / view.day_start)} below the day's start "
            f"{_cash(view.day_start)} (limit {_pct(limits.daily_loss_limit_pct)}); "
            "only sells are allowed until tomorrow (UTC)"
        )
    if view.last_stop is not None and limits.cooldown_minutes > 0:
        until = view.last_stop + timedelta(minutes=limits.cooldown_minutes)
        if now < until:
            reasons.append(
                f"cooldown: {intent.symbol} hit its stop-loss at {view.last_stop.isoformat()}; "
                f"no buys until {until.isoformat()} ({limits.cooldown_minutes} min)"
            )
    opens_new = view.held == 0 and view.short == 0 and view.pending_buy_qty == 0
    if opens_new and len(view.open_symbols) >= limits.max_open_positions:
        reasons.append(
            f"max open positions: {len(view.open_symbols)} open "
            f"({', '.join(sorted(view.open_symbols))}), limit {limits.max_open_positions}"
        )
    entry = intent.limit_price if intent.order_type is OrderType.LIMIT else market.price
    if intent.stop_loss is not None and entry is not None and intent.stop_loss >= entry:
        reasons.append(f"stop_loss {intent.stop_loss} must be below the entry price {entry}")
    if intent.take_profit is not None and entry is not None and intent.take_profit <= entry:
        reasons.append(f"take_profit {intent.take_profit} must be above the entry price {entry}")
    return reasons


class _Sizer:
    """Sizes an order that opens or grows a position (a buy, or a short on a margin account)
    exactly as the broker will fill it (same slippage, fee and rounding).

    The order notional and position share limits, the bisection and the lock lines are the
    same on both sides; a subclass supplies what blocks the order outright, its side's fill
    price, what the symbol already holds on that side, and how the order is funded (the cash
    a buy needs, the initial margin a short needs).
    """

    side: ClassVar[Side]
    nothing_left: ClassVar[str]
    """The reason given when no quantity is left within the limits."""

    def __init__(
        self, intent: OrderIntent, view: _View, limits: RiskLimits, market: MarketContext
    ) -> None:
        self.intent, self.view, self.limits, self.market = intent, view, limits, market
        limit = intent.limit_price
        self.entry = (
            market.price if intent.order_type is OrderType.MARKET else (limit or market.price)
        )
        self.fee_rate = market.costs.fee_bps / Decimal(10_000)

    def blockers(self, now: datetime) -> list[str]:
        """Why the order may not go through at any size (locks, cooldown, ...)."""
        raise NotImplementedError

    def fill_price(self, quantity: Decimal) -> Decimal:
        """The broker's fill price for ``quantity``."""
        raise NotImplementedError

    def holding(self) -> Decimal:
        """The quantity the symbol already holds on this side (resting orders included)."""
        raise NotImplementedError

    def funding_caps(self, price: Decimal, cost_per_unit: Decimal) -> dict[str, Decimal]:
        """The funding limit (cash or margin) as a bound at ``price``, by limit name."""
        raise NotImplementedError

    def funded(self, quantity: Decimal, price: Decimal, notional: Decimal, fee: Decimal) -> bool:
        """Exact check of the funding limit at ``quantity`` filled at ``price``."""
        raise NotImplementedError

    def adverse(self, paid: Decimal, at_mark: Decimal) -> Decimal:
        """How much worse than the current price ``paid`` is for this side (never negative)."""
        return max(paid - at_mark if self.side is Side.BUY else at_mark - paid, ZERO)

    def cost(self, quantity: Decimal) -> Decimal:
        """Equity lost at the fill: the fee plus filling worse than the current price."""
        notional = money(quantity * self.fill_price(quantity))
        return self.market.costs.fee(notional) + self.adverse(
            notional, quantity * self.market.price
        )

    def caps(self, price: Decimal) -> dict[str, Decimal]:
        """The most each limit allows if every unit filled at ``price``, by limit name.

        At the smallest fill price (one step's) these are upper bounds on what each limit
        allows; the exact size comes from :meth:`largest_within_limits`.
        """
        v, lim, p = self.view, self.limits, self.market.price
        # Bounds cost(q) / q: the fee plus filling worse than the current price.
        cost_per_unit = price * self.fee_rate + self.adverse(price, p)
        position_room = lim.max_position_pct * v.equity - self.holding() * p
        return {
            f"max order notional {lim.max_order_notional}": lim.max_order_notional / price,
            f"max position {_pct(lim.max_position_pct)} of equity {_cash(v.equity)}": max(
                position_room / (p + lim.max_position_pct * cost_per_unit), ZERO
            ),
            **self.funding_caps(price, cost_per_unit),
        }

    def within_limits(self, quantity: Decimal) -> bool:
        """Exact check of notional, position share and funding at ``quantity``."""
        lim = self.limits
        price = self.fill_price(quantity)
        notional = money(quantity * price)
        fee = self.market.costs.fee(notional)
        position_value = (self.holding() + quantity) * self.market.price
        return (
            notional <= lim.max_order_notional
            and position_value <= lim.max_position_pct * (self.view.equity - self.cost(quantity))
            and self.funded(quantity, price, notional, fee)
        )

    def largest_within_limits(self, bound: Decimal) -> Decimal:
        """The largest whole number of steps up to ``bound`` (plus one step of slack for
        rounding) within every limit, by bisection: each limit only tightens with size."""
        return _largest(self.market.rules, self.intent.quantity, bound, self.within_limits)

    def lock_lines_crossed(self, quantity: Decimal) -> list[str]:
        """The locks this order's own costs would trigger."""
        after = self.view.equity - self.cost(quantity)
        crossed = []
        if after <= self.view.peak * (1 - self.limits.max_drawdown_pct):
            crossed.append("the trade's fees and slippage would cross the max drawdown lock")
        if after <= self.view.day_start * (1 - self.limits.daily_loss_limit_pct):
            crossed.append("the trade's fees and slippage would cross the daily loss limit")
        return crossed

    def verdict(self, now: datetime, notes: list[str]) -> RiskVerdict:
        """The order shrunk to what every limit allows, or rejected: by a blocker, below the
        exchange minimums, or when its own costs would cross a lock."""
        blocked = self.blockers(now)
        if blocked:
            return _reject(*blocked)
        intent, rules = self.intent, self.market.rules
        caps = self.caps(self.fill_price(rules.qty_step))
        quantity = self.largest_within_limits(min([intent.quantity, *caps.values()]))
        why = _binding(caps, intent.quantity)
        too_small = _too_small(rules, quantity, self.entry, self.nothing_left, why)
        if too_small is not None:
            return too_small
        lines = self.lock_lines_crossed(quantity)
        if lines:
            return _reject(*lines)
        return _approve(intent, quantity, rules, notes, why)


class _BuySizer(_Sizer):
    """Sizes a buy: a resting limit fills at its limit, and the cash must cover it."""

    side = Side.BUY
    nothing_left = "nothing is left to buy"

    @cached_property
    def marketable(self) -> bool:
        """Whether the buy fills at once (a limit at or above the price), not resting."""
        limit = self.intent.limit_price
        return self.intent.order_type is OrderType.MARKET or (
            limit is not None and self.market.price <= limit
        )

    def blockers(self, now: datetime) -> list[str]:
        return _buy_blockers(self.intent, self.view, self.limits, self.market, now)

    def fill_price(self, quantity: Decimal) -> Decimal:
        """The broker's fill price for ``quantity`` (a resting limit fills at its limit)."""
        limit = self.intent.limit_price
        if not self.marketable and limit is not None:
            return limit
        price = self.market.costs.taker_price(
            Side.BUY, quantity, self.market.price, self.market.rules
        )
        return min(price, limit) if limit is not None else price

    def holding(self) -> Decimal:
        return self.view.held + self.view.pending_buy_qty

    def funding_caps(self, price: Decimal, cost_per_unit: Decimal) -> dict[str, Decimal]:
        cash = self.view.cash - self.view.pending_buy_cash
        return {f"available cash {_cash(cash)}": max(cash / (price * (1 + self.fee_rate)), ZERO)}

    def funded(self, quantity: Decimal, price: Decimal, notional: Decimal, fee: Decimal) -> bool:
        return notional + fee <= self.view.cash - self.view.pending_buy_cash


# --- sells --------------------------------------------------------------------------------


def _check_sell(
    intent: OrderIntent,
    view: _View,
    limits: RiskLimits,
    market: MarketContext,
    notes: list[str],
) -> RiskVerdict:
    if any(x is not None for x in (intent.stop_loss, intent.take_profit, intent.time_stop_at)):
        return _reject(
            "stop_loss/take_profit/time_stop_at only apply to BUY orders (they protect a position)"
        )
    sellable = view.held - view.pending_sell_qty
    if sellable <= 0:
        offered = " (all of it is already offered by open sell orders)" if view.held else ""
        return _reject(f"no {intent.symbol} position to sell{offered}; spot desk: no shorts")
    highest = max(market.price, intent.limit_price or market.price)
    caps = {
        f"held {intent.symbol} not already offered ({_qty(sellable)})": sellable,
        f"max order notional {limits.max_order_notional}": limits.max_order_notional / highest,
    }
    quantity = market.rules.floor_qty(min([intent.quantity, *caps.values()]))
    why = _binding(caps, intent.quantity)
    entry = intent.limit_price if intent.order_type is OrderType.LIMIT else market.price
    too_small = _too_small(
        market.rules, quantity, entry or market.price, "nothing is left to sell", why
    )
    if too_small is not None:
        return too_small
    return _approve(intent, quantity, market.rules, notes, why)


def _largest(rules: MarketRules, requested: Decimal, bound: Decimal, fits: Any) -> Decimal:
    """The largest whole number of steps up to ``bound`` (plus one step of slack, never past
    ``requested``) for which ``fits`` holds; ``fits`` must only fail more as size grows."""
    step = rules.qty_step
    low, high = 0, int(rules.floor_qty(bound) / step) + 1
    if high * step > requested:
        high = int(rules.floor_qty(requested) / step)
    if fits(high * step):
        return tidy(high * step)
    while high - low > 1:  # invariant: low fits (0 always does), high does not
        middle = (low + high) // 2
        if fits(middle * step):
            low = middle
        else:
            high = middle
    return tidy(low * step) if low else ZERO


# --- verdicts and helpers -----------------------------------------------------------------


def _limit_on_tick(intent: OrderIntent, rules: MarketRules) -> tuple[OrderIntent, list[str]]:
    """A limit price off the tick is moved to the tick on the cautious side (buy down)."""
    limit = intent.limit_price
    if limit is None or limit % rules.price_tick == 0:
        return intent, []
    rounded = rules.round_price(limit, up=intent.side is Side.SELL)
    note = f"limit price {limit} rounded to the tick {rules.price_tick}: {rounded}"
    return intent.model_copy(update={"limit_price": rounded}), [note]


def _approve(
    intent: OrderIntent, quantity: Decimal, rules: MarketRules, notes: list[str], why: str
) -> RiskVerdict:
    reasons = list(notes)
    shrunk = quantity < intent.quantity
    if shrunk:
        detail = why or f"rounded down to the exchange step {rules.qty_step}"
        reasons.append(f"quantity shrunk from {intent.quantity} to {quantity}: {detail}")
    approved = intent.model_copy(update={"quantity": quantity}) if shrunk else intent
    return RiskVerdict(approved=True, intent=approved, reasons=tuple(reasons), shrunk=shrunk)


def _reject(*reasons: str) -> RiskVerdict:
    return RiskVerdict(approved=False, intent=None, reasons=tuple(r for r in reasons if r))


def _too_small(
    rules: MarketRules, quantity: Decimal, entry: Decimal, nothing_left: str, why: str
) -> RiskVerdict | None:
    """The rejection of ``quantity`` when it is nothing (``nothing_left`` says so) or below
    the exchange minimums at ``entry``, led by the limit that shrank it (``why``, if any);
    None when it may go."""
    too_small = rules.violations(quantity, entry) if quantity > 0 else [nothing_left]
    return _reject(*([why] if why else []), *too_small) if too_small else None


def _binding(caps: dict[str, Decimal], requested: Decimal) -> str:
    """The limit that caps ``requested`` the most, as a reason ('' when none does)."""
    name, cap = min(caps.items(), key=lambda item: item[1])
    return f"limited by {name}" if cap < requested else ""


def _pct(fraction: Decimal) -> str:
    return f"{(fraction * 100).quantize(Decimal('0.01')).normalize():f}%"


def _cash(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.01')):f}"


def _qty(quantity: Decimal) -> str:
    return f"{quantity.quantize(Decimal('0.00000001')).normalize():f}"


# --- limits -------------------------------------------------------------------------------


def updated_limits(current: RiskLimits, **changes: Any) -> RiskLimits:
    """``current`` with ``changes`` applied, validated; RiskLimitsError names what is wrong."""
    known = set(RiskLimits.model_fields)
    unknown = sorted(set(changes) - known)
    if unknown:
        raise RiskLimitsError(
            f"unknown risk limit(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    try:
        return RiskLimits.model_validate({**current.model_dump(), **changes})
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg'].lower()} "
            f"(got {err.get('input')!r})"
            for err in exc.errors()
        ]
        raise RiskLimitsError("invalid risk limits: " + "; ".join(problems)) from None

"""Property-based: no order the risk gate approves breaches a limit once it is filled.

Random portfolios (cash, positions, watermarks, a recent stop-out, resting orders), prices,
limits and intents. Each approved intent is filled by a real PaperBroker holding the same
portfolio, and every limit is checked on the result.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tradecast.broker.journal import SqliteJournal
from tradecast.broker.market_rules import money
from tradecast.broker.paper import PaperBroker
from tradecast.domain import OrderIntent, OrderStatus, OrderType, Portfolio, Position, Side
from tradecast.errors import BrokerError
from tradecast.risk.gate import MarketContext, check_order
from tradecast.settings import MarginConfig, RiskLimits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.broker import BTC, ETH, T0, Clock, paper_broker, run

D = Decimal
SYMBOLS = (BTC, ETH)


def decimals(low: str, high: str, places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=D(low), max_value=D(high), places=places, allow_nan=False, allow_infinity=False
    )


limits_strategy = st.builds(
    RiskLimits,
    max_position_pct=decimals("0.01", "1", 2),
    max_order_notional=decimals("10", "50000", 0),
    max_open_positions=st.integers(1, 3),
    daily_loss_limit_pct=decimals("0.01", "0.5", 2),
    max_drawdown_pct=decimals("0.01", "0.5", 2),
    cooldown_minutes=st.integers(0, 180),
    kill_switch=st.sampled_from([False] * 9 + [True]),
)


@dataclass
class Scene:
    """A broker in some state, the portfolio the gate sees, and an order to judge."""

    broker: PaperBroker
    portfolio: Portfolio
    limits: RiskLimits
    intent: OrderIntent
    now: datetime


@st.composite
def scenes(draw: st.DrawFn) -> Scene:
    prices = {BTC: draw(decimals("1000", "100000", 2)), ETH: draw(decimals("50", "5000", 2))}
    seed = []
    for symbol in SYMBOLS:
        if draw(st.integers(0, 3)):
            avg = prices[symbol] * draw(decimals("0.5", "1.5", 2))
            seed.append(
                Position(
                    symbol=symbol, quantity=draw(decimals("0.0001", "3", 4)), avg_price=money(avg)
                )
            )
    clock = Clock(T0)
    broker = paper_broker(cash=str(draw(decimals("0", "50000", 2))), seed=tuple(seed), clock=clock)
    for symbol in SYMBOLS:
        run(broker.on_price(symbol, prices[symbol], T0))
    _maybe_rest_orders(draw, broker, prices)
    base = broker.portfolio()
    equity = base.equity
    stop_outs = {}
    if draw(st.booleans()):
        minutes = draw(st.integers(0, 300))
        stop_outs[draw(st.sampled_from(SYMBOLS))] = T0 - timedelta(minutes=minutes)
    portfolio = base.model_copy(
        update={
            "peak_equity": equity * draw(st.just(D(1)) | decimals("1", "1.6", 2)),
            "day_start_equity": equity * draw(st.just(D(1)) | decimals("0.8", "1.3", 2)),
            "stop_outs": stop_outs,
        }
    )
    symbol = draw(st.sampled_from(SYMBOLS))
    return Scene(
        broker, portfolio, draw(limits_strategy), draw(intents(symbol, prices[symbol])), T0
    )


def _maybe_rest_orders(draw: st.DrawFn, broker: PaperBroker, prices: dict[str, Decimal]) -> None:
    """Resting orders the gate must count: a low buy, a high sell (when they are valid)."""
    symbol = draw(st.sampled_from(SYMBOLS))
    if draw(st.booleans()):
        limit = money(prices[symbol] * D("0.8")).quantize(D("0.01"))
        quantity = broker.market_rules(symbol).floor_qty(D(30) / limit + D("0.001"))
        intent = OrderIntent(
            symbol=symbol,
            side=Side.BUY,
            quantity=quantity,
            order_type=OrderType.LIMIT,
            limit_price=limit,
        )
        _try(broker, intent)
    held = broker.portfolio().position(symbol)
    if held is not None and draw(st.booleans()):
        quantity = broker.market_rules(symbol).floor_qty(held.quantity / 2)
        limit = money(prices[symbol] * D("1.2")).quantize(D("0.01"))
        if quantity > 0:
            _try(
                broker,
                OrderIntent(
                    symbol=symbol,
                    side=Side.SELL,
                    quantity=quantity,
                    order_type=OrderType.LIMIT,
                    limit_price=limit,
                ),
            )


def _try(broker: PaperBroker, intent: OrderIntent) -> None:
    # Too small or not enough cash: the scene simply has no resting order.
    with contextlib.suppress(BrokerError):
        run(broker.submit(intent))


@st.composite
def intents(draw: st.DrawFn, symbol: str, price: Decimal) -> OrderIntent:
    side = draw(st.sampled_from(Side))
    extra: dict[str, object] = {}
    if draw(st.booleans()):
        extra["order_type"] = OrderType.LIMIT
        extra["limit_price"] = money(price * draw(decimals("0.9", "1.1", 3))).quantize(D("0.001"))
    if side is Side.BUY and draw(st.booleans()):
        extra["stop_loss"] = money(price * draw(decimals("0.5", "1.05", 2)))
    return OrderIntent(
        symbol=symbol, side=side, quantity=draw(decimals("0.00001", "20", 5)), **extra
    )


def market_of(scene: Scene, margin: MarginConfig | None = None) -> MarketContext:
    """What the gate knows of the scene's market: its mark, rules, costs and resting orders."""
    intent = scene.intent
    return MarketContext(
        symbol=intent.symbol,
        price=scene.portfolio.prices[intent.symbol],
        rules=scene.broker.market_rules(intent.symbol),
        costs=scene.broker.cost_model,
        open_orders=tuple(scene.broker.orders(status=OrderStatus.OPEN)),
        margin=margin,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scene=scenes())
def test_risk_no_approved_order_breaches_a_limit(scene: Scene) -> None:
    broker, portfolio, limits, intent = scene.broker, scene.portfolio, scene.limits, scene.intent
    price = portfolio.prices[intent.symbol]
    context = market_of(scene)
    verdict = check_order(intent, portfolio, limits, context, scene.now)
    outcome = "approved" if verdict.approved else f"rejected ({verdict.reasons[0][:18]})"
    event(f"{intent.side.value} {outcome}{' shrunk' if verdict.shrunk else ''}")
    if not verdict.approved:
        assert verdict.intent is None and verdict.reasons
        return
    approved = verdict.intent
    assert approved is not None
    assert not limits.kill_switch
    assert approved.quantity <= intent.quantity
    assert broker.market_rules(intent.symbol).on_step(approved.quantity)
    assert verdict.shrunk == (approved.quantity < intent.quantity)
    if verdict.shrunk:
        assert verdict.reasons

    resting_before = broker.orders(status=OrderStatus.OPEN)
    equity_before = portfolio.equity
    # An approved order is one the broker accepts: enough cash, held quantity, exchange rules.
    execution = run(broker.submit(approved, at=scene.now))
    after = broker.portfolio()

    for fill in execution.fills:
        assert fill.quantity * fill.price <= limits.max_order_notional
    if not execution.fills and approved.limit_price is not None:
        # A resting limit fills at its own price later.
        assert approved.quantity * approved.limit_price <= limits.max_order_notional
    assert after.cash >= 0 and broker.available_cash() >= 0
    if approved.side is Side.SELL:
        return
    _check_buy_limits(scene, approved, resting_before, equity_before, after, price)


def _check_buy_limits(
    scene: Scene,
    approved: OrderIntent,
    resting_before: list,
    equity_before: Decimal,
    after: Portfolio,
    price: Decimal,
) -> None:
    limits, portfolio, symbol = scene.limits, scene.portfolio, approved.symbol
    stopped = portfolio.stop_outs.get(symbol)
    if stopped is not None and limits.cooldown_minutes:
        assert scene.now >= stopped + timedelta(minutes=limits.cooldown_minutes)
    peak = max(equity_before, portfolio.peak_equity or equity_before)
    day_start = portfolio.day_start_equity or equity_before
    assert after.equity > peak * (1 - limits.max_drawdown_pct)
    assert after.equity > day_start * (1 - limits.daily_loss_limit_pct)
    pending_buys = [
        o for o in scene.broker.orders(status=OrderStatus.OPEN) if o.intent.side is Side.BUY
    ]
    open_symbols = {p.symbol for p in after.positions} | {o.intent.symbol for o in pending_buys}
    assert len(open_symbols) <= max(
        limits.max_open_positions, _open_before(resting_before, portfolio)
    )
    held = after.position(symbol)
    pending = sum((o.intent.quantity for o in pending_buys if o.intent.symbol == symbol), D(0))
    exposure = ((held.quantity if held else D(0)) + pending) * price
    assert exposure <= limits.max_position_pct * after.equity


def _open_before(resting: list, portfolio: Portfolio) -> int:
    """Symbols already open before the order (an add-on may not open a new one)."""
    return len(
        {p.symbol for p in portfolio.positions}
        | {o.intent.symbol for o in resting if o.intent.side is Side.BUY}
    )


# --- shorts on a margin account -------------------------------------------------------------

MARGIN = MarginConfig(enabled=True)


@st.composite
def margin_scenes(draw: st.DrawFn) -> Scene:
    """A margin account with random longs and shorts, watermarks (locks), a recent stop-out,
    and a SELL (a short when nothing is held long) or a BUY (a cover when held short)."""
    prices = {BTC: draw(decimals("1000", "100000", 2)), ETH: draw(decimals("50", "5000", 2))}
    seed = []
    for symbol in SYMBOLS:
        kind = draw(st.sampled_from(["none", "long", "short", "short"]))
        if kind != "none":
            avg = money(prices[symbol] * draw(decimals("0.5", "1.5", 2)))
            quantity = draw(decimals("0.0001", "3", 4))
            seed.append(Position(symbol=symbol, quantity=quantity, avg_price=avg, side=kind))
    clock = Clock(T0)
    broker = PaperBroker(
        SqliteJournal(":memory:"),
        starting_cash=draw(decimals("0", "80000", 2) | decimals("50000", "400000", 2)),
        clock=clock,
        seed_positions=tuple(seed),
        margin=MARGIN,
    )
    for symbol in SYMBOLS:
        run(broker.on_price(symbol, prices[symbol], T0))
    base = broker.portfolio()
    equity = base.equity
    stop_outs = {}
    if draw(st.booleans()):
        stop_outs[draw(st.sampled_from(SYMBOLS))] = T0 - timedelta(
            minutes=draw(st.integers(0, 300))
        )
    portfolio = base.model_copy(
        update={
            "peak_equity": max(equity, D(0)) * draw(st.just(D(1)) | decimals("1", "1.6", 2)),
            "day_start_equity": max(equity, D(0)) * draw(st.just(D(1)) | decimals("0.8", "1.3", 2)),
            "stop_outs": stop_outs,
        }
    )
    symbol = draw(st.sampled_from(SYMBOLS))
    side = draw(st.sampled_from(Side))
    extra: dict[str, object] = {}
    if draw(st.booleans()):
        extra["order_type"] = OrderType.LIMIT
        factor = draw(decimals("0.9", "1.1", 3))
        extra["limit_price"] = money(prices[symbol] * factor).quantize(D("0.001"))
    intent = OrderIntent(
        symbol=symbol, side=side, quantity=draw(decimals("0.00001", "20", 5)), **extra
    )
    return Scene(broker, portfolio, draw(limits_strategy), intent, T0)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scene=margin_scenes())
def test_risk_margin_approved_shorts_stay_within_limits_and_covers_pass_locks(
    scene: Scene,
) -> None:
    broker, portfolio, limits, intent = scene.broker, scene.portfolio, scene.limits, scene.intent
    price = portfolio.prices[intent.symbol]
    context = market_of(scene, MARGIN)
    held_short = portfolio.short(intent.symbol)
    opens_short = intent.side is Side.SELL and portfolio.position(intent.symbol) is None
    covers = intent.side is Side.BUY and held_short is not None
    verdict = check_order(intent, portfolio, limits, context, scene.now)
    kind = "short" if opens_short else "cover" if covers else intent.side.value
    outcome = "approved" if verdict.approved else f"rejected ({verdict.reasons[0][:18]})"
    event(f"{kind} {outcome}")
    if covers and not verdict.approved:
        # Covering is an exit: never blocked by the locks, the cooldown or the caps.
        text = " ".join(verdict.reasons)
        assert not any(
            word in text for word in ("drawdown", "daily loss", "cooldown", "max position")
        )
    if not verdict.approved:
        return
    approved = verdict.intent
    assert approved is not None and not limits.kill_switch
    assert approved.quantity <= intent.quantity
    equity_before = portfolio.equity
    execution = run(broker.submit(approved, at=scene.now))  # the broker accepts it
    after = broker.portfolio()
    for fill in execution.fills:
        assert fill.quantity * fill.price <= limits.max_order_notional
    if covers:
        assert held_short is not None
        short_after = after.short(intent.symbol)
        assert (short_after.quantity if short_after else D(0)) >= 0
        assert after.position(intent.symbol) is None  # never through zero
        return
    if not opens_short:
        return
    (fill,) = execution.fills
    short = after.short(intent.symbol)
    assert short is not None
    assert short.quantity * price <= limits.max_position_pct * after.equity
    # Initial margin: equity after >= initial pct * shorts (the new quantity at its fill price).
    shorts = sum(
        (p.quantity * after.prices[p.symbol] for p in after.positions if p.side == "short"),
        D(0),
    ) - fill.quantity * (price - fill.price)
    assert after.equity >= MARGIN.initial_margin_pct * shorts
    assert after.equity > (portfolio.peak_equity or equity_before) * (1 - limits.max_drawdown_pct)

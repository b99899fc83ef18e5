"""Property-based: the paper broker's books always balance, and a restart restores them.

Random sequences of marks, market and limit orders (with stops), cancels and clock moves.
After every step: equity is cash plus positions at market; cash is the starting cash minus
what fills cost; no money is created (equity changes only by price moves on what is held,
minus fees, minus slippage); a refused request changes nothing. At the end, a new broker
on the same journal has exactly the same books.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tradecast.broker.journal import SqliteJournal
from tradecast.broker.market_rules import money
from tradecast.broker.paper import PaperBroker
from tradecast.domain import OrderIntent, OrderStatus, OrderType, Side
from tradecast.errors import BrokerError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.broker import BTC, ETH, T0, Cancel, Clock, Wait, books, paper_broker, run

D = Decimal
START = {BTC: D("40000"), ETH: D("2000")}
STARTING_CASH = D("20000")


@dataclass(frozen=True)
class Mark:
    symbol: str
    factor: Decimal


@dataclass(frozen=True)
class Submit:
    intent: OrderIntent


@dataclass(frozen=True)
class SellPart:
    symbol: str
    fraction: Decimal


def factors(low: str, high: str) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=D(low), max_value=D(high), places=3)


@st.composite
def submits(draw: st.DrawFn) -> Submit:
    symbol = draw(st.sampled_from([BTC, ETH]))
    side = draw(st.sampled_from([Side.BUY, Side.BUY, Side.SELL]))
    quantity = draw(st.decimals(min_value=D("0.005"), max_value=D("0.3"), places=4))
    extra: dict[str, object] = {}
    if draw(st.booleans()):
        # Relative to the opening price; marks move it, so some rest and some fill at once.
        extra = {
            "order_type": OrderType.LIMIT,
            "limit_price": money(START[symbol] * draw(factors("0.8", "1.2"))).quantize(D("0.01")),
        }
    if side is Side.BUY and draw(st.booleans()):
        extra["stop_loss"] = money(START[symbol] * draw(factors("0.7", "0.95")))
    if side is Side.BUY and draw(st.booleans()):
        extra["take_profit"] = money(START[symbol] * draw(factors("1.05", "1.4")))
    if draw(st.integers(0, 4)) == 0:
        extra["client_order_id"] = f"cid-{draw(st.integers(0, 3))}"  # repeats happen
    return Submit(OrderIntent(symbol=symbol, side=side, quantity=quantity, **extra))


operations = st.lists(
    st.one_of(
        st.builds(Mark, st.sampled_from([BTC, ETH]), factors("0.6", "1.5")),
        submits(),
        submits(),
        st.builds(SellPart, st.sampled_from([BTC, ETH]), factors("0.1", "1")),
        st.builds(Cancel, st.integers(0, 20)),
        st.builds(Wait, st.integers(1, 30)),
    ),
    min_size=4,
    max_size=40,
)


def held(broker: PaperBroker, symbol: str) -> Decimal:
    position = broker.portfolio().position(symbol)
    return position.quantity if position else D(0)


def step(broker: PaperBroker, clock: Clock, op: object) -> Decimal:
    """Run one operation; return the price move it applied to holdings (0 for others)."""
    if isinstance(op, Wait):
        clock.advance(hours=op.hours)
        return D(0)
    if isinstance(op, Mark):
        old = broker.portfolio().prices.get(op.symbol, START[op.symbol])
        new = max(money(old * op.factor).quantize(D("0.01")), D("1"))
        quantity = held(broker, op.symbol)
        run(broker.on_price(op.symbol, new, clock()))
        return quantity * (new - old)
    if isinstance(op, Cancel):
        op.apply(broker)
        return D(0)
    if isinstance(op, SellPart):
        quantity = broker.market_rules(op.symbol).floor_qty(held(broker, op.symbol) * op.fraction)
        if quantity > 0:
            run(broker.submit(OrderIntent(symbol=op.symbol, side=Side.SELL, quantity=quantity)))
        return D(0)
    assert isinstance(op, Submit)
    run(broker.submit(op.intent))
    return D(0)


def check_books(broker: PaperBroker) -> None:
    portfolio = broker.portfolio()
    at_market = sum((p.quantity * portfolio.prices[p.symbol] for p in portfolio.positions), D(0))
    assert portfolio.equity == portfolio.cash + at_market
    fills = broker.fills()
    spent = sum((money(f.quantity * f.price) for f in fills if f.side is Side.BUY), D(0))
    received = sum((money(f.quantity * f.price) for f in fills if f.side is Side.SELL), D(0))
    fees = sum((f.fee for f in fills), D(0))
    assert portfolio.fees_paid == fees
    assert portfolio.cash == STARTING_CASH - spent + received - fees
    assert portfolio.cash >= 0
    assert broker.available_cash() >= 0
    assert all(p.quantity > 0 for p in portfolio.positions)
    # P&L attribution: realised + unrealised - fees explains the whole change (up to the
    # rounding of average prices to 10 decimals).
    explained = portfolio.realized_pnl + portfolio.unrealized_pnl - fees
    assert abs(portfolio.equity - STARTING_CASH - explained) < D("0.000001")
    assert portfolio.peak_equity is not None and portfolio.peak_equity >= portfolio.equity


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_broker_books_balance_and_a_restart_restores_them(ops: list[object]) -> None:
    journal = SqliteJournal(":memory:")
    clock = Clock(T0)
    broker = paper_broker(journal, clock=clock, cash=str(STARTING_CASH))
    for symbol, price in START.items():
        run(broker.on_price(symbol, price, T0))
    for op in ops:
        before = books(broker)
        equity, fees, slippage = (
            broker.portfolio().equity,
            broker.portfolio().fees_paid,
            broker.slippage_paid,
        )
        try:
            price_move = step(broker, clock, op)
        except BrokerError as exc:
            assert books(broker) == before  # refused: nothing changed
            event(f"{type(op).__name__} refused: {str(exc)[:12]}")
            continue
        event(f"{type(op).__name__} done")
        portfolio = broker.portfolio()
        # No money created: equity moves by price changes on holdings, fees and slippage.
        cost = (portfolio.fees_paid - fees) + (broker.slippage_paid - slippage)
        assert portfolio.equity - equity == price_move - cost
        check_books(broker)

    fills = len(broker.fills())
    event("fills: " + ("0" if not fills else "1-2" if fills < 3 else "3-5" if fills < 6 else "6+"))
    event(f"stop-outs: {bool(broker.portfolio().stop_outs)}")
    restored = PaperBroker(journal, account="paper", clock=clock)
    assert books(restored) == books(broker)
    assert restored.orders(status=OrderStatus.OPEN) == broker.orders(status=OrderStatus.OPEN)


@settings(max_examples=60, deadline=None)
@given(submit=submits(), marks=st.lists(factors("0.9", "1.1"), max_size=3))
def test_broker_duplicate_submit_fills_once(submit: Submit, marks: list[Decimal]) -> None:
    clock = Clock(T0)
    broker = paper_broker(clock=clock, cash=str(STARTING_CASH))
    symbol = submit.intent.symbol
    run(broker.on_price(symbol, START[symbol], T0))
    if submit.intent.side is Side.SELL:
        run(broker.submit(OrderIntent(symbol=symbol, side=Side.BUY, quantity=D("0.3"))))
    intent = submit.intent.model_copy(update={"client_order_id": "decision-42"})
    try:
        first = run(broker.submit(intent))
    except BrokerError:
        return  # refused the first time: there is nothing to repeat
    fills_after_first = broker.fills()
    for factor in marks:  # prices move (resting limits may fill) between the retries
        run(
            broker.on_price(
                symbol, money(START[symbol] * factor).quantize(D("0.01")), clock.advance(minutes=1)
            )
        )
    again = run(broker.submit(intent))
    assert again.duplicate
    assert again.order.id == first.order.id
    assert [f for f in broker.fills() if f.order_id == first.order.id] == list(again.fills)
    assert len(again.fills) <= 1
    assert len(broker.orders()) == len({o.id for o in broker.orders()})
    assert len([f for f in fills_after_first if f.order_id == first.order.id]) == len(first.fills)

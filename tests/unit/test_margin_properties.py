"""Property-based: a margin account's books balance, shorts and all, and a restart restores them.

Random sequences of buys, sells, shorts, covers (market and limit, some with protection),
marks (big rises included, so accounts get liquidated), cancels and clock moves across borrow
boundaries, over 1-4 symbols. The test keeps its own ledger, independently of the broker:
quantities held (signed), marks, fees and slippage of every fill, and the borrow fee of every
interval boundary crossed with a short open. After every step:

- no money is created: equity == starting cash + price moves on the signed quantities held
  - fees - slippage - borrow fees, exactly (Decimal);
- equity == cash + signed values at the marks; quantities are never negative;
- after a liquidation no short is left, and equity is >= 0 unless the mark gapped past what
  the account could pay (its equity before the buy-back was below the buy-back's costs: a
  paper broker, like an exchange without an insurance fund, then shows a negative balance);
- a broker restored from the journal equals the running one.

With margin off, a SELL of a symbol not held is always refused (spot is unchanged).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tradecast.broker.journal import SqliteJournal
from tradecast.broker.market_rules import money
from tradecast.broker.paper import PaperBroker
from tradecast.domain import Fill, OrderIntent, OrderType, Side
from tradecast.errors import BrokerError
from tradecast.settings import MarginConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.broker import BTC, ETH, T0, Cancel, Clock, Wait, books, paper_broker, run

D = Decimal
SOL = "SOL/USDT"
XRP = "XRP/USDT"
START = {BTC: D("40000"), ETH: D("2000"), SOL: D("100"), XRP: D("1")}
STARTING_CASH = D("10000")
MARGIN = MarginConfig(
    enabled=True,
    initial_margin_pct=D("0.5"),
    maintenance_margin_pct=D("0.25"),
    borrow_bps_per_interval=D("3"),
    borrow_interval_hours=8,
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ZERO = Decimal(0)


@dataclass(frozen=True)
class Mark:
    pick: int
    factor: Decimal


@dataclass(frozen=True)
class Trade:
    pick: int
    side: Side
    notional: Decimal
    limit_factor: Decimal | None
    protect: bool


@dataclass(frozen=True)
class Close:
    pick: int


def decimals(low: str, high: str, places: int = 3) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=D(low), max_value=D(high), places=places)


operations = st.lists(
    st.one_of(
        st.builds(Mark, st.integers(0, 3), decimals("0.8", "1.25") | decimals("1.3", "3")),
        st.builds(
            Trade,
            st.integers(0, 3),
            st.sampled_from([Side.BUY, Side.SELL, Side.SELL]),
            decimals("20", "12000", 2),
            st.none() | decimals("0.95", "1.05"),
            st.booleans(),
        ),
        st.builds(  # a big market short, so margin calls happen
            Trade,
            st.integers(0, 3),
            st.just(Side.SELL),
            decimals("5000", "20000", 2),
            st.none(),
            st.just(False),
        ),
        st.builds(Mark, st.integers(0, 3), decimals("1.2", "2.5")),
        st.builds(Close, st.integers(0, 3)),
        st.builds(Cancel, st.integers(0, 20)),
        st.builds(Wait, st.integers(1, 20)),
    ),
    min_size=6,
    max_size=40,
)


@dataclass
class Ledger:
    """What the account must be worth, kept apart from the broker's books."""

    symbols: tuple[str, ...]
    prices: dict[str, Decimal]
    signed: dict[str, Decimal] = field(default_factory=dict)
    borrow_from: dict[str, datetime] = field(default_factory=dict)
    moves: Decimal = ZERO
    fees: Decimal = ZERO
    slippage: Decimal = ZERO
    borrow: Decimal = ZERO

    @property
    def equity(self) -> Decimal:
        return STARTING_CASH + self.moves - self.fees - self.slippage - self.borrow

    def charge_borrow(self, at: datetime) -> Decimal:
        """The borrow fees due at ``at`` (every 8h boundary since the last charge)."""
        due = D(0)
        for symbol, quantity in self.signed.items():
            if quantity >= 0:
                continue
            since = self.borrow_from[symbol]
            crossed = int((at - EPOCH) / timedelta(hours=8)) - int(
                (since - EPOCH) / timedelta(hours=8)
            )
            if at > since and crossed > 0:
                due += money(-quantity * self.prices[symbol] * D(3) * crossed / D(10000))
                self.borrow_from[symbol] = at
        self.borrow += due
        return due

    def mark(self, symbol: str, price: Decimal) -> None:
        self.moves += self.signed.get(symbol, D(0)) * (price - self.prices[symbol])
        self.prices[symbol] = price

    def fill(self, fill: Fill) -> None:
        notional = money(fill.quantity * fill.price)
        at_mark = fill.quantity * self.prices[fill.symbol]
        self.fees += fill.fee
        sign = 1 if fill.side is Side.BUY else -1
        self.slippage += sign * (notional - at_mark)
        before = self.signed.get(fill.symbol, D(0))
        after = before + sign * fill.quantity
        assert before == 0 or after == 0 or (before > 0) == (after > 0), "went through zero"
        if after < 0 and before == 0:
            self.borrow_from[fill.symbol] = fill.timestamp
        if after == 0:
            self.signed.pop(fill.symbol, None)
            self.borrow_from.pop(fill.symbol, None)
        else:
            self.signed[fill.symbol] = after


def new_broker(journal: SqliteJournal, clock: Clock, symbols: tuple[str, ...]) -> PaperBroker:
    return paper_broker(
        journal, clock=clock, cash=str(STARTING_CASH), symbols=symbols, margin=MARGIN
    )


def intent_of(op: Trade, symbol: str, price: Decimal, broker: PaperBroker) -> OrderIntent | None:
    rules = broker.market_rules(symbol)
    quantity = rules.floor_qty(op.notional / price)
    if quantity <= 0:
        return None
    extra: dict[str, object] = {}
    if op.limit_factor is not None:
        extra["order_type"] = OrderType.LIMIT
        extra["limit_price"] = rules.round_price(price * op.limit_factor, up=False)
    if op.protect:
        up, down = money(price * D("1.2")), money(price * D("0.85"))
        short = op.side is Side.SELL and broker.portfolio().position(symbol) is None
        extra["stop_loss"] = up if short else down
        extra["take_profit"] = down if short else up
    return OrderIntent(symbol=symbol, side=op.side, quantity=quantity, **extra)


def step(broker: PaperBroker, ledger: Ledger, clock: Clock, op: object) -> tuple[Fill, ...]:
    """Run one operation on the broker and the ledger; returns the fills it caused."""
    if isinstance(op, Wait):
        clock.advance(hours=op.hours)
        return ()
    symbol = ledger.symbols[getattr(op, "pick", 0) % len(ledger.symbols)]
    if isinstance(op, Cancel):
        op.apply(broker)
        return ()
    if isinstance(op, Mark):
        price = max(money(ledger.prices[symbol] * op.factor).quantize(D("0.01")), D("0.01"))
        fills = run(broker.on_price(symbol, price, clock()))
        ledger.charge_borrow(clock())
        ledger.mark(symbol, price)
        for fill in fills:
            ledger.fill(fill)
        return fills
    if isinstance(op, Close):
        held = ledger.signed.get(symbol, D(0))
        if held == 0:
            return ()
        side = Side.SELL if held > 0 else Side.BUY
        intent = OrderIntent(symbol=symbol, side=side, quantity=abs(held))
    else:
        assert isinstance(op, Trade)
        maybe = intent_of(op, symbol, ledger.prices[symbol], broker)
        if maybe is None:
            return ()
        intent = maybe
    execution = run(broker.submit(intent, at=clock()))
    ledger.charge_borrow(clock())
    if execution.duplicate:  # the same order at the same time: found, not filled again
        return ()
    for fill in execution.fills:
        ledger.fill(fill)
    return execution.fills


def check_books(broker: PaperBroker, ledger: Ledger) -> None:
    portfolio = broker.portfolio()
    assert portfolio.equity == ledger.equity  # no money created, exactly
    values = sum(
        (p.signed_quantity * portfolio.prices[p.symbol] for p in portfolio.positions), D(0)
    )
    assert portfolio.cash + values == portfolio.equity
    assert all(p.quantity > 0 for p in portfolio.positions)
    assert {p.symbol: p.signed_quantity for p in portfolio.positions} == ledger.signed
    assert portfolio.fees_paid == ledger.fees
    assert broker.slippage_paid == ledger.slippage
    assert portfolio.borrow_paid == ledger.borrow
    for position in portfolio.positions:
        if position.side == "long":
            assert position.liquidation_price is None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, count=st.integers(1, 4))
def test_margin_books_balance_liquidate_and_restore(ops: list[object], count: int) -> None:
    symbols = tuple(START)[:count]
    journal = SqliteJournal(":memory:")
    clock = Clock(T0)
    broker = new_broker(journal, clock, symbols)
    for symbol in symbols:
        run(broker.on_price(symbol, START[symbol], T0))
    ledger = Ledger(symbols, {s: START[s] for s in symbols})
    liquidations = 0
    for op in ops:
        before = books(broker)
        try:
            fills = step(broker, ledger, clock, op)
        except BrokerError as exc:
            assert books(broker) == before  # refused: nothing changed
            event(f"{type(op).__name__} refused: {str(exc)[:16]}")
            continue
        event(f"{type(op).__name__} done")
        check_books(broker, ledger)
        liquidated = [f for f in fills if broker.fill_trigger(f.order_id) == "liquidation"]
        if liquidated:
            liquidations += 1
            portfolio = broker.portfolio()
            assert all(p.side == "long" for p in portfolio.positions)
            costs = sum((f.fee for f in liquidated), D(0)) + sum(
                (money(f.quantity * f.price) - f.quantity * portfolio.prices[f.symbol])
                for f in liquidated
            )
            if portfolio.equity < 0:
                event("liquidated past zero (gap)")
                before_buy_back = portfolio.equity + costs
                assert before_buy_back < costs  # the gap left less than the buy-back costs
            else:
                event("liquidated with equity left")
        restored = new_broker(journal, clock, symbols)
        assert books(restored) == books(broker)
    event(f"liquidations: {min(liquidations, 2)}")
    event(f"borrow paid: {broker.portfolio().borrow_paid > 0}")
    event(f"shorts at the end: {bool(broker.portfolio().positions)}")


@settings(max_examples=60, deadline=None)
@given(
    symbol=st.sampled_from(list(START)),
    quantity=decimals("0.01", "5", 2),
    limit=st.none() | decimals("0.9", "1.1"),
)
def test_spot_sell_of_nothing_held_is_always_refused(
    symbol: str, quantity: Decimal, limit: Decimal | None
) -> None:
    broker = paper_broker(clock=Clock(T0), symbols=list(START))
    run(broker.on_price(symbol, START[symbol], T0))
    extra: dict[str, object] = {}
    if limit is not None:
        extra = {
            "order_type": OrderType.LIMIT,
            "limit_price": money(START[symbol] * limit).quantize(D("0.01")),
        }
    intent = OrderIntent(symbol=symbol, side=Side.SELL, quantity=quantity, **extra)
    try:
        run(broker.submit(intent))
    except BrokerError as exc:
        assert "no short selling" in str(exc)
    else:
        raise AssertionError("a spot account sold what it did not hold")
    assert broker.orders() == [] and broker.portfolio().positions == ()

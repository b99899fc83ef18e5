"""A margin account across restarts: a short opened at 100, prices rising bar by bar (borrow
fees charged across intervals), the broker dropped mid-way and restored from its SQLite
journal, then liquidated at its liquidation price, and restored again: exact every time, and
the same as the run that never stopped."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from tradecast.broker.journal import SqliteJournal
from tradecast.broker.market_rules import CostModel, money, rules_for
from tradecast.broker.paper import PaperBroker
from tradecast.domain import Fill, OrderIntent, Side
from tradecast.settings import MarginConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.broker import Clock, books, paper_broker

D = Decimal
SYMBOL = "SOL/USDT"
START = datetime(2021, 4, 1, 1, 0, tzinfo=UTC)
MARGIN = MarginConfig(enabled=True, borrow_bps_per_interval=D("5"))
COSTS = CostModel()
QUANTITY = D(10)


def open_broker(path: Path, clock: Clock) -> PaperBroker:
    return paper_broker(
        SqliteJournal(path), clock=clock, cash="1000", costs=COSTS, symbols=[SYMBOL], margin=MARGIN
    )


@dataclass
class Run:
    broker: PaperBroker
    liquidation: Fill
    mark: Decimal
    """The mark that liquidated."""
    line: Decimal
    """The liquidation price the portfolio showed before that mark."""
    restored_mid_way: tuple[object, ...] | None = None


async def script(path: Path, restart_at: int | None) -> Run:
    """Short 10 at 100, then +1 an hour until liquidated; drop and reopen the broker at bar
    ``restart_at`` (None: never)."""
    clock = Clock(START)
    broker = open_broker(path, clock)
    await broker.on_price(SYMBOL, D(100), START)
    await broker.submit(OrderIntent(symbol=SYMBOL, side=Side.SELL, quantity=QUANTITY), at=START)
    restored_mid_way = None
    for bar in range(1, 200):
        if bar == restart_at:
            expected = books(broker)
            del broker  # stop: nothing survives but the journal file
            broker = open_broker(path, clock)
            restored_mid_way = books(broker)
            assert restored_mid_way == expected
        clock.now = START + timedelta(hours=bar)
        short = broker.portfolio().short(SYMBOL)
        assert short is not None and short.liquidation_price is not None
        mark = D(100 + bar)
        fills = await broker.on_price(SYMBOL, mark, clock.now)
        if fills:
            (fill,) = fills
            return Run(broker, fill, mark, short.liquidation_price, restored_mid_way)
        assert mark <= short.liquidation_price
    raise AssertionError("never liquidated")


async def test_margin_short_restarts_exactly_and_liquidates_at_its_price(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    result = await script(path, restart_at=30)
    broker, fill = result.broker, result.liquidation
    assert result.restored_mid_way is not None

    # Liquidated at (past) the price the portfolio showed, by a liquidation fill.
    assert broker.fill_trigger(fill.order_id) == "liquidation"
    assert result.mark >= result.line and fill.price >= result.line
    assert fill.side is Side.BUY and fill.quantity == QUANTITY
    assert fill.price == COSTS.taker_price(Side.BUY, QUANTITY, result.mark, rules_for(SYMBOL))
    portfolio = broker.portfolio()
    assert portfolio.short(SYMBOL) is None and portfolio.positions == ()
    # Borrow fees were charged on the 08:00, 16:00 and 00:00 boundaries crossed.
    intervals = (result.mark - 100 + 1) // 8  # bar n is at 01:00 + n hours
    assert portfolio.borrow_paid > 0
    borrows = [e for e in SqliteJournal(path).read("paper") if e.kind == "borrow"]
    assert sum(e.data["intervals"] for e in borrows) == intervals
    # Cash: starting cash + short proceeds - fees - borrow - the buy-back, exactly.
    opened, covered = broker.fills()
    assert portfolio.cash == (
        D(1000)
        + money(QUANTITY * opened.price)
        - opened.fee
        - portfolio.borrow_paid
        - money(QUANTITY * covered.price)
        - covered.fee
    )
    assert portfolio.equity == portfolio.cash
    assert portfolio.realized_pnl == (
        money(QUANTITY * opened.price) - money(QUANTITY * covered.price) - portfolio.borrow_paid
    )

    # Restart again: exact.
    expected = books(broker)
    restored = open_broker(path, Clock(START))
    assert books(restored) == expected
    assert restored.fill_trigger(fill.order_id) == "liquidation"

    # The same script without the restart ends in the same state.
    straight = await script(tmp_path / "straight.sqlite", restart_at=None)
    assert books(straight.broker) == expected

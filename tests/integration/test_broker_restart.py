"""The journaled paper broker across restarts: a replay walk, and a kill -9 mid-trading."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tradecast.broker.journal import SqliteJournal
from tradecast.broker.market_rules import money
from tradecast.broker.paper import PaperBroker
from tradecast.domain import OrderIntent, OrderStatus, Side
from tradecast.market.replay import ReplayMarket
from tradecast.risk.execution import GatedExecutor
from tradecast.settings import RiskLimits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.broker import BTC, Clock, books

D = Decimal
START = datetime(2021, 4, 1, tzinfo=UTC)


async def walk(executor: GatedExecutor, market: ReplayMarket, clock: Clock, bars: int) -> int:
    """Mark every bar; every 12th bar buy with a stop, every 30th sell half. Returns orders."""
    submitted = 0
    frame = market.frame(BTC, until=clock() + timedelta(hours=bars)).loc[clock() :]
    for i, (stamp, row) in enumerate(frame.iterrows()):
        clock.now = stamp.to_pydatetime()
        await executor.broker.on_price(BTC, D(repr(float(row["close"]))), clock.now)
        if i % 12 == 0:
            stop = money(D(repr(float(row["close"]))) * D("0.97"))
            report = await executor.submit(
                OrderIntent(
                    symbol=BTC,
                    side=Side.BUY,
                    quantity=D("0.01"),
                    stop_loss=stop,
                    client_order_id=f"walk-buy-{i}",
                )
            )
            submitted += report.executed
        if i % 30 == 29:
            held = executor.broker.portfolio().position(BTC)
            if held is not None:
                report = await executor.submit(
                    OrderIntent(
                        symbol=BTC,
                        side=Side.SELL,
                        quantity=held.quantity / 2,
                        client_order_id=f"walk-sell-{i}",
                    )
                )
                submitted += report.executed
    return submitted


async def test_broker_replay_walk_restores_exactly_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    clock = Clock(START)
    market = ReplayMarket(clock=clock)
    journal = SqliteJournal(path)
    broker = PaperBroker(journal, clock=clock)
    executor = GatedExecutor(broker, market, RiskLimits(max_position_pct=D("0.3")), clock)

    submitted = await walk(executor, market, clock, bars=400)

    assert submitted > 10
    assert any(o.client_order_id.startswith("stop_loss-") for o in broker.orders())
    assert broker.portfolio().stop_outs
    expected = books(broker)
    journal.close()

    reopened = SqliteJournal(path)
    restored = PaperBroker(reopened, clock=clock)
    assert books(restored) == expected
    # A resumed run re-submits its last decision: it fills once.
    again = GatedExecutor(restored, market, RiskLimits(max_position_pct=D("0.3")), clock)
    report = await again.submit(
        OrderIntent(symbol=BTC, side=Side.BUY, quantity=D("0.01"), client_order_id="walk-buy-384")
    )
    assert report.execution is not None and report.execution.duplicate
    assert books(restored) == expected
    reopened.close()


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal
    from tradecast.domain import OrderIntent, Side
    from tradecast.logs import configure_logging
    from tradecast.broker.paper import PaperBroker
    from tradecast.broker.journal import SqliteJournal

    async def main(path):
        configure_logging("warning")  # stdout carries only the confirmed decision numbers
        start = datetime(2021, 4, 1, tzinfo=UTC)
        broker = PaperBroker(SqliteJournal(path), clock=lambda: start)
        for i in range(100000):
            at = start + timedelta(minutes=i)
            await broker.on_price("BTC/USDT", Decimal(50000 + (i % 50) * 10), at)
            side = Side.BUY if i % 3 else Side.SELL
            held = broker.portfolio().position("BTC/USDT")
            if side is Side.SELL and held is None:
                continue
            quantity = Decimal("0.001") if side is Side.BUY else held.quantity / 2
            quantity = quantity.quantize(Decimal("0.00001"))
            if quantity < Decimal("0.0001") or broker.available_cash() < 100:
                continue
            await broker.submit(OrderIntent(symbol="BTC/USDT", side=side, quantity=quantity,
                                            client_order_id=f"d-{i}"), at=at)
            print(i, flush=True)

    asyncio.run(main(sys.argv[1]))
    """
)


@pytest.mark.reliability
async def test_broker_kill_9_mid_trading_loses_nothing_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert child.stdout is not None
    confirmed: list[int] = []
    deadline = time.monotonic() + 60
    while len(confirmed) < 200 and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        confirmed.append(int(line))
    child.send_signal(signal.SIGKILL)  # mid-loop: between a decision and its fill, or inside
    child.wait()
    assert len(confirmed) >= 200

    broker = PaperBroker(SqliteJournal(path), clock=lambda: START)
    orders = {o.client_order_id: o for o in broker.orders()}
    # Nothing lost: every submit the child saw confirmed is in the restored books.
    assert all(f"d-{i}" in orders for i in confirmed)
    # Nothing doubled: one order per id, at most one fill per order.
    assert len(orders) == len(broker.orders())
    fills_per_order: dict[str, int] = {}
    for fill in broker.fills():
        fills_per_order[fill.order_id] = fills_per_order.get(fill.order_id, 0) + 1
    assert set(fills_per_order.values()) == {1}
    assert all(o.status is OrderStatus.FILLED for o in orders.values())
    # The books balance after the crash.
    portfolio = broker.portfolio()
    spent = sum((money(f.quantity * f.price) for f in broker.fills() if f.side is Side.BUY), D(0))
    got = sum((money(f.quantity * f.price) for f in broker.fills() if f.side is Side.SELL), D(0))
    assert portfolio.cash == D("10000") - spent + got - portfolio.fees_paid
    # A resumed run that re-submits the last confirmed decisions fills nothing new.
    fills_before = len(broker.fills())
    for i in confirmed[-5:]:
        order = orders[f"d-{i}"]
        at = START + timedelta(minutes=i)
        execution = await broker.submit(order.intent, at=at)
        assert execution.duplicate
    assert len(broker.fills()) == fills_before

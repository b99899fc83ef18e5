"""Shared helpers of the broker and risk-gate tests: a settable clock, small builders, a
snapshot of a broker's books, and the steps the property tests share (cancel, wait)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from tradecast.broker.journal import Journal, SqliteJournal
from tradecast.broker.market_rules import CostModel
from tradecast.broker.paper import PaperBroker
from tradecast.domain import OrderIntent, OrderStatus, OrderType, Position, Side
from tradecast.settings import MarginConfig

T = TypeVar("T")
T0 = datetime(2021, 3, 1, 12, 0, tzinfo=UTC)
BTC = "BTC/USDT"
ETH = "ETH/BUSD"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine to completion (for sync tests, e.g. under hypothesis)."""
    return asyncio.run(coroutine)


def paper_broker(
    journal: Journal | None = None,
    *,
    clock: Clock | None = None,
    cash: str = "10000",
    costs: CostModel | None = None,
    seed: tuple[Position, ...] = (),
    account: str = "paper",
    symbols: Iterable[str] | None = None,
    margin: MarginConfig | None = None,
) -> PaperBroker:
    """A paper broker on an in-memory journal (or ``journal``) at the test clock (a margin
    account with ``margin``; ``symbols`` limits what it trades)."""
    return PaperBroker(
        journal or SqliteJournal(":memory:"),
        account=account,
        starting_cash=Decimal(cash),
        costs=costs or CostModel(),
        clock=clock or Clock(),
        seed_positions=seed,
        symbols=symbols,
        margin=margin,
    )


def books(broker: PaperBroker) -> tuple[object, ...]:
    """Everything a broker's books hold, to compare two brokers (or one before and after)."""
    return (
        broker.portfolio(),
        broker.orders(),
        broker.fills(),
        broker.available_cash(),
        broker.slippage_paid,
    )


@dataclass(frozen=True)
class Cancel:
    """A property-test step: cancel the ``pick``-th resting order (modulo how many rest)."""

    pick: int

    def apply(self, broker: PaperBroker) -> None:
        """Cancel the picked order; nothing when none rests."""
        resting = broker.orders(status=OrderStatus.OPEN)
        if resting:
            run(broker.cancel(resting[self.pick % len(resting)].id))


@dataclass(frozen=True)
class Wait:
    """A property-test step: move the clock on by ``hours``."""

    hours: int


def file_journal(tmp_path: Path) -> SqliteJournal:
    """A journal in a file under ``tmp_path``."""
    return SqliteJournal(tmp_path / "journal.sqlite")


def buy(quantity: str, symbol: str = BTC, **extra: Any) -> OrderIntent:
    """A BUY intent (market unless ``limit_price`` is given)."""
    return _intent(Side.BUY, quantity, symbol, **extra)


def sell(quantity: str, symbol: str = BTC, **extra: Any) -> OrderIntent:
    """A SELL intent (market unless ``limit_price`` is given)."""
    return _intent(Side.SELL, quantity, symbol, **extra)


def _intent(side: Side, quantity: str, symbol: str, **extra: Any) -> OrderIntent:
    if "limit_price" in extra:
        extra.setdefault("order_type", OrderType.LIMIT)
    return OrderIntent(symbol=symbol, side=side, quantity=Decimal(quantity), **extra)

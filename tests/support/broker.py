"""Shared helpers of the broker and risk-gate tests: a settable clock and small builders."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from tradecast.broker.journal import Journal, SqliteJournal
from tradecast.broker.market_rules import CostModel
from tradecast.broker.paper import PaperBroker
from tradecast.domain import OrderIntent, OrderType, Position, Side

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
) -> PaperBroker:
    """A paper broker on an in-memory journal (or ``journal``) at the test clock."""
    return PaperBroker(
        journal or SqliteJournal(":memory:"),
        account=account,
        starting_cash=Decimal(cash),
        costs=costs or CostModel(),
        clock=clock or Clock(),
        seed_positions=seed,
    )


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

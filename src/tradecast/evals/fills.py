"""The price a replayed order fills at: the run's ``evals.fill`` (``tradecast eval --fill``).

- ``close`` (the default): the paper broker as the desk has it. The executor marks the
  symbol at the last close known at the decision instant, the gate judges the order at that
  price, and the broker fills it there (plus slippage and fees).
- ``next_open``: the order reaches the market at the first price after the decision, the
  open of the bar that opens at or after the decision instant. :class:`NextOpenBroker` wraps
  the paper broker: before an order is placed it marks the symbol at that open, so the
  broker's own slippage, size impact and fee apply on top of it, and resting orders and
  stop-loss/take-profit exits see that price as they would on an exchange.

The decision does not change: the agents, their prompts, the memory and the risk gate read
the closed-bars view and the executor's mark at the last close, all before the order
reaches the broker. Only the broker sees the open, and only when an order is placed.

With no bar opening at or after the decision (a decision at the data's end) there is no
price to fill at: the wrapper refuses the order with a :class:`~tradecast.errors.BrokerError`,
which the executor records as the reason it was not executed (the decision log's
``risk_reasons``). A buy sized at the close may also no longer fit the cash at a higher open;
the paper broker refuses it the same way.

:func:`fill_broker` is the one place the choice is made; the runner hands what it returns to
:func:`tradecast.bootstrap.open_desk`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import numpy as np
import pandas as pd

from tradecast.broker.market_rules import CostModel, MarketRules
from tradecast.broker.paper import Broker, Execution, PriceInput
from tradecast.domain import Fill, Order, OrderIntent, OrderStatus, Portfolio
from tradecast.errors import BrokerError
from tradecast.evals.datasets import Dataset
from tradecast.logs import get_logger
from tradecast.settings import EvalFill

log = get_logger(__name__)

BrokerWrapper = Callable[[Broker], Broker]
"""What :func:`tradecast.bootstrap.open_desk` applies to the broker it builds."""


@dataclass(frozen=True)
class NextOpens:
    """The open of the first bar that opens at or after an instant, in one dataset."""

    symbol: str
    times: pd.DatetimeIndex
    opens: np.ndarray

    @classmethod
    def of(cls, dataset: Dataset) -> NextOpens:
        """The bar opens of ``dataset`` (the data the run's replay market reads)."""
        frame = dataset.frame
        return cls(dataset.symbol, frame.index, frame["open"].to_numpy(dtype="float64"))

    def at_or_after(self, symbol: str, at: datetime) -> tuple[datetime, Decimal] | None:
        """(open time, open) of the first bar opening at or after ``at``; None past the data.

        Prices are read as the replay market reads them (the float's shortest decimal).
        """
        if symbol != self.symbol:
            raise BrokerError(f"no next-open prices for {symbol}: this run replays {self.symbol}")
        i = int(self.times.searchsorted(pd.Timestamp(at), side="left"))
        if i >= len(self.times):
            return None
        return self.times[i].to_pydatetime(), Decimal(repr(float(self.opens[i])))


class NextOpenBroker:
    """A :class:`~tradecast.broker.paper.Broker` whose orders fill at the next bar's open.

    Everything but :meth:`submit` goes to the wrapped broker unchanged.
    """

    def __init__(self, broker: Broker, opens: NextOpens) -> None:
        self.inner = broker
        self.opens = opens

    async def submit(self, intent: OrderIntent, at: datetime | None = None) -> Execution:
        """Mark ``intent.symbol`` at the open of the bar opening at or after ``at``, then place
        the order with the wrapped broker (which fills it against that mark)."""
        if at is None:
            raise BrokerError("a fill at the next open needs the order's instant")
        quote = self.opens.at_or_after(intent.symbol, at)
        if quote is None:
            raise BrokerError(
                f"no {intent.symbol} bar opens at or after {at.isoformat()} (the data ends "
                "there), so the order has no next open to fill at (fill: next_open)"
            )
        opened_at, price = quote
        log.debug(
            "eval.next_open",
            symbol=intent.symbol,
            at=at.isoformat(),
            bar=opened_at.isoformat(),
            price=str(price),
        )
        await self.inner.on_price(intent.symbol, price, at)
        return await self.inner.submit(intent, at)

    async def cancel(self, order_id: str, at: datetime | None = None) -> Order:
        """The wrapped broker's cancel."""
        return await self.inner.cancel(order_id, at)

    async def on_price(self, symbol: str, price: PriceInput, at: datetime) -> tuple[Fill, ...]:
        """The wrapped broker's mark (the executor's, at the last close)."""
        return await self.inner.on_price(symbol, price, at)

    def portfolio(self, prices: Mapping[str, PriceInput] | None = None) -> Portfolio:
        """The wrapped broker's portfolio."""
        return self.inner.portfolio(prices)

    def orders(self, status: OrderStatus | None = None, symbol: str | None = None) -> list[Order]:
        """The wrapped broker's orders."""
        return self.inner.orders(status, symbol)

    def order(self, order_id: str) -> Order | None:
        """The wrapped broker's order."""
        return self.inner.order(order_id)

    def fills(self, order_id: str | None = None) -> list[Fill]:
        """The wrapped broker's fills."""
        return self.inner.fills(order_id)

    def market_rules(self, symbol: str) -> MarketRules:
        """The wrapped broker's market rules."""
        return self.inner.market_rules(symbol)

    @property
    def cost_model(self) -> CostModel:
        """The wrapped broker's costs (applied on top of the open)."""
        return self.inner.cost_model

    def refresh(self) -> int:
        """The wrapped broker's catch-up."""
        return self.inner.refresh()


def fill_broker(fill: EvalFill, dataset: Dataset) -> BrokerWrapper:
    """What the run's broker becomes for ``fill``: itself ("close"), or a
    :class:`NextOpenBroker` on ``dataset``'s opens ("next_open")."""
    if fill == "next_open":
        opens = NextOpens.of(dataset)
        return lambda broker: NextOpenBroker(broker, opens)
    if fill == "close":
        return _as_is
    raise ValueError(f"unknown fill {fill!r}: 'close' or 'next_open'")


def _as_is(broker: Broker) -> Broker:
    return broker

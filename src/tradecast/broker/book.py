"""The paper account's state, changed only by applying journal events.

Event sourcing keeps the broker honest: the broker validates a request, writes the events it
implies to the journal, then applies them here. A restart applies the same events in the same
order with the same arithmetic, so the restored portfolio is exactly the one that was running.
:meth:`PaperBook.apply` never fails on an event the broker produced.

Event kinds and their ``data`` (JSON; Decimals as strings):

- ``opened``: ``cash``, ``quote_currency``, ``positions`` (seed positions, usually empty)
- ``order``: ``order`` (an accepted Order), ``resting`` (waits for its limit price),
  ``reserved_cash``, ``reserved_qty`` (what a resting order holds back so it can always fill).
  A BUY's intent carries the protection (``stop_loss``, ``take_profit``, ``time_stop_at``) the
  holding takes on when the order fills; events written before ``time_stop_at`` existed have
  no such key and replay with none.
- ``fill``: ``fill`` (a Fill), ``reference_price`` (the mark when it filled), ``trigger``
  (market, limit, stop_loss, take_profit, time_stop)
- ``cancel``: ``order_id``, ``reason``
- ``stop_out``: ``symbol``, ``price``, ``stop_loss``
- ``mark``: ``symbol``, ``price``
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from tradecast.broker.journal import JournalEvent
from tradecast.broker.market_rules import AVG_PRICE_QUANTUM, money
from tradecast.domain import Fill, Order, OrderStatus, Portfolio, Position, Side

Trigger = Literal["market", "limit", "stop_loss", "take_profit", "time_stop"]
ZERO = Decimal(0)


@dataclass
class Holding:
    """A long position while it is open."""

    quantity: Decimal
    avg_price: Decimal
    realized_pnl: Decimal = ZERO
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    time_stop_at: datetime | None = None
    """Close everything at the first price at or after this instant."""
    opened_at: datetime | None = None

    @property
    def protected(self) -> bool:
        """Whether a price can trigger an exit of this holding."""
        return (
            self.stop_loss is not None
            or self.take_profit is not None
            or self.time_stop_at is not None
        )


@dataclass
class PaperBook:
    """Cash, holdings, orders, fills and the equity watermarks of one paper account."""

    quote_currency: str = "USDT"
    cash: Decimal = ZERO
    holdings: dict[str, Holding] = field(default_factory=dict)
    prices: dict[str, Decimal] = field(default_factory=dict)
    timestamp: datetime | None = None
    realized_pnl: Decimal = ZERO
    fees_paid: Decimal = ZERO
    slippage_paid: Decimal = ZERO
    """What fills cost against the mark at the time (slippage, and limits filled through)."""
    peak_equity: Decimal | None = None
    day_start_equity: Decimal | None = None
    day: date | None = None
    stop_outs: dict[str, datetime] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    client_ids: dict[str, str] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    fills_by_order: dict[str, list[Fill]] = field(default_factory=dict)
    reserved_cash: dict[str, Decimal] = field(default_factory=dict)
    reserved_qty: dict[str, Decimal] = field(default_factory=dict)
    open_orders: dict[str, dict[str, Order]] = field(default_factory=dict)
    """Resting orders by symbol, then by order id."""
    opened: bool = False
    events_applied: int = 0

    # --- reading ----------------------------------------------------------------------

    def equity(self, prices: Mapping[str, Decimal] | None = None) -> Decimal:
        """Cash plus holdings at ``prices``, else the marks, else the average price."""
        total = self.cash
        for symbol, holding in self.holdings.items():
            price = (prices or {}).get(symbol) or self.prices.get(symbol, holding.avg_price)
            total += holding.quantity * price
        return total

    def available_cash(self) -> Decimal:
        """Cash not held back by resting buy orders."""
        return self.cash - sum(self.reserved_cash.values(), ZERO)

    def free_quantity(self, symbol: str) -> Decimal:
        """How much of ``symbol`` is held and not already offered by a resting sell."""
        holding = self.holdings.get(symbol)
        if holding is None:
            return ZERO
        resting = self.open_orders.get(symbol, {})
        offered = sum((self.reserved_qty.get(order_id, ZERO) for order_id in resting), ZERO)
        return holding.quantity - offered

    def portfolio(self, prices: Mapping[str, Decimal] | None = None) -> Portfolio:
        """A frozen snapshot, valued at ``prices`` where given, else at the marks."""
        marks = {**self.prices, **(prices or {})}
        positions = tuple(
            Position(
                symbol=symbol,
                quantity=h.quantity,
                avg_price=h.avg_price,
                realized_pnl=h.realized_pnl,
                stop_loss=h.stop_loss,
                take_profit=h.take_profit,
                time_stop_at=h.time_stop_at,
                opened_at=h.opened_at,
            )
            for symbol, h in sorted(self.holdings.items())
        )
        return Portfolio(
            cash=self.cash,
            quote_currency=self.quote_currency,
            positions=positions,
            prices=marks,
            realized_pnl=self.realized_pnl,
            fees_paid=self.fees_paid,
            peak_equity=self.peak_equity,
            day_start_equity=self.day_start_equity,
            timestamp=self.timestamp,
            stop_outs=dict(self.stop_outs),
        )

    # --- changing (journal events only) -----------------------------------------------

    def apply(self, event: JournalEvent) -> None:
        """Apply one journal event (in journal order)."""
        handler = _HANDLERS.get(event.kind)
        if handler is None:
            raise ValueError(f"unknown journal event kind {event.kind!r}")
        handler(self, event)
        self.events_applied += 1

    def _on_opened(self, event: JournalEvent) -> None:
        data = event.data
        self.cash = Decimal(data["cash"])
        self.quote_currency = data["quote_currency"]
        for raw in data.get("positions", []):
            position = Position.model_validate(raw)
            self.holdings[position.symbol] = Holding(
                quantity=position.quantity,
                avg_price=position.avg_price,
                realized_pnl=position.realized_pnl,
                stop_loss=position.stop_loss,
                take_profit=position.take_profit,
                time_stop_at=position.time_stop_at,
                opened_at=position.opened_at,
            )
        self.opened = True
        self.timestamp = event.at
        self.day = event.at.date()
        self.peak_equity = self.day_start_equity = self.equity()

    def _on_mark(self, event: JournalEvent) -> None:
        day = event.at.date()
        if self.day is None or day > self.day:
            # The new day starts from where the last one ended (before this price).
            self.day = day
            self.day_start_equity = self.equity()
        self.prices[event.data["symbol"]] = Decimal(event.data["price"])
        if self.timestamp is None or event.at > self.timestamp:
            self.timestamp = event.at
        self._update_peak()

    def _on_order(self, event: JournalEvent) -> None:
        order = Order.model_validate(event.data["order"])
        self.orders[order.id] = order
        self.client_ids[order.client_order_id] = order.id
        self.fills_by_order[order.id] = []
        reserved_cash = Decimal(event.data["reserved_cash"])
        reserved_qty = Decimal(event.data["reserved_qty"])
        if event.data.get("resting", False):
            self.open_orders.setdefault(order.intent.symbol, {})[order.id] = order
            self.reserved_cash[order.id] = reserved_cash
            self.reserved_qty[order.id] = reserved_qty

    def _on_fill(self, event: JournalEvent) -> None:
        fill = Fill.model_validate(event.data["fill"])
        reference = Decimal(event.data["reference_price"])
        notional = money(fill.quantity * fill.price)
        if fill.side is Side.BUY:
            self._buy(fill, notional)
            self.slippage_paid += notional - fill.quantity * reference
        else:
            self._sell(fill, notional)
            self.slippage_paid += fill.quantity * reference - notional
        self.cash -= fill.fee
        self.fees_paid += fill.fee
        self.fills.append(fill)
        self.fills_by_order.setdefault(fill.order_id, []).append(fill)
        self.prices.setdefault(fill.symbol, reference)
        order = self.orders.get(fill.order_id)
        if order is not None:
            self._close_order(order, OrderStatus.FILLED, None)
            if fill.side is Side.BUY:
                self._attach_protection(fill.symbol, order)
        if self.timestamp is None or fill.timestamp > self.timestamp:
            self.timestamp = fill.timestamp
        self._update_peak()

    def _buy(self, fill: Fill, notional: Decimal) -> None:
        self.cash -= notional
        holding = self.holdings.get(fill.symbol)
        if holding is None:
            self.holdings[fill.symbol] = Holding(
                quantity=fill.quantity, avg_price=fill.price, opened_at=fill.timestamp
            )
            return
        quantity = holding.quantity + fill.quantity
        cost = holding.quantity * holding.avg_price + notional
        holding.avg_price = (cost / quantity).quantize(AVG_PRICE_QUANTUM)
        holding.quantity = quantity

    def _sell(self, fill: Fill, notional: Decimal) -> None:
        self.cash += notional
        holding = self.holdings[fill.symbol]
        realized = money(notional - fill.quantity * holding.avg_price)
        holding.realized_pnl += realized
        self.realized_pnl += realized
        holding.quantity -= fill.quantity
        if holding.quantity == 0:
            del self.holdings[fill.symbol]

    def _attach_protection(self, symbol: str, order: Order) -> None:
        holding = self.holdings.get(symbol)
        if holding is None:
            return
        if order.intent.stop_loss is not None:
            holding.stop_loss = order.intent.stop_loss
        if order.intent.take_profit is not None:
            holding.take_profit = order.intent.take_profit
        if order.intent.time_stop_at is not None:
            holding.time_stop_at = order.intent.time_stop_at

    def _on_cancel(self, event: JournalEvent) -> None:
        order = self.orders[event.data["order_id"]]
        self._close_order(order, OrderStatus.CANCELLED, event.data.get("reason"))

    def _close_order(self, order: Order, status: OrderStatus, reason: str | None) -> None:
        self.orders[order.id] = order.model_copy(update={"status": status, "reason": reason})
        self.reserved_cash.pop(order.id, None)
        self.reserved_qty.pop(order.id, None)
        resting = self.open_orders.get(order.intent.symbol)
        if resting is not None:
            resting.pop(order.id, None)
            if not resting:
                del self.open_orders[order.intent.symbol]

    def _on_stop_out(self, event: JournalEvent) -> None:
        self.stop_outs[event.data["symbol"]] = event.at

    def _update_peak(self) -> None:
        equity = self.equity()
        if self.peak_equity is None or equity > self.peak_equity:
            self.peak_equity = equity


_HANDLERS = {
    "opened": PaperBook._on_opened,
    "mark": PaperBook._on_mark,
    "order": PaperBook._on_order,
    "fill": PaperBook._on_fill,
    "cancel": PaperBook._on_cancel,
    "stop_out": PaperBook._on_stop_out,
}


# --- event constructors (the only shapes the book accepts) -------------------------------


def opened_event(
    cash: Decimal, quote_currency: str, at: datetime, positions: tuple[Position, ...] = ()
) -> JournalEvent:
    """The account's first event: starting cash and any seed positions."""
    return JournalEvent(
        "opened",
        at,
        {
            "cash": str(cash),
            "quote_currency": quote_currency,
            "positions": [p.model_dump(mode="json") for p in positions],
        },
    )


def mark_event(symbol: str, price: Decimal, at: datetime) -> JournalEvent:
    """A price observation."""
    return JournalEvent("mark", at, {"symbol": symbol, "price": str(price)})


def order_event(
    order: Order, resting: bool, reserved_cash: Decimal = ZERO, reserved_qty: Decimal = ZERO
) -> JournalEvent:
    """An accepted order; a resting one holds back cash (buy) or quantity (sell)."""
    data: dict[str, Any] = {
        "order": order.model_dump(mode="json"),
        "resting": resting,
        "reserved_cash": str(reserved_cash),
        "reserved_qty": str(reserved_qty),
    }
    return JournalEvent("order", order.created_at, data)


def fill_event(fill: Fill, reference_price: Decimal, trigger: Trigger) -> JournalEvent:
    """An execution against the mark ``reference_price``."""
    data = {
        "fill": fill.model_dump(mode="json"),
        "reference_price": str(reference_price),
        "trigger": trigger,
    }
    return JournalEvent("fill", fill.timestamp, data)


def cancel_event(order_id: str, reason: str, at: datetime) -> JournalEvent:
    """A resting order withdrawn (by request, or because a stop closed the position)."""
    return JournalEvent("cancel", at, {"order_id": order_id, "reason": reason})


def stop_out_event(symbol: str, price: Decimal, stop_loss: Decimal, at: datetime) -> JournalEvent:
    """A stop-loss triggered (the risk gate's cooldown starts here)."""
    data = {"symbol": symbol, "price": str(price), "stop_loss": str(stop_loss)}
    return JournalEvent("stop_out", at, data)

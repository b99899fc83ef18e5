"""The paper account's state, changed only by applying journal events.

Event sourcing keeps the broker honest: the broker validates a request, writes the events it
implies to the journal, then applies them here. A restart applies the same events in the same
order with the same arithmetic, so the restored portfolio is exactly the one that was running.
:meth:`PaperBook.apply` never fails on an event the broker produced.

Event kinds and their ``data`` (JSON; Decimals as strings):

- ``opened``: ``cash``, ``quote_currency``, ``positions`` (seed positions, usually empty;
  shorts only on a margin account) and, on a margin account only, ``margin`` (the terms:
  :class:`tradecast.settings.MarginConfig` as JSON). A spot account's opened event has no
  ``margin`` key, exactly as before margin existed.
- ``margin``: ``terms`` (a spot account turned into a margin account; see
  :class:`tradecast.broker.paper.PaperBroker`)
- ``order``: ``order`` (an accepted Order), ``resting`` (waits for its limit price),
  ``reserved_cash``, ``reserved_qty`` (what a resting order holds back so it can always fill).
  A BUY's intent carries the protection (``stop_loss``, ``take_profit``, ``time_stop_at``) the
  holding takes on when the order fills; events written before ``time_stop_at`` existed have
  no such key and replay with none.
- ``fill``: ``fill`` (a Fill), ``reference_price`` (the mark when it filled), ``trigger``
  (market, limit, stop_loss, take_profit, time_stop, liquidation). What a fill does follows
  from the book, so the fill event needs no new field for shorts: a BUY covers the symbol's
  short when one is open, else buys a long; a SELL sells the long when one is open, else
  opens or adds to a short (the broker never plans an order through zero).
- ``borrow``: ``symbol``, ``amount``, ``intervals`` (a short's borrow fee, paid from cash;
  it counts in realised P&L and ``borrow_paid``; the next fee accrues from ``at``)
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
from tradecast.broker.margin import liquidation_price, terms_data, terms_from_data
from tradecast.broker.market_rules import AVG_PRICE_QUANTUM, money
from tradecast.domain import Fill, Order, OrderStatus, Portfolio, Position, PositionSide, Side
from tradecast.settings import MarginConfig

Trigger = Literal["market", "limit", "stop_loss", "take_profit", "time_stop", "liquidation"]
ZERO = Decimal(0)


@dataclass
class Holding:
    """A position while it is open: long, or short on a margin account (``quantity`` is
    positive either way)."""

    quantity: Decimal
    avg_price: Decimal
    realized_pnl: Decimal = ZERO
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    time_stop_at: datetime | None = None
    """Close everything at the first price at or after this instant."""
    opened_at: datetime | None = None
    side: PositionSide = "long"
    borrow_from: datetime | None = None
    """A short's borrow fee accrues from this instant (its opening, then its last fee)."""

    @property
    def signed_quantity(self) -> Decimal:
        """The quantity, negative for a short."""
        return -self.quantity if self.side == "short" else self.quantity

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
    margin: MarginConfig | None = None
    """The margin terms of a margin account (None: spot, long only)."""
    borrow_paid: Decimal = ZERO
    triggers: dict[str, Trigger] = field(default_factory=dict)
    """What filled each order (by order id): market, limit, an exit or a liquidation."""

    # --- reading ----------------------------------------------------------------------

    def equity(self, prices: Mapping[str, Decimal] | None = None) -> Decimal:
        """Cash plus holdings at ``prices``, else the marks, else the average price."""
        total = self.cash
        for symbol, holding in self.holdings.items():
            price = (prices or {}).get(symbol) or self.prices.get(symbol, holding.avg_price)
            total += holding.signed_quantity * price
        return total

    def signed_quantities(self) -> dict[str, Decimal]:
        """Every open position's signed quantity (negative: short)."""
        return {s: h.signed_quantity for s, h in self.holdings.items()}

    def marks(self) -> dict[str, Decimal]:
        """The marks, with the average price of any held symbol never marked."""
        return {
            **{s: h.avg_price for s, h in self.holdings.items() if s not in self.prices},
            **self.prices,
        }

    def held_short(self, symbol: str) -> Holding | None:
        """The open short in ``symbol``, if any."""
        holding = self.holdings.get(symbol)
        return holding if holding is not None and holding.side == "short" else None

    def held_long(self, symbol: str) -> Holding | None:
        """The open long in ``symbol``, if any."""
        holding = self.holdings.get(symbol)
        return holding if holding is not None and holding.side == "long" else None

    def available_cash(self) -> Decimal:
        """Cash not held back by resting buy orders."""
        return self.cash - sum(self.reserved_cash.values(), ZERO)

    def free_quantity(self, symbol: str) -> Decimal:
        """How much of ``symbol`` is held and not already offered by a resting sell."""
        holding = self.holdings.get(symbol)
        if holding is None or holding.side == "short":
            return ZERO
        resting = self.open_orders.get(symbol, {})
        offered = sum((self.reserved_qty.get(order_id, ZERO) for order_id in resting), ZERO)
        return holding.quantity - offered

    def resting_qty(self, symbol: str, side: Side) -> Decimal:
        """The quantity of resting ``side`` orders in ``symbol``."""
        resting = self.open_orders.get(symbol, {}).values()
        return sum((o.intent.quantity for o in resting if o.intent.side is side), ZERO)

    def liquidation_price(self, symbol: str, prices: Mapping[str, Decimal]) -> Decimal | None:
        """The liquidation price of the short in ``symbol`` at ``prices`` (None: no short, a
        spot account, or no positive price would reach the line)."""
        if self.margin is None or self.held_short(symbol) is None:
            return None
        marks = {**self.marks(), **prices}
        return liquidation_price(
            symbol, self.cash, self.signed_quantities(), marks, self.margin.maintenance_margin_pct
        )

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
                side=h.side,
                liquidation_price=self.liquidation_price(symbol, marks),
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
            borrow_paid=self.borrow_paid,
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
        if "margin" in data:
            self.margin = terms_from_data(data["margin"])
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
                side=position.side,
                borrow_from=event.at if position.side == "short" else None,
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
        holding = self.holdings.get(fill.symbol)
        if fill.side is Side.BUY:
            if holding is not None and holding.side == "short":
                self._cover(fill, notional, holding)
            else:
                self._buy(fill, notional)
            self.slippage_paid += notional - fill.quantity * reference
        else:
            if holding is not None and holding.side == "long":
                self._sell(fill, notional)
            else:
                self._short(fill, notional, holding)
            self.slippage_paid += fill.quantity * reference - notional
        self.cash -= fill.fee
        self.fees_paid += fill.fee
        self.fills.append(fill)
        self.fills_by_order.setdefault(fill.order_id, []).append(fill)
        self.prices.setdefault(fill.symbol, reference)
        order = self.orders.get(fill.order_id)
        self.triggers[fill.order_id] = event.data.get("trigger", "market")
        if order is not None:
            self._close_order(order, OrderStatus.FILLED, None)
            after = self.holdings.get(fill.symbol)
            opening = "long" if fill.side is Side.BUY else "short"
            if after is not None and after.side == opening:
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

    def _short(self, fill: Fill, notional: Decimal, holding: Holding | None) -> None:
        """Open or add to a short: the proceeds go to cash; the average entry is kept."""
        self.cash += notional
        if holding is None:
            self.holdings[fill.symbol] = Holding(
                quantity=fill.quantity,
                avg_price=fill.price,
                opened_at=fill.timestamp,
                side="short",
                borrow_from=fill.timestamp,
            )
            return
        quantity = holding.quantity + fill.quantity
        proceeds = holding.quantity * holding.avg_price + notional
        holding.avg_price = (proceeds / quantity).quantize(AVG_PRICE_QUANTUM)
        holding.quantity = quantity

    def _cover(self, fill: Fill, notional: Decimal, holding: Holding) -> None:
        """Buy back (part of) a short: realised P&L is the entry minus the cover price."""
        self.cash -= notional
        realized = money(fill.quantity * holding.avg_price - notional)
        holding.realized_pnl += realized
        self.realized_pnl += realized
        holding.quantity -= fill.quantity
        if holding.quantity == 0:
            del self.holdings[fill.symbol]

    def _on_borrow(self, event: JournalEvent) -> None:
        amount = Decimal(event.data["amount"])
        self.cash -= amount
        self.borrow_paid += amount
        self.realized_pnl -= amount
        holding = self.holdings.get(event.data["symbol"])
        if holding is not None:
            holding.realized_pnl -= amount
            holding.borrow_from = event.at
        if self.timestamp is None or event.at > self.timestamp:
            self.timestamp = event.at
        self._update_peak()

    def _on_margin(self, event: JournalEvent) -> None:
        self.margin = terms_from_data(event.data["terms"])

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
    "borrow": PaperBook._on_borrow,
    "margin": PaperBook._on_margin,
}


# --- event constructors (the only shapes the book accepts) -------------------------------


def opened_event(
    cash: Decimal,
    quote_currency: str,
    at: datetime,
    positions: tuple[Position, ...] = (),
    margin: MarginConfig | None = None,
) -> JournalEvent:
    """The account's first event: starting cash, any seed positions and, on a margin account,
    its terms (a spot account's event is exactly what it was before margin existed)."""
    data: dict[str, Any] = {
        "cash": str(cash),
        "quote_currency": quote_currency,
        "positions": [_position_data(p) for p in positions],
    }
    if margin is not None:
        data["margin"] = terms_data(margin)
    return JournalEvent("opened", at, data)


def _position_data(position: Position) -> dict[str, Any]:
    # Seed positions are stored as they were before shorts existed: a long has no 'side'.
    data = position.model_dump(mode="json", exclude={"liquidation_price"})
    if position.side == "long":
        data.pop("side")
    return data


def margin_event(terms: MarginConfig, at: datetime) -> JournalEvent:
    """A spot account becomes a margin account on ``terms`` (from now on)."""
    return JournalEvent("margin", at, {"terms": terms_data(terms)})


def borrow_event(symbol: str, amount: Decimal, intervals: int, at: datetime) -> JournalEvent:
    """A short's borrow fee for ``intervals`` boundaries crossed up to ``at``."""
    data = {"symbol": symbol, "amount": str(amount), "intervals": intervals}
    return JournalEvent("borrow", at, data)


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

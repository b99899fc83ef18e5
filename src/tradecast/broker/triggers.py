"""What prices and the clock trigger on a paper account, planned as journal events.

:class:`TriggerPlanner` reads a :class:`~tradecast.broker.book.PaperBook` and never changes
it: the paper broker (:class:`tradecast.broker.paper.PaperBroker`) journals the events it
plans, with its own, then applies them to the book.

A mark (:meth:`TriggerPlanner.triggered`) fills, in this order:

- every **resting limit** the price crosses, at its own limit price (a resting limit is
  passive; the fill's trigger is ``limit``). A BUY's protection goes to the position it fills
  into; a BUY that covers a short carries none;
- then at most one **exit** of the position those fills leave: stop-loss first, then
  take-profit, then the time stop. A long exits with a SELL, a short with a BUY to cover (a
  short's ``stop_loss`` is above its entry, its ``take_profit`` below). A stop-loss or time
  stop fills at the market with the usual slippage, a take-profit at its own price; a
  stop-loss is also journaled as a ``stop_out`` (the risk gate's cooldown), a time stop is
  not. Resting orders on the exit's side are cancelled.

On a **margin account** (arithmetic in :mod:`tradecast.broker.margin`):

- **borrow fees** (:meth:`TriggerPlanner.borrow_events`) are charged on marks and submits for
  every interval boundary crossed, as ``borrow`` events before the event's own mark or order,
  on each short's value at its mark (its entry when never marked);
- on every mark, after the exits, an account the planned events leave under its
  **maintenance** line is **liquidated** (:meth:`TriggerPlanner.liquidation`): every short
  bought back at the mark with the usual slippage and fees (the fills' trigger is
  ``liquidation``); resting orders in those symbols, not already filled or cancelled by the
  plan, are cancelled. Only marks liquidate.

Exit and liquidation orders take the next order ids, and their trigger and id as client
order id (``stop_loss-PB-00000007``). The broker builds its own orders' fills and ids with the
same helpers (:func:`make_fill`, :func:`next_order_id`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from tradecast.broker.book import (
    ZERO,
    PaperBook,
    Trigger,
    borrow_event,
    cancel_event,
    fill_event,
    order_event,
    stop_out_event,
)
from tradecast.broker.journal import JournalEvent
from tradecast.broker.margin import Projection, borrow_amount, boundaries_crossed, equity
from tradecast.broker.market_rules import CostModel, MarketRules, money
from tradecast.domain import Fill, Order, OrderIntent, OrderStatus, OrderType, Side
from tradecast.logs import get_logger

log = get_logger(__name__)

Protection = tuple[Decimal | None, Decimal | None, datetime | None]
"""A position's stop_loss, take_profit and time_stop_at."""


class TriggerPlanner:
    """Plans the fills, exits, borrow fees and liquidations of ``book``'s account.

    ``costs`` prices the fills, ``rules`` gives a symbol's exchange rules (for the slippage)
    and ``account`` names the account in the logs.
    """

    def __init__(
        self,
        book: PaperBook,
        costs: CostModel,
        rules: Callable[[str], MarketRules],
        account: str,
    ) -> None:
        self._book = book
        self._costs = costs
        self._rules = rules
        self._account = account

    def triggered(self, symbol: str, price: Decimal, at: datetime) -> list[JournalEvent]:
        """Fills of resting limits crossed by ``price``, then a stop-loss/take-profit/time-stop
        exit (a SELL for a long, a BUY to cover for a short)."""
        resting = self._book.open_orders.get(symbol, {})
        holding = self._book.holdings.get(symbol)
        if not resting and (holding is None or not holding.protected):
            return []
        events: list[JournalEvent] = []
        signed = holding.signed_quantity if holding else ZERO
        stop_loss = holding.stop_loss if holding else None
        take_profit = holding.take_profit if holding else None
        time_stop_at = holding.time_stop_at if holding else None
        still_resting: list[Order] = []
        for order in resting.values():
            intent = order.intent
            limit = intent.limit_price or price
            if (intent.side is Side.BUY and price <= limit) or (
                intent.side is Side.SELL and price >= limit
            ):
                # A resting limit is passive: it fills at its own price.
                fill = make_fill(self._costs, order, intent.quantity, limit, at)
                events.append(fill_event(fill, price, "limit"))
                if intent.side is Side.BUY:
                    # (A BUY covering a short carries no protection: these stay the short's.)
                    signed += intent.quantity
                    stop_loss = intent.stop_loss or stop_loss
                    take_profit = intent.take_profit or take_profit
                    time_stop_at = intent.time_stop_at or time_stop_at
                else:
                    signed -= intent.quantity
            else:
                still_resting.append(order)
        if signed != 0:
            events += self._protective_exit(
                symbol,
                signed,
                price,
                at,
                (stop_loss, take_profit, time_stop_at),
                still_resting,
                count_events(events, "order"),
            )
        return events

    def _protective_exit(
        self,
        symbol: str,
        signed: Decimal,
        price: Decimal,
        at: datetime,
        protection: Protection,
        still_resting: list[Order],
        new_orders: int,
    ) -> list[JournalEvent]:
        """The exit ``price`` at ``at`` triggers, if any: stop-loss first, then take-profit,
        then the time stop (``protection`` is stop_loss, take_profit, time_stop_at). A long
        (``signed`` > 0) exits with a SELL, a short with a BUY; its stop is above the price
        and its take-profit below."""
        stop_loss, take_profit, time_stop_at = protection
        short = signed < 0
        side = Side.BUY if short else Side.SELL
        quantity = abs(signed)
        stopped = stop_loss is not None and (price >= stop_loss if short else price <= stop_loss)
        took = take_profit is not None and (price <= take_profit if short else price >= take_profit)
        if stopped:
            trigger: Trigger = "stop_loss"
            fill_price = self._costs.taker_price(side, quantity, price, self._rules(symbol))
            intent = OrderIntent(symbol=symbol, side=side, quantity=quantity)
        elif took and take_profit is not None:
            trigger = "take_profit"
            fill_price = take_profit
            intent = OrderIntent(
                symbol=symbol,
                side=side,
                quantity=quantity,
                order_type=OrderType.LIMIT,
                limit_price=take_profit,
            )
        elif time_stop_at is not None and at >= time_stop_at:
            # Time is up: close at the market, like a stop (but not a stop-out: no cooldown).
            trigger = "time_stop"
            fill_price = self._costs.taker_price(side, quantity, price, self._rules(symbol))
            intent = OrderIntent(symbol=symbol, side=side, quantity=quantity)
        else:
            return []
        events: list[JournalEvent] = [
            cancel_event(o.id, f"position closed by {trigger.replace('_', '-')}", at)
            for o in still_resting
            if o.intent.side is side
        ]
        if trigger == "stop_loss" and stop_loss is not None:
            events.append(stop_out_event(symbol, price, stop_loss, at))
        order = exit_order(self._book, intent, trigger, new_orders, at)
        events.append(order_event(order, resting=False))
        events.append(
            fill_event(make_fill(self._costs, order, quantity, fill_price, at), price, trigger)
        )
        return events

    def borrow_events(self, at: datetime) -> list[JournalEvent]:
        """The borrow fees due at ``at``: one event per short with a boundary crossed."""
        terms = self._book.margin
        if terms is None or terms.borrow_bps_per_interval == 0:
            return []
        events = []
        for symbol, holding in sorted(self._book.holdings.items()):
            if holding.side != "short" or holding.borrow_from is None:
                continue
            intervals = boundaries_crossed(holding.borrow_from, at, terms.borrow_interval_hours)
            if intervals > 0:
                mark = self._book.prices.get(symbol, holding.avg_price)
                amount = borrow_amount(holding.quantity, mark, terms, intervals)
                events.append(borrow_event(symbol, amount, intervals, at))
        return events

    def liquidation(self, planned: list[JournalEvent], at: datetime) -> list[JournalEvent]:
        """Buy back every short when the account, once ``planned`` is applied, is under its
        maintenance line; resting orders in those symbols are cancelled first."""
        terms = self._book.margin
        if terms is None:
            return []
        book = self._book
        projection = Projection(book.cash, book.signed_quantities(), book.marks()).apply(planned)
        if not projection.below_maintenance(terms.maintenance_margin_pct):
            return []
        done = {e.data["fill"]["order_id"] for e in planned if e.kind == "fill"}
        done |= {e.data["order_id"] for e in planned if e.kind == "cancel"}
        events: list[JournalEvent] = []
        new_orders = count_events(planned, "order")
        for symbol, quantity in projection.shorts().items():
            events += [
                cancel_event(order_id, "cancelled: the account's shorts were liquidated", at)
                for order_id in book.open_orders.get(symbol, {})
                if order_id not in done
            ]
            mark = projection.prices[symbol]
            price = self._costs.taker_price(Side.BUY, quantity, mark, self._rules(symbol))
            order = exit_order(
                book,
                OrderIntent(symbol=symbol, side=Side.BUY, quantity=quantity),
                "liquidation",
                new_orders,
                at,
            )
            new_orders += 1
            events.append(order_event(order, resting=False))
            events.append(
                fill_event(make_fill(self._costs, order, quantity, price, at), mark, "liquidation")
            )
        log.warning(
            "broker.liquidation",
            account=self._account,
            equity=str(equity(projection.cash, projection.signed, projection.prices)),
            shorts=sorted(projection.shorts()),
        )
        return events


def make_fill(
    costs: CostModel, order: Order, quantity: Decimal, price: Decimal, at: datetime
) -> Fill:
    """A fill of ``quantity`` of ``order`` at ``price``, with the fee of ``costs``."""
    fee = costs.fee(money(quantity * price))
    return Fill(
        order_id=order.id,
        symbol=order.intent.symbol,
        side=order.intent.side,
        quantity=quantity,
        price=price,
        fee=fee,
        timestamp=at,
    )


def next_order_id(book: PaperBook, offset: int = 0) -> str:
    """The id of the next order on ``book``, or of the one ``offset`` orders after it (for an
    order planned after others not yet applied)."""
    return f"PB-{len(book.orders) + 1 + offset:08d}"


def exit_order(
    book: PaperBook, intent: OrderIntent, trigger: Trigger, new_orders: int, at: datetime
) -> Order:
    """The order of an exit or liquidation: the next id after ``new_orders`` planned ones,
    its trigger and id as client order id."""
    order_id = next_order_id(book, offset=new_orders)
    client_id = f"{trigger}-{order_id}"
    return Order(
        id=order_id,
        client_order_id=client_id,
        intent=intent.model_copy(update={"client_order_id": client_id}),
        status=OrderStatus.OPEN,
        created_at=at,
    )


def count_events(events: list[JournalEvent], kind: str) -> int:
    """How many of ``events`` are of ``kind``."""
    return sum(1 for event in events if event.kind == kind)

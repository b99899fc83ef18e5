"""The broker interface and the paper broker (simulated fills with fees and slippage).

The paper broker is spot and long-only by default: market and limit orders, fees in bps,
slippage in bps plus a size-aware term, positions with an average price and realised/unrealised
P&L, and stop-loss / take-profit / time-stop exits triggered by prices. Every change is
journaled before it is applied (see :mod:`tradecast.broker.book`), so a restart restores it
exactly.

A **margin account** (``margin`` terms enabled; arithmetic in :mod:`tradecast.broker.margin`)
also sells short:

- a SELL of a symbol with no long opens or adds to a short (cash gets the proceeds minus the
  fee; the short keeps its average entry); a BUY of a symbol held short covers it (realised
  P&L: entry minus cover price, times the quantity). No order goes through zero: selling more
  than the long, or buying more than the short (less what resting buys already cover), is a
  BrokerError; the desk sends two orders. Opening a short while buy orders rest in the symbol
  is refused too (they would cover it instead of buying);
- a short-opening SELL must fill at once (market, or a marketable limit): **resting
  short-opening limits are refused** rather than reserving margin for a fill at an unknown
  time. Resting BUY limits may cover a short (they hold back cash like any buy);
- opening or adding to a short needs the **initial margin** after the fill; on every mark,
  after the exits, an account under its **maintenance** line is **liquidated** (every short
  bought back at the mark with the usual slippage and fees; the fills' trigger is
  ``liquidation``; resting orders in those symbols are cancelled). Only marks liquidate;
- a short may carry protection like a long: ``stop_loss`` above the entry, ``take_profit``
  below it, ``time_stop_at`` (exits are BUYs to cover). A cover BUY takes none;
- **borrow fees** are charged on marks and submits for every interval boundary crossed
  (journaled ``borrow`` events, before the event's own mark or order).

The margin terms are journaled (in the ``opened`` event, or a ``margin`` event when a spot
account is turned into a margin account), and **the journal's terms rule**: a broker built
with different terms for an existing account is refused with a BrokerError (spot terms for a
margin account included), except that margin terms given to a spot account turn it into a
margin account from then on. ``margin=None`` takes whatever the journal says (spot for a new
account).

Submitting is idempotent on ``client_order_id``: a repeat returns the original order and fills
once. Bad input raises :class:`BrokerError` with a clear message and changes nothing.

Brokers on several replicas may share one account's journal: each write names the last event
the broker has applied, and when another replica wrote first the broker catches up
(:meth:`PaperBroker.refresh`) and plans again, so a client order id placed by another replica
is found as a repeat rather than filled twice.

The broker does not enforce the desk's risk limits; agents reach it only through
:class:`tradecast.risk.execution.GatedExecutor`, which runs the risk gate first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Protocol, runtime_checkable

from tradecast.broker.book import (
    ZERO,
    PaperBook,
    Trigger,
    borrow_event,
    cancel_event,
    fill_event,
    margin_event,
    mark_event,
    opened_event,
    order_event,
    stop_out_event,
)
from tradecast.broker.journal import Journal, JournalConflict, JournalEvent
from tradecast.broker.margin import (
    Projection,
    after_short_fill,
    borrow_amount,
    boundaries_crossed,
    describe_terms,
    equity,
    meets_initial_margin,
)
from tradecast.broker.market_rules import (
    DEFAULT_MARKET_RULES,
    CostModel,
    MarketRules,
    money,
    rules_for,
)
from tradecast.domain import (
    DomainModel,
    Fill,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    Portfolio,
    Position,
    Side,
    canonical_symbol,
    utc_now,
)
from tradecast.errors import BrokerError
from tradecast.logs import get_logger
from tradecast.settings import BrokerConfig, MarginConfig

log = get_logger(__name__)

Clock = Callable[[], datetime]
PriceInput = Decimal | int | float | str


class Execution(DomainModel):
    """What a submit did: the order, its fills, and whether it was a repeat of an earlier one."""

    order: Order
    fills: tuple[Fill, ...] = ()
    duplicate: bool = False


@runtime_checkable
class Broker(Protocol):
    """Where orders go: the paper broker now, an exchange later."""

    async def submit(self, intent: OrderIntent, at: datetime | None = None) -> Execution:
        """Place an order; a repeated ``client_order_id`` returns the first order unchanged."""
        ...

    async def cancel(self, order_id: str, at: datetime | None = None) -> Order:
        """Withdraw a resting order (by order id or client order id)."""
        ...

    async def on_price(self, symbol: str, price: PriceInput, at: datetime) -> tuple[Fill, ...]:
        """Mark ``symbol`` to ``price``; fill resting limits and stop-loss/take-profit/time-stop
        exits."""
        ...

    def portfolio(self, prices: Mapping[str, PriceInput] | None = None) -> Portfolio:
        """Cash, positions and watermarks, valued at ``prices`` (default: the last marks)."""
        ...

    def orders(self, status: OrderStatus | None = None, symbol: str | None = None) -> list[Order]:
        """Orders in submission order, optionally only one status or symbol."""
        ...

    def order(self, order_id: str) -> Order | None:
        """One order by order id or client order id (None: no such order)."""
        ...

    def fills(self, order_id: str | None = None) -> list[Fill]:
        """Fills in execution order, optionally of one order."""
        ...

    def market_rules(self, symbol: str) -> MarketRules:
        """The exchange's minimums and steps for ``symbol``."""
        ...

    @property
    def cost_model(self) -> CostModel:
        """Fees and slippage the broker charges (the gate sizes orders with it)."""
        ...

    def refresh(self) -> int:
        """Catch up with what other replicas did on the same account; returns the number of
        changes it applied (0 when nobody else writes)."""
        ...


def derive_client_order_id(intent: OrderIntent, at: datetime) -> str:
    """A client order id for an intent that has none: the same intent at the same time maps to
    the same id, so a retry at the same instant (e.g. the same replay bar) fills once."""
    payload = intent.model_dump(mode="json", exclude={"client_order_id"})
    if payload.get("time_stop_at") is None:
        # Intents without a time stop keep the ids they had before the field existed, so a
        # retry across an upgrade is still found as a repeat.
        payload.pop("time_stop_at", None)
    digest = hashlib.sha256(
        json.dumps([payload, at.astimezone(UTC).isoformat()], sort_keys=True).encode()
    ).hexdigest()
    return f"auto-{digest[:24]}"


COMMIT_ATTEMPTS = 5
"""Plans per operation when other replicas keep writing to the same account."""


class PaperBroker:
    """A simulated spot (or margin) exchange account, journaled and restorable.

    On construction it replays ``account``'s events from ``journal``; an empty journal opens
    the account with ``starting_cash`` (and ``seed_positions``, e.g. for evaluations; shorts
    only on a margin account) and ``margin`` terms when they are enabled.
    ``symbols`` lists what it trades (default: the symbols with bundled or given ``rules``).
    ``margin`` must match an existing account's journaled terms (None: take the journal's).
    """

    def __init__(
        self,
        journal: Journal,
        *,
        account: str = "paper",
        starting_cash: Decimal = Decimal("10000"),
        quote_currency: str = "USDT",
        costs: CostModel | None = None,
        rules: Mapping[str, MarketRules] | None = None,
        symbols: Iterable[str] | None = None,
        clock: Clock = utc_now,
        seed_positions: tuple[Position, ...] = (),
        margin: MarginConfig | None = None,
    ) -> None:
        self._journal = journal
        self.account = account
        self._costs = costs or CostModel()
        self._rules = dict(rules or {})
        self._symbols = frozenset(
            _symbol(s) for s in (symbols or [*DEFAULT_MARKET_RULES, *self._rules])
        )
        self._clock = clock
        self._book = PaperBook()
        self._seq = 0
        events = journal.read(account)
        if events:
            if seed_positions:
                raise BrokerError(
                    f"account {account!r} already has a journal; seed positions apply only to a "
                    "new account (use another account name)"
                )
            self._apply(events)
            log.info(
                "broker.restored",
                account=account,
                events=len(events),
                cash=str(self._book.cash),
                positions=len(self._book.holdings),
            )
            if margin is not None:
                self._agree_terms(margin)
        else:
            terms = margin if margin is not None and margin.enabled else None
            if terms is None and any(p.side == "short" for p in seed_positions):
                raise BrokerError("seed positions may be short only on a margin account")
            cash = _checked_money(starting_cash, "starting_cash")
            opened = opened_event(cash, quote_currency, self._now(None), seed_positions, terms)
            if not self._try_commit([opened]):
                log.info("broker.opened_elsewhere", account=account, seq=self._seq)
                if margin is not None:
                    self._agree_terms(margin)

    @classmethod
    def from_config(cls, config: BrokerConfig, journal: Journal, **kwargs: object) -> PaperBroker:
        """A paper broker with the starting cash, currency, costs and margin terms of
        ``config``."""
        return cls(
            journal,
            starting_cash=config.starting_cash,
            quote_currency=config.quote_currency,
            costs=CostModel.from_config(config),
            margin=config.margin,
            **kwargs,  # type: ignore[arg-type]
        )

    def _agree_terms(self, margin: MarginConfig) -> None:
        """Check ``margin`` against the journal's terms; a spot account given margin terms
        becomes a margin account (journaled), anything else that differs is refused."""
        wanted = margin if margin.enabled else None
        for _ in range(COMMIT_ATTEMPTS):
            journaled = self._book.margin
            if wanted == journaled:
                return
            if journaled is not None or wanted is None:
                raise BrokerError(
                    f"account {self.account!r} was opened as {describe_terms(journaled)}, but "
                    f"this broker is configured for {describe_terms(wanted)}: the journal's "
                    "terms rule its positions; restore the settings or use another account"
                )
            if self._try_commit([margin_event(wanted, self._now(None))]):
                log.info("broker.margin_enabled", account=self.account)
                return
        raise self._busy("enable margin")

    # --- Broker -----------------------------------------------------------------------

    @property
    def cost_model(self) -> CostModel:
        """Fees and slippage this broker charges."""
        return self._costs

    def market_rules(self, symbol: str) -> MarketRules:
        """The exchange rules of ``symbol`` (configured, bundled Binance, or generic)."""
        return rules_for(_symbol(symbol), self._rules)

    async def submit(self, intent: OrderIntent, at: datetime | None = None) -> Execution:
        """Place ``intent``; fills at once when marketable, else rests until its price."""
        if not isinstance(intent, OrderIntent):
            raise BrokerError(f"submit needs an OrderIntent, got {type(intent).__name__}")
        when = self._now(at)
        client_id = intent.client_order_id or derive_client_order_id(intent, when)
        intent = intent.model_copy(update={"client_order_id": client_id})
        self.refresh()
        for _ in range(COMMIT_ATTEMPTS):
            repeat = self._repeat(intent)
            if repeat is not None:
                return repeat
            events = self._plan_order(intent, when)
            if self._try_commit(events):
                break
        else:
            raise self._busy("submit")
        order = self._book.orders[next(e for e in events if e.kind == "order").data["order"]["id"]]
        fills = tuple(self._book.fills_by_order.get(order.id, ()))
        log.info(
            "broker.order",
            order_id=order.id,
            client_order_id=client_id,
            symbol=intent.symbol,
            side=intent.side.value,
            quantity=str(intent.quantity),
            status=order.status.value,
            fills=len(fills),
        )
        return Execution(order=order, fills=fills)

    async def cancel(self, order_id: str, at: datetime | None = None) -> Order:
        """Withdraw a resting order; filled or cancelled orders are an error."""
        self.refresh()
        for _ in range(COMMIT_ATTEMPTS):
            order = self._find_order(order_id)
            if order.id not in self._book.open_orders.get(order.intent.symbol, {}):
                raise BrokerError(
                    f"order {order.id} is {order.status.value}; only open orders can be cancelled"
                )
            if self._try_commit([cancel_event(order.id, "cancelled on request", self._now(at))]):
                return self._book.orders[order.id]
        raise self._busy("cancel")

    async def on_price(self, symbol: str, price: PriceInput, at: datetime) -> tuple[Fill, ...]:
        """Mark to market and run what the price triggers; returns the fills it caused."""
        symbol = self._known_symbol(symbol)
        mark = _checked_price(price, f"price of {symbol}")
        when = self._now(at)
        self.refresh()
        for _ in range(COMMIT_ATTEMPTS):
            events = [
                *self._borrow_events(when),
                mark_event(symbol, mark, when),
                *self._triggered(symbol, mark, when),
            ]
            events += self._liquidation(events, when)
            if self._try_commit(events):
                break
        else:
            raise self._busy("mark")
        fills = tuple(self._book.fills[-n:]) if (n := _count(events, "fill")) else ()
        for fill in fills:
            log.info(
                "broker.triggered_fill",
                order_id=fill.order_id,
                symbol=symbol,
                side=fill.side.value,
                quantity=str(fill.quantity),
                price=str(fill.price),
            )
        return fills

    def portfolio(self, prices: Mapping[str, PriceInput] | None = None) -> Portfolio:
        """A snapshot valued at ``prices`` where given (nothing is marked), else the marks."""
        checked = {
            _symbol(s): _checked_price(p, f"price of {s}") for s, p in (prices or {}).items()
        }
        return self._book.portfolio(checked)

    def orders(self, status: OrderStatus | None = None, symbol: str | None = None) -> list[Order]:
        """Orders in submission order, filtered by status and symbol."""
        wanted = _symbol(symbol) if symbol else None
        return [
            o
            for o in self._book.orders.values()
            if (status is None or o.status is status)
            and (wanted is None or o.intent.symbol == wanted)
        ]

    def order(self, order_id: str) -> Order | None:
        """One order by order id or client order id (None: no such order)."""
        try:
            return self._find_order(order_id)
        except BrokerError:
            return None

    def fills(self, order_id: str | None = None) -> list[Fill]:
        """Fills in execution order, optionally of one order."""
        if order_id is None:
            return list(self._book.fills)
        return list(self._book.fills_by_order.get(self._find_order(order_id).id, ()))

    # --- extras -----------------------------------------------------------------------

    def available_cash(self) -> Decimal:
        """Cash not held back by resting buy orders."""
        return self._book.available_cash()

    @property
    def slippage_paid(self) -> Decimal:
        """Total cost of fills against the mark at the time (slippage and limit fills)."""
        return self._book.slippage_paid

    @property
    def margin_terms(self) -> MarginConfig | None:
        """The account's margin terms, as journaled (None: a spot account)."""
        return self._book.margin

    def fill_trigger(self, order_id: str) -> Trigger | None:
        """What filled the order (market, limit, stop_loss, take_profit, time_stop,
        liquidation); None while it has not filled."""
        return self._book.triggers.get(self._find_order(order_id).id)

    # --- planning (reads the book, never changes it) ------------------------------------

    def _repeat(self, intent: OrderIntent) -> Execution | None:
        order_id = self._book.client_ids.get(intent.client_order_id or "")
        if order_id is None:
            return None
        original = self._book.orders[order_id]
        if original.intent != intent:
            raise BrokerError(
                f"client_order_id {intent.client_order_id!r} was already used for a different "
                f"order ({order_id}: {_describe(original.intent)}); use a new id"
            )
        fills = tuple(self._book.fills_by_order.get(order_id, ()))
        return Execution(order=original, fills=fills, duplicate=True)

    def _plan_order(self, intent: OrderIntent, at: datetime) -> list[JournalEvent]:
        symbol = self._known_symbol(intent.symbol)
        rules = self.market_rules(symbol)
        borrow = self._borrow_events(at)
        charged = sum((Decimal(e.data["amount"]) for e in borrow), ZERO)
        opens_short = covers = False
        if intent.side is Side.SELL:
            opens_short = self._check_can_sell(symbol, intent.quantity)
        elif self._book.held_short(symbol) is not None:
            covers = True
            self._check_can_cover(symbol, intent.quantity)
        mark = self._book.prices.get(symbol)
        if intent.order_type is OrderType.MARKET:
            if mark is None:
                raise BrokerError(
                    f"no price for {symbol} yet: a market order needs a mark (call on_price)"
                )
            entry = mark
        else:
            entry = _checked_limit(intent, rules)
        problems = rules.violations(intent.quantity, entry)
        problems += _protection_problems(intent, entry, at, opens_short, covers)
        if problems:
            raise BrokerError(f"order {_describe(intent)} refused: " + "; ".join(problems))
        order = Order(
            id=self._next_order_id(),
            client_order_id=intent.client_order_id or "",
            intent=intent,
            status=OrderStatus.OPEN,
            created_at=at,
        )
        if mark is not None and _marketable(intent, mark):
            price = self._taker_price(intent, intent.quantity, mark, rules)
            fill = self._fill(order, intent.quantity, price, at)
            if intent.side is Side.BUY:
                self._check_cash(intent, fill, charged)
            elif opens_short:
                self._check_initial_margin(intent, fill, mark, charged)
            trigger: Trigger = "market" if intent.order_type is OrderType.MARKET else "limit"
            return [*borrow, order_event(order, resting=False), fill_event(fill, mark, trigger)]
        if opens_short:
            raise BrokerError(
                f"order {_describe(intent)} refused: a SELL that opens or adds to a short must "
                f"fill at once (market, or a limit at or below the mark {mark}); resting "
                "short-opening limit orders are not supported"
            )
        return [*borrow, self._resting_order_event(order, entry, charged)]

    def _resting_order_event(
        self, order: Order, limit: Decimal, charged: Decimal = ZERO
    ) -> JournalEvent:
        intent = order.intent
        if intent.side is Side.SELL:
            return order_event(order, resting=True, reserved_qty=intent.quantity)
        notional = money(intent.quantity * limit)
        reserve = notional + self._costs.fee(notional)
        available = self._book.available_cash() - charged
        if reserve > available:
            raise BrokerError(
                f"insufficient cash for {_describe(intent)}: it holds back {reserve} "
                f"{self._book.quote_currency} (value and fee at the limit), "
                f"available {available}"
            )
        return order_event(order, resting=True, reserved_cash=reserve)

    def _check_can_sell(self, symbol: str, quantity: Decimal) -> bool:
        """Refuse a SELL the account cannot make; True when it opens or adds to a short."""
        free = self._book.free_quantity(symbol)
        long = self._book.held_long(symbol)
        if self._book.margin is not None and long is None:
            buying = self._book.resting_qty(symbol, Side.BUY)
            if buying > 0:
                raise BrokerError(
                    f"cannot sell {quantity} {symbol} short while buy orders for {buying} rest "
                    "in it (they would cover the short): cancel them first"
                )
            return True
        if quantity > free:
            held_qty = long.quantity if long else ZERO
            offered = held_qty - free
            extra = f", of which {offered} is offered by open sell orders" if offered else ""
            if self._book.margin is not None and quantity > held_qty:
                raise BrokerError(
                    f"cannot sell {quantity} {symbol}: holding {held_qty}{extra}; an order may "
                    f"not go from long to short in one go: sell the {held_qty} held, then sell "
                    "short the rest"
                )
            raise BrokerError(
                f"cannot sell {quantity} {symbol}: holding {held_qty}{extra} "
                "(spot account: no short selling)"
            )
        return False

    def _check_can_cover(self, symbol: str, quantity: Decimal) -> None:
        short = self._book.held_short(symbol)
        short_qty = short.quantity if short else ZERO
        covering = self._book.resting_qty(symbol, Side.BUY)
        if quantity > short_qty - covering:
            extra = f", of which {covering} is covered by open buy orders" if covering else ""
            raise BrokerError(
                f"cannot buy {quantity} {symbol}: short {short_qty}{extra}; an order may not go "
                f"from short to long in one go: buy back the {short_qty - covering} short, "
                "then buy the rest"
            )

    def _check_initial_margin(
        self, intent: OrderIntent, fill: Fill, mark: Decimal, charged: Decimal
    ) -> None:
        terms = self._book.margin
        if terms is None:  # pragma: no cover - only margin accounts open shorts
            raise BrokerError("a spot account cannot sell short")
        equity_after, shorts_after = after_short_fill(
            self._book.cash - charged,
            self._book.signed_quantities(),
            {**self._book.marks(), intent.symbol: mark},
            intent.symbol,
            fill.quantity,
            fill.price,
            fill.fee,
        )
        if not meets_initial_margin(equity_after, shorts_after, terms):
            need = money(terms.initial_margin_pct * shorts_after)
            raise BrokerError(
                f"insufficient margin for {_describe(intent)}: equity after the fill "
                f"{money(equity_after)} {self._book.quote_currency} is below the initial margin "
                f"{terms.initial_margin_pct} of the short notional {money(shorts_after)} "
                f"(needs {need})"
            )

    def _borrow_events(self, at: datetime) -> list[JournalEvent]:
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

    def _liquidation(self, planned: list[JournalEvent], at: datetime) -> list[JournalEvent]:
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
        new_orders = _count(planned, "order")
        for symbol, quantity in projection.shorts().items():
            events += [
                cancel_event(order_id, "cancelled: the account's shorts were liquidated", at)
                for order_id in book.open_orders.get(symbol, {})
                if order_id not in done
            ]
            mark = projection.prices[symbol]
            price = self._costs.taker_price(Side.BUY, quantity, mark, self.market_rules(symbol))
            order = self._exit_order(
                OrderIntent(symbol=symbol, side=Side.BUY, quantity=quantity),
                "liquidation",
                new_orders,
                at,
            )
            new_orders += 1
            events.append(order_event(order, resting=False))
            events.append(fill_event(self._fill(order, quantity, price, at), mark, "liquidation"))
        log.warning(
            "broker.liquidation",
            account=self.account,
            equity=str(equity(projection.cash, projection.signed, projection.prices)),
            shorts=sorted(projection.shorts()),
        )
        return events

    def _exit_order(
        self, intent: OrderIntent, trigger: Trigger, new_orders: int, at: datetime
    ) -> Order:
        order_id = self._next_order_id(offset=new_orders)
        client_id = f"{trigger}-{order_id}"
        return Order(
            id=order_id,
            client_order_id=client_id,
            intent=intent.model_copy(update={"client_order_id": client_id}),
            status=OrderStatus.OPEN,
            created_at=at,
        )

    def _check_cash(self, intent: OrderIntent, fill: Fill, charged: Decimal = ZERO) -> None:
        need = money(fill.quantity * fill.price) + fill.fee
        available = self._book.available_cash() - charged
        if need > available:
            raise BrokerError(
                f"insufficient cash for {_describe(intent)}: needs {need} "
                f"{self._book.quote_currency} (at {fill.price} with fee {fill.fee}), "
                f"available {available}"
            )

    def _triggered(self, symbol: str, price: Decimal, at: datetime) -> list[JournalEvent]:
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
                events.append(
                    fill_event(self._fill(order, intent.quantity, limit, at), price, "limit")
                )
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
                _count(events, "order"),
            )
        return events

    def _protective_exit(
        self,
        symbol: str,
        signed: Decimal,
        price: Decimal,
        at: datetime,
        protection: tuple[Decimal | None, Decimal | None, datetime | None],
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
            fill_price = self._costs.taker_price(side, quantity, price, self.market_rules(symbol))
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
            fill_price = self._costs.taker_price(side, quantity, price, self.market_rules(symbol))
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
        order = self._exit_order(intent, trigger, new_orders, at)
        events.append(order_event(order, resting=False))
        events.append(fill_event(self._fill(order, quantity, fill_price, at), price, trigger))
        return events

    def _taker_price(
        self, intent: OrderIntent, quantity: Decimal, mark: Decimal, rules: MarketRules
    ) -> Decimal:
        price = self._costs.taker_price(intent.side, quantity, mark, rules)
        if intent.order_type is OrderType.LIMIT and intent.limit_price is not None:
            # A marketable limit never fills beyond its limit.
            if intent.side is Side.BUY:
                return min(price, intent.limit_price)
            return max(price, intent.limit_price)
        return price

    def _fill(self, order: Order, quantity: Decimal, price: Decimal, at: datetime) -> Fill:
        fee = self._costs.fee(money(quantity * price))
        return Fill(
            order_id=order.id,
            symbol=order.intent.symbol,
            side=order.intent.side,
            quantity=quantity,
            price=price,
            fee=fee,
            timestamp=at,
        )

    def _next_order_id(self, offset: int = 0) -> str:
        return f"PB-{len(self._book.orders) + 1 + offset:08d}"

    def _find_order(self, order_id: str) -> Order:
        order = self._book.orders.get(order_id)
        if order is None and order_id in self._book.client_ids:
            order = self._book.orders[self._book.client_ids[order_id]]
        if order is None:
            raise BrokerError(f"unknown order {order_id!r} (neither an order id nor a client id)")
        return order

    def _known_symbol(self, symbol: str) -> str:
        normal = _symbol(symbol)
        if normal not in self._symbols and normal not in self._book.holdings:
            known = ", ".join(sorted(self._symbols))
            raise BrokerError(f"unknown symbol {symbol!r}; this broker trades {known}")
        return normal

    def _now(self, at: datetime | None) -> datetime:
        moment = self._clock() if at is None else at
        if not isinstance(moment, datetime) or moment.tzinfo is None:
            raise BrokerError(f"time {moment!r} must be a timezone-aware datetime (UTC)")
        return moment.astimezone(UTC)

    # --- committing ---------------------------------------------------------------------

    def refresh(self) -> int:
        """Apply what other writers journaled on this account since this broker last looked;
        returns how many events that was."""
        events = self._journal.read(self.account, after_seq=self._seq)
        self._apply(events)
        if events:
            log.info("broker.caught_up", account=self.account, events=len(events), seq=self._seq)
        return len(events)

    def _apply(self, events: list[JournalEvent]) -> None:
        for event in events:
            self._book.apply(event)
            self._seq = max(self._seq, event.seq or 0)

    def _try_commit(self, events: list[JournalEvent]) -> bool:
        """Journal then apply ``events``; False (after catching up) when another writer got
        there first and the caller must plan again on the fresher book."""
        try:
            last = self._journal.append(self.account, events, after_seq=self._seq)
        except JournalConflict:
            self.refresh()
            return False
        self._apply(events)
        self._seq = last
        return True

    def _busy(self, what: str) -> BrokerError:
        return BrokerError(
            f"could not {what} on account {self.account!r}: other writers kept changing its "
            f"journal ({COMMIT_ATTEMPTS} attempts); nothing was recorded"
        )


def _marketable(intent: OrderIntent, mark: Decimal) -> bool:
    if intent.order_type is OrderType.MARKET or intent.limit_price is None:
        return True
    if intent.side is Side.BUY:
        return mark <= intent.limit_price
    return mark >= intent.limit_price


def _checked_limit(intent: OrderIntent, rules: MarketRules) -> Decimal:
    limit = intent.limit_price
    if limit is None:  # pragma: no cover - OrderIntent requires it for limit orders
        raise BrokerError("a limit order needs limit_price")
    if limit % rules.price_tick != 0:
        raise BrokerError(
            f"limit price {limit} of {intent.symbol} is not a multiple of the tick "
            f"{rules.price_tick}"
        )
    return limit


def _protection_problems(
    intent: OrderIntent, entry: Decimal, at: datetime, opens_short: bool, covers: bool
) -> list[str]:
    """Why the protection of ``intent`` is wrong: it belongs on orders that open or add to a
    position (a BUY for a long, a short-opening SELL), with the stop on the losing side of the
    entry and the take-profit on the winning side."""
    if intent.stop_loss is None and intent.take_profit is None and intent.time_stop_at is None:
        return []
    if intent.side is Side.SELL and not opens_short:
        return [
            "stop_loss/take_profit/time_stop_at only apply to BUY orders "
            "(they protect the position)"
        ]
    if covers:
        return [
            "stop_loss/take_profit/time_stop_at do not apply to a BUY that covers a short "
            "(put them on the SELL that opens it)"
        ]
    problems = []
    if intent.time_stop_at is not None and intent.time_stop_at <= at:
        problems.append(
            f"time_stop_at {intent.time_stop_at.isoformat()} must be after the order time "
            f"{at.isoformat()}"
        )
    if opens_short:
        if intent.stop_loss is not None and intent.stop_loss <= entry:
            problems.append(
                f"stop_loss {intent.stop_loss} of a short must be above the entry price {entry}"
            )
        if intent.take_profit is not None and intent.take_profit >= entry:
            problems.append(
                f"take_profit {intent.take_profit} of a short must be below the entry price {entry}"
            )
        return problems
    if intent.stop_loss is not None and intent.stop_loss >= entry:
        problems.append(f"stop_loss {intent.stop_loss} must be below the entry price {entry}")
    if intent.take_profit is not None and intent.take_profit <= entry:
        problems.append(f"take_profit {intent.take_profit} must be above the entry price {entry}")
    return problems


def _describe(intent: OrderIntent) -> str:
    price = f" @ {intent.limit_price}" if intent.limit_price is not None else ""
    return f"{intent.side.value} {intent.quantity} {intent.symbol} {intent.order_type.value}{price}"


def _count(events: list[JournalEvent], kind: str) -> int:
    return sum(1 for event in events if event.kind == kind)


def _symbol(symbol: str) -> str:
    try:
        return canonical_symbol(str(symbol))
    except ValueError as exc:
        raise BrokerError(str(exc)) from None


def _to_decimal(value: PriceInput, what: str) -> Decimal:
    try:
        # repr() of a float is its shortest exact decimal form: 0.1 -> Decimal("0.1").
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise BrokerError(f"{what} must be a number, got {value!r}") from None
    if not number.is_finite():
        raise BrokerError(f"{what} must be a finite number, got {value!r}")
    return number


def _checked_price(value: PriceInput, what: str) -> Decimal:
    number = _to_decimal(value, what)
    if number <= 0:
        raise BrokerError(f"{what} must be greater than 0, got {value!r}")
    return number


def _checked_money(value: PriceInput, what: str) -> Decimal:
    number = _to_decimal(value, what)
    if number < 0:
        raise BrokerError(f"{what} must be 0 or more, got {value!r}")
    return money(number)

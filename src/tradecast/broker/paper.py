"""The broker interface and the paper broker (simulated fills with fees and slippage).

The paper broker is spot and long-only by default: market and limit orders, fees in bps,
slippage in bps plus a size-aware term, positions with an average price and realised/unrealised
P&L, and stop-loss / take-profit / time-stop exits triggered by prices. Every change is
journaled before it is applied (see :mod:`tradecast.broker.book`), so a restart restores it
exactly. The broker plans an order here, refusing what :mod:`tradecast.broker.order_checks`
rules out; a mark journals, in one batch, the borrow fees due, the mark, the resting limits
and exits it triggers, then any liquidation (planned in :mod:`tradecast.broker.triggers`).

A **margin account** (``margin`` terms enabled; arithmetic in :mod:`tradecast.broker.margin`)
also sells short:

- a SELL of a symbol with no long opens or adds to a short (cash gets the proceeds minus the
  fee; the short keeps its average entry); a BUY of a symbol held short covers it (realised
  P&L: entry minus cover price, times the quantity). No order goes through zero (the desk
  sends two orders), and opening or adding to a short needs the **initial margin** after the
  fill (see :mod:`tradecast.broker.order_checks`);
- a short-opening SELL must fill at once (market, or a marketable limit): **resting
  short-opening limits are refused** rather than reserving margin for a fill at an unknown
  time. Resting BUY limits may cover a short (they hold back cash like any buy);
- a short may carry protection like a long (its exits are BUYs to cover); marks and submits
  charge **borrow fees**, and a mark **liquidates** an account under its **maintenance** line
  (see :mod:`tradecast.broker.triggers`).

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
from decimal import Decimal
from typing import Protocol, runtime_checkable

from tradecast.broker.book import (
    ZERO,
    PaperBook,
    Trigger,
    cancel_event,
    fill_event,
    margin_event,
    mark_event,
    opened_event,
    order_event,
)
from tradecast.broker.journal import Journal, JournalConflict, JournalEvent
from tradecast.broker.margin import describe_terms
from tradecast.broker.market_rules import (
    DEFAULT_MARKET_RULES,
    CostModel,
    MarketRules,
    rules_for,
)
from tradecast.broker.order_checks import (
    PriceInput as PriceInput,  # re-exported: part of the Broker interface
)
from tradecast.broker.order_checks import (
    check_can_cover,
    check_can_sell,
    check_cash,
    check_initial_margin,
    check_reserve,
    checked_limit,
    checked_money,
    checked_price,
    checked_symbol,
    describe,
    protection_problems,
)
from tradecast.broker.triggers import TriggerPlanner, count_events, make_fill, next_order_id
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
    utc_now,
)
from tradecast.errors import BrokerError
from tradecast.logs import get_logger
from tradecast.settings import BrokerConfig, MarginConfig

log = get_logger(__name__)

Clock = Callable[[], datetime]


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
            checked_symbol(s) for s in (symbols or [*DEFAULT_MARKET_RULES, *self._rules])
        )
        self._clock = clock
        self._book = PaperBook()
        self._triggers = TriggerPlanner(self._book, self._costs, self.market_rules, account)
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
            cash = checked_money(starting_cash, "starting_cash")
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
        return rules_for(checked_symbol(symbol), self._rules)

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
        mark = checked_price(price, f"price of {symbol}")
        when = self._now(at)
        self.refresh()
        for _ in range(COMMIT_ATTEMPTS):
            events = [
                *self._triggers.borrow_events(when),
                mark_event(symbol, mark, when),
                *self._triggers.triggered(symbol, mark, when),
            ]
            events += self._triggers.liquidation(events, when)
            if self._try_commit(events):
                break
        else:
            raise self._busy("mark")
        fills = tuple(self._book.fills[-n:]) if (n := count_events(events, "fill")) else ()
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
            checked_symbol(s): checked_price(p, f"price of {s}") for s, p in (prices or {}).items()
        }
        return self._book.portfolio(checked)

    def orders(self, status: OrderStatus | None = None, symbol: str | None = None) -> list[Order]:
        """Orders in submission order, filtered by status and symbol."""
        wanted = checked_symbol(symbol) if symbol else None
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
                f"order ({order_id}: {describe(original.intent)}); use a new id"
            )
        fills = tuple(self._book.fills_by_order.get(order_id, ()))
        return Execution(order=original, fills=fills, duplicate=True)

    def _plan_order(self, intent: OrderIntent, at: datetime) -> list[JournalEvent]:
        symbol = self._known_symbol(intent.symbol)
        rules = self.market_rules(symbol)
        borrow = self._triggers.borrow_events(at)
        charged = sum((Decimal(e.data["amount"]) for e in borrow), ZERO)
        opens_short = covers = False
        if intent.side is Side.SELL:
            opens_short = check_can_sell(self._book, symbol, intent.quantity)
        elif self._book.held_short(symbol) is not None:
            covers = True
            check_can_cover(self._book, symbol, intent.quantity)
        mark = self._book.prices.get(symbol)
        if intent.order_type is OrderType.MARKET:
            if mark is None:
                raise BrokerError(
                    f"no price for {symbol} yet: a market order needs a mark (call on_price)"
                )
            entry = mark
        else:
            entry = checked_limit(intent, rules)
        problems = rules.violations(intent.quantity, entry)
        problems += protection_problems(intent, entry, at, opens_short, covers)
        if problems:
            raise BrokerError(f"order {describe(intent)} refused: " + "; ".join(problems))
        order = Order(
            id=next_order_id(self._book),
            client_order_id=intent.client_order_id or "",
            intent=intent,
            status=OrderStatus.OPEN,
            created_at=at,
        )
        if mark is not None and _marketable(intent, mark):
            price = self._taker_price(intent, intent.quantity, mark, rules)
            fill = make_fill(self._costs, order, intent.quantity, price, at)
            if intent.side is Side.BUY:
                check_cash(self._book, intent, fill, charged)
            elif opens_short:
                check_initial_margin(self._book, intent, fill, mark, charged)
            trigger: Trigger = "market" if intent.order_type is OrderType.MARKET else "limit"
            return [*borrow, order_event(order, resting=False), fill_event(fill, mark, trigger)]
        if opens_short:
            raise BrokerError(
                f"order {describe(intent)} refused: a SELL that opens or adds to a short must "
                f"fill at once (market, or a limit at or below the mark {mark}); resting "
                "short-opening limit orders are not supported"
            )
        if intent.side is Side.SELL:
            return [*borrow, order_event(order, resting=True, reserved_qty=intent.quantity)]
        reserve = check_reserve(self._book, self._costs, intent, entry, charged)
        return [*borrow, order_event(order, resting=True, reserved_cash=reserve)]

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

    def _find_order(self, order_id: str) -> Order:
        order = self._book.orders.get(order_id)
        if order is None and order_id in self._book.client_ids:
            order = self._book.orders[self._book.client_ids[order_id]]
        if order is None:
            raise BrokerError(f"unknown order {order_id!r} (neither an order id nor a client id)")
        return order

    def _known_symbol(self, symbol: str) -> str:
        normal = checked_symbol(symbol)
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

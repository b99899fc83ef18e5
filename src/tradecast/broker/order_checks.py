"""Why the paper broker refuses an order or an input: the checks it runs before planning.

Each check reads the :class:`~tradecast.broker.book.PaperBook` (if anything) and changes
nothing; a failed check raises :class:`~tradecast.errors.BrokerError` with a clear message (or,
for :func:`protection_problems`, returns the problems for the broker to report with the
exchange's).

- **sells** (:func:`check_can_sell`): a spot account sells only what it holds and has not
  offered in resting sells. On a margin account a SELL of a symbol with no long opens or adds
  to a short, refused while buy orders rest in the symbol (they would cover it instead of
  buying); a SELL of more than the long is refused (no order goes through zero: the desk sends
  two orders).
- **covers** (:func:`check_can_cover`): a BUY of a symbol held short buys back at most the
  short less what resting buys already cover.
- **cash**: a BUY that fills at once needs its value and fee at the fill price
  (:func:`check_cash`); a resting BUY holds back its value and fee at the limit
  (:func:`check_reserve`).
- **initial margin** (:func:`check_initial_margin`, arithmetic in
  :mod:`tradecast.broker.margin`): equity after a short-opening fill, fee and slippage
  included, must cover ``initial_margin_pct`` of the short notional.
- **protection** (:func:`protection_problems`): ``stop_loss``, ``take_profit`` and
  ``time_stop_at`` belong on orders that open or add to a position (a BUY for a long, a
  short-opening SELL; never a cover BUY), the stop on the losing side of the entry, the
  take-profit on the winning side, the time stop after the order time.
- **limit prices** (:func:`checked_limit`) must be on the exchange's tick.
- **inputs** (:func:`checked_symbol`, :func:`checked_price`, :func:`checked_money`): a symbol
  must be well formed, a price a finite number above 0, an amount of money a finite number of
  0 or more (a float is read by its shortest repr: ``0.1`` is ``Decimal("0.1")``).

Any borrow fee the order's own event charges first (``charged``) is taken off the cash.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from tradecast.broker.book import ZERO, PaperBook
from tradecast.broker.margin import after_short_fill, meets_initial_margin
from tradecast.broker.market_rules import CostModel, MarketRules, money
from tradecast.domain import Fill, OrderIntent, Side, canonical_symbol
from tradecast.errors import BrokerError

PriceInput = Decimal | int | float | str
"""A number as callers give it (a float is read by its shortest repr)."""


def check_can_sell(book: PaperBook, symbol: str, quantity: Decimal) -> bool:
    """Refuse a SELL the account cannot make; True when it opens or adds to a short."""
    free = book.free_quantity(symbol)
    long = book.held_long(symbol)
    if book.margin is not None and long is None:
        buying = book.resting_qty(symbol, Side.BUY)
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
        if book.margin is not None and quantity > held_qty:
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


def check_can_cover(book: PaperBook, symbol: str, quantity: Decimal) -> None:
    """Refuse a BUY of more than the short in ``symbol`` not already covered by resting
    buys."""
    short = book.held_short(symbol)
    short_qty = short.quantity if short else ZERO
    covering = book.resting_qty(symbol, Side.BUY)
    if quantity > short_qty - covering:
        extra = f", of which {covering} is covered by open buy orders" if covering else ""
        raise BrokerError(
            f"cannot buy {quantity} {symbol}: short {short_qty}{extra}; an order may not go "
            f"from short to long in one go: buy back the {short_qty - covering} short, "
            "then buy the rest"
        )


def check_cash(book: PaperBook, intent: OrderIntent, fill: Fill, charged: Decimal = ZERO) -> None:
    """Refuse a BUY whose ``fill`` (value and fee) needs more than the available cash."""
    need = money(fill.quantity * fill.price) + fill.fee
    available = book.available_cash() - charged
    if need > available:
        raise BrokerError(
            f"insufficient cash for {describe(intent)}: needs {need} "
            f"{book.quote_currency} (at {fill.price} with fee {fill.fee}), "
            f"available {available}"
        )


def check_reserve(
    book: PaperBook, costs: CostModel, intent: OrderIntent, limit: Decimal, charged: Decimal
) -> Decimal:
    """What a resting BUY holds back (its value and fee at ``limit``); refused when that is
    more than the available cash."""
    notional = money(intent.quantity * limit)
    reserve = notional + costs.fee(notional)
    available = book.available_cash() - charged
    if reserve > available:
        raise BrokerError(
            f"insufficient cash for {describe(intent)}: it holds back {reserve} "
            f"{book.quote_currency} (value and fee at the limit), "
            f"available {available}"
        )
    return reserve


def check_initial_margin(
    book: PaperBook, intent: OrderIntent, fill: Fill, mark: Decimal, charged: Decimal
) -> None:
    """Refuse a short-opening ``fill`` that leaves the account under its initial margin."""
    terms = book.margin
    if terms is None:  # pragma: no cover - only margin accounts open shorts
        raise BrokerError("a spot account cannot sell short")
    equity_after, shorts_after = after_short_fill(
        book.cash - charged,
        book.signed_quantities(),
        {**book.marks(), intent.symbol: mark},
        intent.symbol,
        fill.quantity,
        fill.price,
        fill.fee,
    )
    if not meets_initial_margin(equity_after, shorts_after, terms):
        need = money(terms.initial_margin_pct * shorts_after)
        raise BrokerError(
            f"insufficient margin for {describe(intent)}: equity after the fill "
            f"{money(equity_after)} {book.quote_currency} is below the initial margin "
            f"{terms.initial_margin_pct} of the short notional {money(shorts_after)} "
            f"(needs {need})"
        )


def protection_problems(
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


def checked_limit(intent: OrderIntent, rules: MarketRules) -> Decimal:
    """The limit price of a limit order, refused when it is off the tick of ``rules``."""
    limit = intent.limit_price
    if limit is None:  # pragma: no cover - OrderIntent requires it for limit orders
        raise BrokerError("a limit order needs limit_price")
    if limit % rules.price_tick != 0:
        raise BrokerError(
            f"limit price {limit} of {intent.symbol} is not a multiple of the tick "
            f"{rules.price_tick}"
        )
    return limit


def describe(intent: OrderIntent) -> str:
    """The order in words, for error messages (``BUY 0.1 BTC/USDT limit @ 100``)."""
    price = f" @ {intent.limit_price}" if intent.limit_price is not None else ""
    return f"{intent.side.value} {intent.quantity} {intent.symbol} {intent.order_type.value}{price}"


def checked_symbol(symbol: str) -> str:
    """``symbol`` in its canonical form (``BTC/USDT``); refused when it is not a symbol."""
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


def checked_price(value: PriceInput, what: str) -> Decimal:
    """``value`` as a Decimal price; refused unless it is a finite number above 0."""
    number = _to_decimal(value, what)
    if number <= 0:
        raise BrokerError(f"{what} must be greater than 0, got {value!r}")
    return number


def checked_money(value: PriceInput, what: str) -> Decimal:
    """``value`` as an amount of money (8 decimals); refused unless it is a finite number of 0
    or more."""
    number = _to_decimal(value, what)
    if number < 0:
        raise BrokerError(f"{what} must be 0 or more, got {value!r}")
    return money(number)

"""Margin arithmetic of the paper broker: equity with shorts, margin lines, liquidation prices
and borrow fees.

Only a margin account (``BrokerConfig.margin.enabled``) uses this module; a spot account never
holds a short. The rules, all on the account as a whole (cross margin):

- **equity** = cash + value of the longs - value of the shorts, at the marks. A short's sale
  proceeds are in the cash, so a short loses equity as its price rises.
- **initial margin**: opening or adding to a short needs, after the fill (fee and slippage
  included), ``equity >= initial_margin_pct * short notional``, where the short notional is
  every short at its mark and the new quantity at its fill price.
- **maintenance**: when ``equity < maintenance_margin_pct * short notional`` at the marks, the
  broker buys back every short at the mark (with the usual slippage and fees): a liquidation.
- **liquidation price** of one short: the price of that symbol at which, other marks
  unchanged, ``equity == maintenance_margin_pct * short notional``. With cash ``c``, the rest
  of the book (longs minus the other shorts) worth ``v``, the other shorts' notional ``n`` and
  this short's quantity ``q``: ``p = (c + v - m * n) / (q * (1 + m))``; alone,
  ``p = (c + longs) / (q * (1 + m))``. It is rounded DOWN to :data:`AVG_PRICE_QUANTUM`, so a
  mark above it is always past the line.
- **borrow**: at every epoch-aligned UTC boundary of ``borrow_interval_hours`` (00:00, 08:00,
  16:00 for 8 hours) that the broker's clock crosses while a short is open, the account pays
  ``borrow_bps_per_interval / 10000`` of the short's notional at the mark in force, from cash.
  A short opened exactly on a boundary pays from the next one. The clock advances on marks and
  submits (the ``at`` of the event); the first one after a quiet spell pays every boundary
  crossed, at the latest mark (the one before the event's own price).

:class:`Projection` replays planned journal events on a scratch copy of the numbers (cash,
signed quantities, marks), so the broker can judge the margin of an account as it will be
once a batch of events is applied, without changing the book.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from tradecast.broker.journal import JournalEvent
from tradecast.broker.market_rules import AVG_PRICE_QUANTUM, BPS, money
from tradecast.settings import MarginConfig

ZERO = Decimal(0)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def terms_data(terms: MarginConfig) -> dict[str, Any]:
    """The margin terms as journal data (JSON; Decimals as strings)."""
    return terms.model_dump(mode="json")


def terms_from_data(data: Mapping[str, Any]) -> MarginConfig:
    """Margin terms read back from journal data."""
    return MarginConfig.model_validate(dict(data))


def describe_terms(terms: MarginConfig | None) -> str:
    """The terms in words, for error messages."""
    if terms is None or not terms.enabled:
        return "spot (no margin)"
    return (
        f"margin (initial {terms.initial_margin_pct}, maintenance "
        f"{terms.maintenance_margin_pct}, borrow {terms.borrow_bps_per_interval} bps every "
        f"{terms.borrow_interval_hours}h)"
    )


def boundaries_crossed(since: datetime, until: datetime, hours: int) -> int:
    """How many epoch-aligned boundaries of ``hours`` lie in ``(since, until]``."""
    if until <= since:
        return 0
    interval = timedelta(hours=hours)
    return (until - EPOCH) // interval - (since - EPOCH) // interval


def borrow_amount(quantity: Decimal, mark: Decimal, terms: MarginConfig, intervals: int) -> Decimal:
    """The borrow fee of a short of ``quantity`` at ``mark`` over ``intervals`` intervals."""
    return money(quantity * mark * terms.borrow_bps_per_interval * intervals / BPS)


def equity(cash: Decimal, signed: Mapping[str, Decimal], prices: Mapping[str, Decimal]) -> Decimal:
    """Cash plus signed quantities at ``prices`` (every symbol of ``signed`` must be priced)."""
    return cash + sum((q * prices[s] for s, q in signed.items()), ZERO)


def short_notional(signed: Mapping[str, Decimal], prices: Mapping[str, Decimal]) -> Decimal:
    """What buying back every short costs at ``prices`` (before costs)."""
    return sum((-q * prices[s] for s, q in signed.items() if q < 0), ZERO)


def below_maintenance(
    cash: Decimal, signed: Mapping[str, Decimal], prices: Mapping[str, Decimal], m: Decimal
) -> bool:
    """Whether the account is under its maintenance line (only with a short open)."""
    shorts = short_notional(signed, prices)
    return shorts > 0 and equity(cash, signed, prices) < m * shorts


def meets_initial_margin(equity_after: Decimal, shorts_after: Decimal, terms: MarginConfig) -> bool:
    """The initial margin rule on the account after a short opens or grows."""
    return equity_after >= terms.initial_margin_pct * shorts_after


def after_short_fill(
    cash: Decimal,
    signed: Mapping[str, Decimal],
    prices: Mapping[str, Decimal],
    symbol: str,
    quantity: Decimal,
    fill_price: Decimal,
    fee: Decimal,
) -> tuple[Decimal, Decimal]:
    """Equity (shorts at the marks) and short notional (the new ``quantity`` at its fill
    price, the rest at the marks) after selling ``quantity`` of ``symbol`` short at
    ``fill_price`` with ``fee``; ``prices`` must hold the mark of every symbol involved."""
    proceeds = money(quantity * fill_price)
    equity_after = equity(cash, signed, prices) + proceeds - fee - quantity * prices[symbol]
    return equity_after, short_notional(signed, prices) + quantity * fill_price


def liquidation_price(
    symbol: str,
    cash: Decimal,
    signed: Mapping[str, Decimal],
    prices: Mapping[str, Decimal],
    maintenance: Decimal,
) -> Decimal | None:
    """The price of ``symbol`` (held short) at which, other marks unchanged, the account
    reaches its maintenance line; None when no positive price does (it is past the line)."""
    quantity = -signed.get(symbol, ZERO)
    if quantity <= 0:
        return None
    rest = {s: q for s, q in signed.items() if s != symbol}
    numerator = equity(cash, rest, prices) - maintenance * short_notional(rest, prices)
    price = numerator / (quantity * (1 + maintenance))
    if price <= 0:
        return None
    return price.quantize(AVG_PRICE_QUANTUM, rounding=ROUND_FLOOR)


@dataclass
class Projection:
    """Cash, signed quantities and marks after some planned events (a scratch copy)."""

    cash: Decimal
    signed: dict[str, Decimal]
    prices: dict[str, Decimal] = field(default_factory=dict)

    def apply(self, events: Iterable[JournalEvent]) -> Projection:
        """Apply the cash and quantity effects of ``events`` (borrow, mark, fill)."""
        for event in events:
            data = event.data
            if event.kind == "borrow":
                self.cash -= Decimal(data["amount"])
            elif event.kind == "mark":
                self.prices[data["symbol"]] = Decimal(data["price"])
            elif event.kind == "fill":
                fill = data["fill"]
                symbol, quantity = fill["symbol"], Decimal(fill["quantity"])
                notional = money(quantity * Decimal(fill["price"]))
                sign = 1 if fill["side"] == "BUY" else -1
                self.cash -= sign * notional + Decimal(fill["fee"])
                self.signed[symbol] = self.signed.get(symbol, ZERO) + sign * quantity
                self.prices.setdefault(symbol, Decimal(data["reference_price"]))
                if self.signed[symbol] == 0:
                    del self.signed[symbol]
        return self

    def shorts(self) -> dict[str, Decimal]:
        """Open shorts: symbol -> quantity (positive)."""
        return {s: -q for s, q in sorted(self.signed.items()) if q < 0}

    def below_maintenance(self, maintenance: Decimal) -> bool:
        """Whether the projected account is under its maintenance line."""
        return below_maintenance(self.cash, self.signed, self.prices, maintenance)

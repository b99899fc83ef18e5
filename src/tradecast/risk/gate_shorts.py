"""The risk gate's rules for a margin account's shorts and covers.

:func:`tradecast.risk.gate.check_order` sends an order here when the account may sell short
(``MarketContext.margin`` enabled): a SELL with nothing held long to :func:`check_short`, a BUY
of a symbol held short to :func:`check_cover`. Everything else (a SELL that closes a long, a
BUY with no short) follows the spot rules in :mod:`tradecast.risk.gate`, whose view of the
portfolio, buy rules, sizer and verdicts these build on.

- a SELL with nothing held long opens (or adds to) a short, judged like a buy: kill switch,
  the drawdown and daily-loss locks (no NEW shorts), the cooldown after a stop-loss,
  ``max_open_positions``, ``max_position_pct`` (the short's value after the fill at the
  current price against equity after its costs), ``max_order_notional`` and the broker's
  **initial margin** (equity after the fill >= ``initial_margin_pct`` of the short notional,
  the new quantity at its fill price): an oversize short is shrunk to what they all allow,
  rounded DOWN to the step; below the exchange minimums it is rejected. It must be marketable
  (the broker refuses resting short-opening limits), and not while buy orders rest in the
  symbol. Protection on a short: stop_loss above the entry, take_profit below. The broker
  also charges any borrow fee due at the instant of the order first; the gate does not see it
  (a fee of a few bps could make the broker refuse a short sized to the last unit of margin);
- a BUY of a symbol held short **covers** it: an exit, so allowed under the locks and the
  cooldown, never shrunk by the position caps; only by ``max_order_notional``, the short not
  already covered by resting buys, and the cash the buy-back needs (fee included).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import cached_property

from tradecast.broker.margin import after_short_fill, meets_initial_margin
from tradecast.broker.market_rules import money
from tradecast.domain import OrderIntent, OrderType, RiskVerdict, Side
from tradecast.risk.gate import (
    ZERO,
    MarketContext,
    _approve,
    _binding,
    _buy_blockers,
    _BuySizer,
    _cash,
    _largest,
    _pct,
    _qty,
    _reject,
    _Sizer,
    _too_small,
    _View,
)
from tradecast.settings import MarginConfig, RiskLimits


def check_short(
    intent: OrderIntent,
    view: _View,
    limits: RiskLimits,
    market: MarketContext,
    now: datetime,
    notes: list[str],
) -> RiskVerdict:
    """A SELL with nothing held long: opens or adds to a short, judged like a buy and sized to
    the initial margin too."""
    return _ShortSizer(intent, view, limits, market).verdict(now, notes)


def _short_blockers(
    intent: OrderIntent, view: _View, limits: RiskLimits, market: MarketContext, now: datetime
) -> list[str]:
    """Why no new short may open: the buy blockers (locks, cooldown, open positions) read
    for a short, and what the broker refuses (resting limits, buys resting in the symbol)."""
    reasons = [
        r.replace("nothing may be bought", "nothing may be sold short").replace(
            "only sells are allowed", "only exits are allowed (no new shorts)"
        )
        for r in _buy_blockers(
            intent.model_copy(update={"stop_loss": None, "take_profit": None}),
            view,
            limits,
            market,
            now,
        )
    ]
    reasons = [r.replace("no buys until", "no new positions until") for r in reasons]
    if view.pending_buy_qty > 0:
        reasons.append(
            f"buy orders for {_qty(view.pending_buy_qty)} {intent.symbol} rest at the broker: "
            "they would cover a short (cancel them first)"
        )
    limit = intent.limit_price
    if intent.order_type is OrderType.LIMIT and limit is not None and market.price < limit:
        reasons.append(
            f"a short must fill at once: the limit {limit} is above the price {market.price} "
            "(the broker does not rest short-opening limit orders)"
        )
    entry = market.price
    if intent.stop_loss is not None and intent.stop_loss <= entry:
        reasons.append(f"stop_loss {intent.stop_loss} of a short must be above the entry {entry}")
    if intent.take_profit is not None and intent.take_profit >= entry:
        reasons.append(
            f"take_profit {intent.take_profit} of a short must be below the entry {entry}"
        )
    return reasons


class _ShortSizer(_Sizer):
    """Sizes a short exactly as the broker will fill and margin it."""

    side = Side.SELL
    nothing_left = "nothing is left to sell short"

    @cached_property
    def margin(self) -> MarginConfig:
        """The account's margin terms."""
        return self.market.margin or MarginConfig(enabled=True)

    def blockers(self, now: datetime) -> list[str]:
        return _short_blockers(self.intent, self.view, self.limits, self.market, now)

    def fill_price(self, quantity: Decimal) -> Decimal:
        """The broker's fill price for ``quantity`` (a marketable limit never below it)."""
        price = self.market.costs.taker_price(
            Side.SELL, quantity, self.market.price, self.market.rules
        )
        limit = self.intent.limit_price
        return max(price, limit) if limit is not None else price

    def holding(self) -> Decimal:
        return self.view.short

    def funding_caps(self, price: Decimal, cost_per_unit: Decimal) -> dict[str, Decimal]:
        v, im = self.view, self.margin.initial_margin_pct
        shorts = sum((-q * v.prices[s] for s, q in v.signed.items() if q < 0), ZERO)
        return {
            f"initial margin {_pct(im)} of the short notional": max(
                (v.equity - im * shorts) / (im * price + cost_per_unit), ZERO
            ),
        }

    def funded(self, quantity: Decimal, price: Decimal, notional: Decimal, fee: Decimal) -> bool:
        v = self.view
        equity_after, shorts_after = after_short_fill(
            v.cash, v.signed, v.prices, self.intent.symbol, quantity, price, fee
        )
        return meets_initial_margin(equity_after, shorts_after, self.margin)


def check_cover(buy: _BuySizer, notes: list[str]) -> RiskVerdict:
    """A BUY of a symbol held short (``buy`` prices it as any buy fills): an exit, limited
    only by the order notional, the short left to cover and the cash."""
    intent, view, limits, market = buy.intent, buy.view, buy.limits, buy.market
    if any(x is not None for x in (intent.stop_loss, intent.take_profit, intent.time_stop_at)):
        return _reject(
            "stop_loss/take_profit/time_stop_at do not apply to a BUY that covers a short "
            "(put them on the SELL that opens it)"
        )
    coverable = view.short - view.pending_buy_qty
    if coverable <= 0:
        return _reject(
            f"the {intent.symbol} short is already covered by open buy orders; an order may "
            "not go from short to long in one go"
        )
    cash = view.cash - view.pending_buy_cash
    price = buy.fill_price(market.rules.qty_step)
    caps = {
        f"short not already covered ({_qty(coverable)})": coverable,
        f"max order notional {limits.max_order_notional}": limits.max_order_notional / price,
        f"available cash {_cash(cash)}": max(cash / (price * (1 + buy.fee_rate)), ZERO),
    }

    def fits(quantity: Decimal) -> bool:
        notional = money(quantity * buy.fill_price(quantity))
        return (
            quantity <= coverable
            and notional <= limits.max_order_notional
            and notional + market.costs.fee(notional) <= cash
        )

    quantity = _largest(market.rules, intent.quantity, min([intent.quantity, *caps.values()]), fits)
    why = _binding(caps, intent.quantity)
    too_small = _too_small(market.rules, quantity, buy.entry, "nothing is left to buy back", why)
    if too_small is not None:
        return too_small
    return _approve(intent, quantity, market.rules, notes, why)

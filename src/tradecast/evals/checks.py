"""After-the-fact checks of each tick: no order past a hard limit, no ungrounded sentence.

Both re-check what the desk did from the tick's recorded graph state, independently of the
nodes that did it:

- :func:`risk_violations`: every executed desk order is judged again by the pure gate
  (:func:`tradecast.risk.gate.check_order`) on the portfolio the desk saw, and must be
  approved at its full size; independently of the gate's code, a buy must keep the position
  within ``max_position_pct`` of equity, no fill may exceed ``max_order_notional`` at the
  price the order was judged at (the desk's price plus the broker's slippage: the fill's own
  price in a run that fills at the close), a sell may not sell more than was held (on a margin
  account, given ``margin``: a sell with nothing held may open a short, whose value must stay
  within ``max_position_pct`` of equity with the initial margin met, and never go through
  zero from a long), and nothing trades with the kill switch on. Everything is judged at the
  price the desk saw, so a run that fills at the next bar's open is held to the same limits
  as the gate: the open is a market move after the decision, not a limit the desk broke.
- :func:`grounding_errors`: every sentence the persona said must pass
  :func:`tradecast.agents.grounding.check_sentence` against the tick's facts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from tradecast.agents.grounding import check_sentence
from tradecast.broker.market_rules import CostModel, MarketRules, money
from tradecast.domain import Fill, Portfolio, Side
from tradecast.graphs.nodes import persona_facts
from tradecast.risk.gate import MarketContext, check_order
from tradecast.settings import MarginConfig, RiskLimits

ZERO = Decimal(0)


def grounding_errors(state: Mapping[str, Any]) -> list[str]:
    """What is wrong with each persona sentence of the tick (empty: all grounded)."""
    if state.get("decision") is None:
        return []
    facts = persona_facts(state)  # type: ignore[arg-type]
    errors = []
    for line in state.get("persona") or []:
        problem = check_sentence(line.text, facts)
        if problem is not None:
            errors.append(f"{line.text!r}: {problem}")
    return errors


def risk_violations(
    state: Mapping[str, Any],
    limits: RiskLimits,
    rules: MarketRules,
    costs: CostModel,
    margin: MarginConfig | None = None,
) -> list[str]:
    """Every limit the tick's executed desk order broke (empty: none); ``margin``: the
    account's margin terms (None: spot, no shorts)."""
    execution = state.get("execution")
    if execution is None or execution.duplicate or not execution.fills:
        return []
    context = state["context"]
    intent = execution.order.intent
    at: datetime = state["at"]
    fills: Sequence[Fill] = execution.fills
    problems = _independent(
        fills, context.portfolio, context.price, limits, intent.symbol, rules, costs
    )
    shorts = margin if margin is not None and margin.enabled else None
    problems += _short_problems(
        fills, context.portfolio, context.price, limits, intent.symbol, shorts
    )
    market = MarketContext(
        symbol=intent.symbol, price=context.price, rules=rules, costs=costs, margin=shorts
    )
    verdict = check_order(intent, context.portfolio, limits, market, at)
    if not verdict.approved:
        problems.append("the gate rejects it on re-check: " + "; ".join(verdict.reasons))
    elif verdict.intent is not None and verdict.intent.quantity < intent.quantity:
        problems.append(
            f"the gate would shrink it to {verdict.intent.quantity} on re-check, "
            f"but {intent.quantity} was executed"
        )
    return problems


def _independent(
    fills: Sequence[Fill],
    before: Portfolio,
    mark: Decimal,
    limits: RiskLimits,
    symbol: str,
    rules: MarketRules,
    costs: CostModel,
) -> list[str]:
    problems = []
    if limits.kill_switch:
        problems.append("an order executed while the kill switch was on")
    position = before.position(symbol)
    held = position.quantity if position else ZERO
    equity = _equity(before, symbol, mark)
    bought = sum((f.quantity for f in fills if f.side is Side.BUY), ZERO)
    for fill in fills:
        judged = costs.taker_price(fill.side, fill.quantity, mark, rules)
        notional = money(fill.quantity * judged)
        if notional > limits.max_order_notional:
            problems.append(
                f"fill of {notional} (at {judged}, the desk's price plus slippage) exceeds "
                f"max_order_notional {limits.max_order_notional}"
            )
    if bought and before.short(symbol) is None:  # a buy-back of a short is an exit
        value = (held + bought) * mark
        if value > limits.max_position_pct * equity:
            problems.append(
                f"position worth {value:.2f} after the buy exceeds "
                f"{limits.max_position_pct:%} of equity {equity:.2f}"
            )
        opened = {p.symbol for p in before.positions if p.quantity > 0} | {symbol}
        if len(opened) > limits.max_open_positions:
            problems.append(f"{len(opened)} open positions exceed {limits.max_open_positions}")
    return problems


def _equity(before: Portfolio, symbol: str, mark: Decimal) -> Decimal:
    """Cash plus signed position values, ``symbol`` at ``mark``."""
    return before.cash + sum(
        (
            p.signed_quantity
            * (mark if p.symbol == symbol else before.prices.get(p.symbol, p.avg_price))
            for p in before.positions
        ),
        ZERO,
    )


def _short_problems(
    fills: Sequence[Fill],
    before: Portfolio,
    mark: Decimal,
    limits: RiskLimits,
    symbol: str,
    margin: MarginConfig | None,
) -> list[str]:
    """What a sell broke past the long held: a short without margin, through zero, or past
    the position share, the open positions or the initial margin (all at the desk's price)."""
    position = before.position(symbol)
    held = position.quantity if position else ZERO
    sold = sum((f.quantity for f in fills if f.side is Side.SELL), ZERO)
    if sold <= held:
        return []
    if margin is None:
        return [f"sold {sold} but only {held} was held (no shorts)"]
    if held > 0:
        return [f"sold {sold} but {held} was held long: an order may not go through zero"]
    problems = []
    short = before.short(symbol)
    equity = _equity(before, symbol, mark)
    value = ((short.quantity if short else ZERO) + sold) * mark
    if value > limits.max_position_pct * equity:
        problems.append(
            f"short worth {value:.2f} after the sell exceeds "
            f"{limits.max_position_pct:%} of equity {equity:.2f}"
        )
    others = sum(
        (
            p.quantity * before.prices.get(p.symbol, p.avg_price)
            for p in before.positions
            if p.side == "short" and p.symbol != symbol
        ),
        ZERO,
    )
    if equity < margin.initial_margin_pct * (others + value):
        problems.append(
            f"equity {equity:.2f} is below the initial margin {margin.initial_margin_pct:%} "
            f"of the short notional {others + value:.2f}"
        )
    opened = {p.symbol for p in before.positions if p.quantity > 0} | {symbol}
    if len(opened) > limits.max_open_positions:
        problems.append(f"{len(opened)} open positions exceed {limits.max_open_positions}")
    return problems

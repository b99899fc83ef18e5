"""The portfolio desk's reconciliation, as plain functions: each symbol's decision as a target
holding, the orders that reach it (an exit, then an opening order: never a flip in one order),
the book's symbols and exposure, the headline the persona talks about, and the LLM calls per
symbol."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import ROUND_DOWN, Decimal
from typing import Any

from tradecast.agents.consensus import QUANTITY_STEP
from tradecast.domain import Action, Decision, OrderIntent, Portfolio, Side
from tradecast.graphs.portfolio_state import (
    PlannedOrder,
    PortfolioState,
    SymbolOutcome,
    SymbolProposal,
)
from tradecast.graphs.report import ExposureView
from tradecast.risk.portfolio import Exposure, measure
from tradecast.settings import RiskLimits

ZERO = Decimal(0)


def exposure_view(exposure: Exposure) -> ExposureView:
    """The serialisable view of a measured exposure."""
    return ExposureView(
        equity=exposure.equity,
        values=dict(exposure.values),
        gross=exposure.gross,
        net=exposure.net,
        groups=exposure.groups,
        group_net=dict(exposure.group_net),
        var=exposure.var,
        cvar=exposure.cvar,
        days=exposure.days,
    )


def signed_holding(book: Portfolio, symbol: str) -> Decimal:
    """What the book holds of ``symbol``: positive long, negative short, 0 flat."""
    long = book.position(symbol)
    short = book.short(symbol)
    return (long.quantity if long else ZERO) - (short.quantity if short else ZERO)


def proposed_target(decision: Decision, current: Decimal, shorts: bool) -> Decimal:
    """The holding a symbol's decision asks for: a BUY adds (or covers a short), a SELL
    takes off what the consensus sized (or, with shorts, opens one), a HOLD keeps the book."""
    if decision.action is Action.BUY:
        return ZERO if current < 0 else current + decision.quantity
    if decision.action is Action.SELL:
        if current > 0:
            return max(ZERO, current - decision.quantity)
        return current - decision.quantity if shorts else current
    return current


def planned_orders(
    decision: Decision, intent: OrderIntent | None, current: Decimal, target: Decimal
) -> list[PlannedOrder]:
    """The orders that take ``current`` to ``target``: an exit and then, past zero, an
    opening order (the broker never flips a position in one order)."""
    legs: list[tuple[Side, Decimal, bool]] = []
    if target < current:
        if current > 0:
            legs.append((Side.SELL, current - max(target, ZERO), True))
        if target < 0:
            legs.append((Side.SELL, _down(min(current, ZERO) - target), False))
    elif target > current:
        if current < 0:
            legs.append((Side.BUY, min(target, ZERO) - current, True))
        if target > 0:
            legs.append((Side.BUY, _down(target - max(current, ZERO)), False))
    return [
        _order(decision, intent, side, quantity, exit_=exit_, leg=i)
        for i, (side, quantity, exit_) in enumerate(legs)
        if quantity > 0
    ]


def _order(
    decision: Decision,
    intent: OrderIntent | None,
    side: Side,
    quantity: Decimal,
    *,
    exit_: bool,
    leg: int,
) -> PlannedOrder:
    protect: dict[str, Any] = {}
    if not exit_ and intent is not None and intent.side is side:
        protect = {
            "stop_loss": intent.stop_loss,
            "take_profit": intent.take_profit,
            "time_stop_at": intent.time_stop_at,
        }
    suffix = "" if leg == 0 else f"-{leg}"
    order = OrderIntent(
        symbol=decision.symbol,
        side=side,
        quantity=quantity,
        client_order_id=f"tc-{decision.id}{suffix}",
        **protect,
    )
    return PlannedOrder(symbol=decision.symbol, decision_id=decision.id, intent=order, exit=exit_)


def _down(quantity: Decimal) -> Decimal:
    return quantity.quantize(QUANTITY_STEP, rounding=ROUND_DOWN)


def headline_state(state: PortfolioState) -> dict[str, Any] | None:
    """The one symbol the persona talks about, as a one-symbol desk state: the largest
    executed order, else the most confident decision to trade, else the first symbol."""
    proposals = in_order(state.get("proposals") or [], state.get("symbols") or [])
    if not proposals:
        return None
    outcomes = state.get("outcomes") or []
    filled = [o for o in outcomes if o.execution is not None and o.execution.fills]

    def notional(outcome: SymbolOutcome) -> Decimal:
        fills = outcome.execution.fills if outcome.execution else ()
        return sum((f.quantity * f.price for f in fills), ZERO)

    if filled:
        symbol = max(filled, key=notional).symbol
    else:
        trading = [p for p in proposals if p.decision.action is not Action.HOLD]
        symbol = max(trading, key=lambda p: p.decision.confidence).symbol if trading else ""
    chosen = next((p for p in proposals if p.symbol == symbol), proposals[0])
    mine = [o for o in outcomes if o.symbol == chosen.symbol]
    executed = next((o for o in mine if o.execution is not None), None)
    refused = next((o for o in mine if o.execution is None), None)
    ruled = executed or refused
    return {
        "decision": chosen.decision,
        "context": chosen.context,
        "at": state["at"],
        "execution": executed.execution if executed else None,
        "verdict": ruled.verdict if ruled else None,
        "execution_error": refused.error if refused and not executed else None,
    }


def in_order(proposals: Sequence[SymbolProposal], symbols: Sequence[str]) -> list[SymbolProposal]:
    """Branches finish in any order; everything after them works in the configured one."""
    rank = {s: i for i, s in enumerate(symbols)}
    return sorted(proposals, key=lambda p: rank.get(p.symbol, len(rank)))


def book_symbols(symbols: Sequence[str], book: Portfolio) -> list[str]:
    """The desk's symbols in their order, then any other symbol the book holds: all of them
    are marked, and all count in the book's exposure and VaR."""
    held = sorted({p.symbol for p in book.positions if p.quantity > 0} - set(symbols))
    return [*symbols, *held]


def measure_book(
    book: Portfolio, returns: Mapping[str, Mapping[date, float]], limits: RiskLimits
) -> Exposure:
    values = {
        p.symbol: p.market_value(book.prices.get(p.symbol, p.avg_price))
        for p in book.positions
        if p.quantity > 0
    }
    return measure(values, book.equity, returns, limits)


def per_symbol_calls(state: Mapping[str, Any]) -> dict[str, int]:
    """LLM calls per symbol of a finished tick (the persona's counted on its headline)."""
    counts = {p.symbol: len(p.llm_calls) for p in state.get("proposals") or []}
    headline = state.get("headline")
    if headline in counts:
        counts[headline] += len(state.get("llm_calls") or [])
    return counts

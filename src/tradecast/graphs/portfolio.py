"""The portfolio desk graph: every symbol decided at the same instant, against one book.

START -> mark_book -> symbol_desk x N (LangGraph ``Send``, one per symbol, in parallel)
      -> portfolio -> execute -> [persona, remember] -> END

- ``mark_book`` marks every symbol at the tick's close, in the configured order, so stops,
  resting limits and (on margin) liquidations happen before anyone decides, and in the same
  order on every run.
- ``symbol_desk`` is the one-symbol desk's decision part (:func:`~tradecast.graphs.desk.
  decision_graph`: context, analyst, risk agent, trader, consensus) for one symbol.
  ``branches_at_once`` of them decide at a time: all on a server that answers several calls
  at once (Ollama), one on the embedded model (bootstrap picks; the setting
  ``desk.symbols_at_once`` overrides).
- ``portfolio`` turns each symbol's decision into a target holding and reconciles the targets
  against the one book with :func:`tradecast.risk.portfolio.check_portfolio` (gross, net,
  per-symbol and correlated exposure, historical VaR and CVaR, portfolio locks), then plans
  the orders: exits first, so that what they free can be used by the buys.
- ``execute`` sends each order through the per-order gate (:class:`~tradecast.risk.execution.
  GatedExecutor`), which judges it again on the book as it is at that moment. When the gate
  cuts an exit or the broker refuses one, the additions (whose room was counted with every
  exit done) are checked again against the book the exits left. The book is then measured
  again for the ``portfolio`` event and the reports.
- ``persona`` narrates the tick's headline decision (one LLM call per tick, whatever the number
  of symbols); ``remember`` records every symbol's decision in the memory.

LLM calls per symbol and tick: analyst 1, risk agent 1, trader 1 or 2 (a tool round), plus the
persona's one call shared by the tick: at most 5 for one symbol, fewer per symbol with more.
A portfolio tick does not stop for human approval (``desk.require_approval`` is for the
one-symbol desk).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any, cast

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Send

from tradecast.agents.consensus import QUANTITY_STEP
from tradecast.domain import (
    Portfolio,
    RiskVerdict,
    Side,
)
from tradecast.errors import MarketDataError
from tradecast.graphs.desk import (
    DeskDependencies,
    decision_graph,
    memory_sinks,
    persona_or_ablated,
)
from tradecast.graphs.nodes import emit, remember_node, timed
from tradecast.graphs.portfolio_plan import (
    book_symbols,
    exposure_view,
    headline_state,
    in_order,
    measure_book,
    planned_orders,
    proposed_target,
    signed_holding,
)
from tradecast.graphs.portfolio_state import (
    PlannedOrder,
    PortfolioReview,
    PortfolioState,
    SymbolInput,
    SymbolOutcome,
    SymbolProposal,
)
from tradecast.logs import get_logger
from tradecast.risk.book_exposure import bars_for, window_note
from tradecast.risk.portfolio import Target, check_portfolio, daily_returns

log = get_logger(__name__)
ZERO = Decimal(0)


@dataclass(frozen=True)
class PortfolioDependencies:
    """The desk's dependencies plus the symbols it decides together."""

    desk: DeskDependencies
    symbols: tuple[str, ...]
    branches_at_once: int = 0
    """How many symbols' branches decide at once (0: all). One for the embedded model: it
    answers one call at a time anyway, and a branch that runs alone keeps its symbol's
    context in the model's KV cache from one agent to the next."""


def fan_out(state: PortfolioState) -> list[Send]:
    """One ``symbol_desk`` branch per symbol, all at the tick's instant."""
    return [Send("symbol_desk", {"symbol": s, "at": state["at"]}) for s in state["symbols"]]


def build_portfolio_graph(
    deps: PortfolioDependencies, checkpointer: BaseCheckpointSaver | None = None
) -> CompiledStateGraph:
    """The compiled portfolio desk over ``deps`` (checkpointed when a saver is given; each
    symbol's branch is checkpointed under it as a subgraph)."""
    desk = deps.desk
    decide = decision_graph(desk).compile(name="symbol_desk")
    graph = StateGraph(PortfolioState)
    nodes = {
        "mark_book": _mark_book(desk),
        "portfolio": _portfolio(desk),
        "execute": _execute(desk),
        "persona": _persona(desk),
        "remember": _remember(desk),
    }
    for name, node in nodes.items():
        # timed() is typed for the one-symbol state: name this graph's state explicitly, or
        # LangGraph would read the node's input by the wrapper's annotation
        graph.add_node(name, timed(name, node), input_schema=PortfolioState)  # type: ignore[misc]
    slots = asyncio.Semaphore(deps.branches_at_once or len(deps.symbols))
    graph.add_node("symbol_desk", _symbol_desk(decide, slots), input_schema=SymbolInput)
    graph.add_edge(START, "mark_book")
    graph.add_conditional_edges("mark_book", fan_out, ["symbol_desk"])
    graph.add_edge("symbol_desk", "portfolio")
    graph.add_edge("portfolio", "execute")
    graph.add_edge("execute", "persona")
    graph.add_edge("execute", "remember")
    graph.add_edge("persona", END)
    graph.add_edge("remember", END)
    return graph.compile(checkpointer=checkpointer, name="portfolio_desk")


# --- nodes -------------------------------------------------------------------------------


def _mark_book(desk: DeskDependencies) -> Any:
    async def node(state: PortfolioState) -> dict[str, Any]:
        for symbol in book_symbols(state["symbols"], desk.executor.portfolio()):
            try:
                _, exits = await desk.executor.mark_with_exits(symbol, state["at"])
            except MarketDataError as exc:
                if symbol in state["symbols"]:
                    raise
                # a position left from another configuration, on a market that no longer
                # has it: its stops wait, and the portfolio check says its VaR is unknown
                log.warning("portfolio.unmarked", symbol=symbol, reason=str(exc))
                continue
            for fill, trigger in exits:
                emit("desk", "fill", {**fill.model_dump(mode="json"), "trigger": trigger})
        return {}

    return node


def _symbol_desk(decide: CompiledStateGraph, slots: asyncio.Semaphore) -> Any:
    async def node(state: SymbolInput) -> dict[str, Any]:
        async with slots:
            return await _decide(decide, state)

    return node


async def _decide(decide: CompiledStateGraph, state: SymbolInput) -> dict[str, Any]:
    """One symbol's decision part, its stream events passed on to the parent's stream."""
    out: dict[str, Any] = {}
    # A subgraph's custom events do not reach the parent's stream (only with
    # ``subgraphs=True``, namespaced): pass its decisions and ticks on as this node's own.
    async for mode, chunk in decide.astream(
        {"symbol": state["symbol"], "at": state["at"]}, stream_mode=["custom", "values"]
    ):
        event = cast("dict[str, Any]", chunk)
        if mode == "custom":
            emit(event["channel"], event["event"], event["data"])
        else:
            out = event
    proposal = SymbolProposal(
        symbol=state["symbol"],
        context=out["context"],
        decision=out["decision"],
        intent=out.get("intent"),
        llm_calls=tuple(out.get("llm_calls") or ()),
        latency_ms=dict(out.get("latency_ms") or {}),
    )
    return {"proposals": [proposal]}


def _portfolio(desk: DeskDependencies) -> Any:
    async def node(state: PortfolioState) -> dict[str, Any]:
        at = state["at"]
        proposals = in_order(state["proposals"], state["symbols"])
        book = desk.executor.portfolio()
        returns = await _book_returns(desk, state["symbols"], book, at)
        current = {p.symbol: signed_holding(book, p.symbol) for p in proposals}
        asked = {
            p.symbol: proposed_target(p.decision, current[p.symbol], desk.shorts) for p in proposals
        }
        verdict = check_portfolio(
            [Target(p.symbol, asked[p.symbol], p.context.price) for p in proposals],
            book,
            desk.executor.limits,
            returns,
            at,
            fee_rate=_fee_rate(desk, book),
            shorts_allowed=desk.shorts,
        )
        orders = [
            order
            for p in proposals
            for order in planned_orders(
                p.decision, p.intent, current[p.symbol], verdict.targets[p.symbol]
            )
        ]
        short_window = window_note(desk.executor.limits, desk.bar)
        review = PortfolioReview(
            current=current,
            asked=asked,
            approved=dict(verdict.targets),
            reasons={s: tuple(r) for s, r in verdict.reasons.items()},
            notes=(*verdict.notes, *([short_window] if short_window else [])),
            scale=verdict.scale,
            before=exposure_view(verdict.before),
            after=exposure_view(verdict.after),
            orders=tuple(sorted(orders, key=lambda o: not o.exit)),
        )
        return {"review": review}

    return node


def _execute(desk: DeskDependencies) -> Any:
    async def node(state: PortfolioState) -> dict[str, Any]:
        at, review = state["at"], state["review"]
        exits = [o for o in review.orders if o.exit]
        opening = [o for o in review.orders if not o.exit]
        outcomes = [await _send(desk, order, at) for order in exits]
        # the bars closed by ``at`` are the same all tick: one read serves every measure
        returns = await _book_returns(desk, state["symbols"], desk.executor.portfolio(), at)
        short = {o.symbol for o in outcomes if not _filled_in_full(o)}
        if short:
            # the room for the additions was counted with every exit done
            opening, refused = await _within_the_book(desk, state, opening, short, returns)
            outcomes += refused
        outcomes += [await _send(desk, order, at) for order in opening]
        book = desk.executor.portfolio()
        held = exposure_view(measure_book(book, returns, desk.executor.limits))
        emit(
            "desk",
            "portfolio",
            {
                **review.model_dump(mode="json", exclude={"orders"}),
                "book": held.model_dump(mode="json"),
            },
        )
        emit(
            "desk",
            "pnl",
            {
                "equity": str(book.equity),
                "cash": str(book.cash),
                "realized": str(book.realized_pnl),
                "unrealized": str(book.unrealized_pnl),
            },
        )
        return {"outcomes": outcomes, "book": held}

    return node


async def _send(desk: DeskDependencies, order: PlannedOrder, at: datetime) -> SymbolOutcome:
    """One planned order through the per-order gate, with the book the gate judged it on."""
    judged_on = desk.executor.portfolio()
    report = await desk.executor.submit(order.intent, at)
    if report.execution is None:
        reason = report.error or "; ".join(report.verdict.reasons)
        emit("desk", "risk_rejection", {"decision_id": order.decision_id, "reasons": [reason]})
    else:
        emit("desk", "order", report.execution.order.model_dump(mode="json"))
        for fill in report.execution.fills:
            emit("desk", "fill", fill.model_dump(mode="json"))
    return SymbolOutcome(
        symbol=order.symbol,
        decision_id=order.decision_id,
        intent=order.intent,
        verdict=report.verdict,
        execution=report.execution,
        error=report.error
        or (None if report.verdict.approved else "; ".join(report.verdict.reasons)),
        judged_on=judged_on,
    )


def _filled_in_full(outcome: SymbolOutcome) -> bool:
    fills = outcome.execution.fills if outcome.execution else ()
    return sum((f.quantity for f in fills), ZERO) >= outcome.intent.quantity


async def _within_the_book(
    desk: DeskDependencies,
    state: PortfolioState,
    opening: list[PlannedOrder],
    short_exits: set[str],
    returns: dict[str, dict[date, float]],
) -> tuple[list[PlannedOrder], list[SymbolOutcome]]:
    """The opening orders checked again against the book as the exits left it: each shrunk to
    what the portfolio check allows now, or refused. A symbol whose own exit fell short opens
    nothing the other way (its position is not where the plan left it)."""
    at, book = state["at"], desk.executor.portfolio()
    refused = [
        _refused(o, book, f"its exit did not fill in full: {o.symbol} is not flat")
        for o in opening
        if o.symbol in short_exits
    ]
    opening = [o for o in opening if o.symbol not in short_exits]
    if not opening:
        return [], refused
    prices = {p.symbol: p.context.price for p in state["proposals"]}
    targets = [
        Target(o.symbol, signed_holding(book, o.symbol) + _signed(o), prices[o.symbol])
        for o in opening
    ]
    verdict = check_portfolio(
        targets,
        book,
        desk.executor.limits,
        returns,
        at,
        fee_rate=_fee_rate(desk, book),
        shorts_allowed=desk.shorts,
    )
    kept: list[PlannedOrder] = []
    for order in opening:
        room = abs(verdict.targets[order.symbol] - signed_holding(book, order.symbol))
        quantity = min(order.intent.quantity, room.quantize(QUANTITY_STEP, rounding=ROUND_DOWN))
        if quantity > 0:
            kept.append(
                order.model_copy(
                    update={"intent": order.intent.model_copy(update={"quantity": quantity})}
                )
            )
            continue
        why = "; ".join(verdict.reasons.get(order.symbol, ())) or "no room left"
        reason = f"an exit did not fill in full, and the book's limits now allow none: {why}"
        refused.append(_refused(order, book, reason))
    return kept, refused


def _refused(order: PlannedOrder, book: Portfolio, reason: str) -> SymbolOutcome:
    emit("desk", "risk_rejection", {"decision_id": order.decision_id, "reasons": [reason]})
    return SymbolOutcome(
        symbol=order.symbol,
        decision_id=order.decision_id,
        intent=order.intent,
        verdict=RiskVerdict(approved=False, intent=order.intent, reasons=(reason,)),
        error=reason,
        judged_on=book,
    )


def _signed(order: PlannedOrder) -> Decimal:
    return order.intent.quantity if order.intent.side is Side.BUY else -order.intent.quantity


def _fee_rate(desk: DeskDependencies, book: Portfolio) -> Decimal:
    """Fees and slippage as a share of traded notional, the size-aware part at the largest
    order there can be (so the check never counts on less cost than the broker takes)."""
    costs = desk.executor.broker.cost_model
    largest = min(desk.executor.limits.max_order_notional, max(book.equity, ZERO))
    impact = costs.impact_bps_per_1k * largest / 1000
    return (costs.fee_bps + costs.slippage_bps + impact) / Decimal(10_000)


async def _book_returns(
    desk: DeskDependencies, symbols: Sequence[str], book: Portfolio, at: datetime
) -> dict[str, dict[date, float]]:
    returns = {}
    for symbol in book_symbols(symbols, book):
        try:
            returns[symbol] = await _daily_returns(desk, symbol, at)
        except MarketDataError:
            if symbol in symbols:
                raise
    return returns


def _persona(desk: DeskDependencies) -> Any:
    speak = persona_or_ablated(desk)

    async def node(state: PortfolioState) -> dict[str, Any]:
        symbol_state = headline_state(state)
        if symbol_state is None:
            return {"persona": [], "headline": None}
        update = await speak(symbol_state)  # type: ignore[arg-type]
        return {
            "persona": update.get("persona", []),
            "llm_calls": update.get("llm_calls", []),
            "headline": symbol_state["decision"].symbol,
        }

    return node


def _remember(desk: DeskDependencies) -> Any:
    remember = remember_node(memory_sinks(desk))

    async def node(state: PortfolioState) -> dict[str, Any]:
        for proposal in in_order(state["proposals"], state["symbols"]):
            await remember(
                {"decision": proposal.decision, "context": proposal.context, "at": state["at"]}
            )
        return {"remembered": True}

    return node


# --- the reconciliation, as plain functions ----------------------------------------------


async def _daily_returns(desk: DeskDependencies, symbol: str, at: datetime) -> dict[date, float]:
    bars = bars_for(desk.executor.limits, desk.bar)
    candles = await desk.market.candles(symbol, until=at, limit=bars)
    return daily_returns(candles, desk.bar)

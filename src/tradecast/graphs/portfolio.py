"""The portfolio desk graph: every symbol decided at the same instant, against one book.

START -> mark_book -> symbol_desk x N (LangGraph ``Send``, one per symbol, in parallel)
      -> portfolio -> execute -> [persona, remember] -> END

- ``mark_book`` marks every symbol at the tick's close, in the configured order, so stops,
  resting limits and (on margin) liquidations happen before anyone decides, and in the same
  order on every run.
- ``symbol_desk`` is the one-symbol desk's decision part (:func:`~tradecast.graphs.desk.
  decision_graph`: context, analyst, risk agent, trader, consensus) for one symbol. The
  branches run concurrently: their LLM calls overlap on a server that answers several at once
  (Ollama), and queue on the embedded model's lock.
- ``portfolio`` turns each symbol's decision into a target holding and reconciles the targets
  against the one book with :func:`tradecast.risk.portfolio.check_portfolio` (gross, net,
  per-symbol and correlated exposure, historical VaR and CVaR, portfolio locks), then plans
  the orders: exits first, so that what they free can be used by the buys.
- ``execute`` sends each order through the per-order gate (:class:`~tradecast.risk.execution.
  GatedExecutor`), which judges it again on the book as it is at that moment.
- ``persona`` narrates the tick's headline decision (one LLM call per tick, whatever the number
  of symbols); ``remember`` records every symbol's decision in the memory.

LLM calls per symbol and tick: analyst 1, risk agent 1, trader 1 or 2 (a tool round), plus the
persona's one call shared by the tick: at most 5 for one symbol, fewer per symbol with more.
A portfolio tick does not stop for human approval (``desk.require_approval`` is for the
one-symbol desk).
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Annotated, Any, cast

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Send
from pydantic import Field
from typing_extensions import TypedDict

from tradecast.agents.calls import LLMCall
from tradecast.agents.consensus import QUANTITY_STEP
from tradecast.broker.paper import Execution
from tradecast.domain import (
    Action,
    Decision,
    DomainModel,
    OrderIntent,
    PersonaLine,
    Portfolio,
    RiskVerdict,
    Side,
)
from tradecast.graphs.desk import (
    DeskDependencies,
    decision_graph,
    memory_sinks,
    persona_or_ablated,
)
from tradecast.graphs.nodes import emit, remember_node, timed
from tradecast.graphs.report import ExposureView
from tradecast.graphs.state import DeskContext, merge_latency
from tradecast.logs import get_logger
from tradecast.risk.book_exposure import bars_for
from tradecast.risk.portfolio import Exposure, Target, check_portfolio, daily_returns

log = get_logger(__name__)
ZERO = Decimal(0)


class SymbolProposal(DomainModel):
    """What one symbol's branch decided: the consensus and its proposed order."""

    symbol: str
    context: DeskContext
    decision: Decision
    intent: OrderIntent | None = None
    llm_calls: tuple[LLMCall, ...] = ()
    latency_ms: dict[str, float] = Field(default_factory=dict)


class PlannedOrder(DomainModel):
    """An order the portfolio node sends for one symbol's decision."""

    symbol: str
    decision_id: str
    intent: OrderIntent
    exit: bool
    """Whether it only reduces a position (sent before the orders that add)."""


class PortfolioReview(DomainModel):
    """The portfolio check's ruling on the tick's targets, and the orders it leads to."""

    current: dict[str, Decimal]
    asked: dict[str, Decimal]
    approved: dict[str, Decimal]
    reasons: dict[str, tuple[str, ...]]
    notes: tuple[str, ...] = ()
    scale: float = 1.0
    before: ExposureView
    after: ExposureView
    orders: tuple[PlannedOrder, ...] = ()


class SymbolOutcome(DomainModel):
    """What became of one planned order at the gate and the broker."""

    symbol: str
    decision_id: str
    intent: OrderIntent
    verdict: RiskVerdict
    execution: Execution | None = None
    error: str | None = None


class PortfolioState(TypedDict, total=False):
    """One portfolio tick; each node returns only the keys it changes."""

    at: datetime
    symbols: list[str]
    proposals: Annotated[list[SymbolProposal], operator.add]
    review: PortfolioReview
    outcomes: list[SymbolOutcome]
    persona: list[PersonaLine]
    headline: str | None
    remembered: bool
    llm_calls: Annotated[list[LLMCall], operator.add]
    latency_ms: Annotated[dict[str, float], merge_latency]


class SymbolInput(TypedDict):
    """What a ``Send`` hands one symbol's branch."""

    symbol: str
    at: datetime


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
        for symbol in state["symbols"]:
            _, exits = await desk.executor.mark_with_exits(symbol, state["at"])
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
        proposals = _in_order(state["proposals"], state["symbols"])
        book = desk.executor.portfolio()
        returns = {s: await _daily_returns(desk, s, at) for s in state["symbols"]}
        current = {p.symbol: signed_holding(book, p.symbol) for p in proposals}
        asked = {
            p.symbol: proposed_target(p.decision, current[p.symbol], desk.shorts) for p in proposals
        }
        costs = desk.executor.broker.cost_model
        verdict = check_portfolio(
            [Target(p.symbol, asked[p.symbol], p.context.price) for p in proposals],
            book,
            desk.executor.limits,
            returns,
            at,
            fee_rate=(costs.fee_bps + costs.slippage_bps) / Decimal(10_000),
            shorts_allowed=desk.shorts,
        )
        orders = [
            order
            for p in proposals
            for order in planned_orders(
                p.decision, p.intent, current[p.symbol], verdict.targets[p.symbol]
            )
        ]
        review = PortfolioReview(
            current=current,
            asked=asked,
            approved=dict(verdict.targets),
            reasons={s: tuple(r) for s, r in verdict.reasons.items()},
            notes=verdict.notes,
            scale=verdict.scale,
            before=exposure_view(verdict.before),
            after=exposure_view(verdict.after),
            orders=tuple(sorted(orders, key=lambda o: not o.exit)),
        )
        emit("desk", "portfolio", review.model_dump(mode="json", exclude={"orders"}))
        return {"review": review}

    return node


def _execute(desk: DeskDependencies) -> Any:
    async def node(state: PortfolioState) -> dict[str, Any]:
        outcomes = []
        for order in state["review"].orders:
            report = await desk.executor.submit(order.intent, state["at"])
            if report.execution is None:
                reason = report.error or "; ".join(report.verdict.reasons)
                emit(
                    "desk",
                    "risk_rejection",
                    {"decision_id": order.decision_id, "reasons": [reason]},
                )
            else:
                emit("desk", "order", report.execution.order.model_dump(mode="json"))
                for fill in report.execution.fills:
                    emit("desk", "fill", fill.model_dump(mode="json"))
            outcomes.append(
                SymbolOutcome(
                    symbol=order.symbol,
                    decision_id=order.decision_id,
                    intent=order.intent,
                    verdict=report.verdict,
                    execution=report.execution,
                    error=report.error
                    or (None if report.verdict.approved else "; ".join(report.verdict.reasons)),
                )
            )
        book = desk.executor.portfolio()
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
        return {"outcomes": outcomes}

    return node


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
        for proposal in _in_order(state["proposals"], state["symbols"]):
            await remember(
                {"decision": proposal.decision, "context": proposal.context, "at": state["at"]}
            )
        return {"remembered": True}

    return node


# --- the reconciliation, as plain functions ----------------------------------------------


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
    proposals = _in_order(state.get("proposals") or [], state.get("symbols") or [])
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


def _in_order(proposals: Sequence[SymbolProposal], symbols: Sequence[str]) -> list[SymbolProposal]:
    """Branches finish in any order; everything after them works in the configured one."""
    rank = {s: i for i, s in enumerate(symbols)}
    return sorted(proposals, key=lambda p: rank.get(p.symbol, len(rank)))


async def _daily_returns(desk: DeskDependencies, symbol: str, at: datetime) -> dict[date, float]:
    bars = bars_for(desk.executor.limits, desk.bar)
    candles = await desk.market.candles(symbol, until=at, limit=bars)
    return daily_returns(candles, desk.bar)


def per_symbol_calls(state: Mapping[str, Any]) -> dict[str, int]:
    """LLM calls per symbol of a finished tick (the persona's counted on its headline)."""
    counts = {p.symbol: len(p.llm_calls) for p in state.get("proposals") or []}
    headline = state.get("headline")
    if headline in counts:
        counts[headline] += len(state.get("llm_calls") or [])
    return counts

"""The desk graph's nodes. Each takes the state and returns a partial update, and gets only
the dependencies it needs: the persona node never sees the broker, the agents never see the
executor, and only ``execute`` can submit (through the risk gate)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.config import get_stream_writer
from langgraph.types import interrupt

from tradecast.agents.analyst import analyse
from tradecast.agents.consensus import SizingContext, combine, decision_id
from tradecast.agents.grounding import PersonaFacts
from tradecast.agents.persona import narrate
from tradecast.agents.persona_card import PersonaCard
from tradecast.agents.risk import review_risk
from tradecast.agents.rules import rules_signal
from tradecast.agents.trader import propose
from tradecast.agents.weights import agent_weights
from tradecast.domain import (
    Action,
    AgentSignal,
    Decision,
    OrderIntent,
    RiskVerdict,
    Side,
)
from tradecast.errors import MarketDataError, MemoryStoreError
from tradecast.graphs.review import parse_answer, review_request
from tradecast.graphs.state import DeskContext, DeskState, TraderExits
from tradecast.graphs.strategy_view import StrategySources, bars_read, strategy_view
from tradecast.logs import get_logger
from tradecast.market.base import MarketData
from tradecast.market.indicators import candles_to_frame, summarize
from tradecast.market.regimes import UNKNOWN
from tradecast.memory.base import DecisionMemory, DecisionRecord, horizon_delta
from tradecast.memory.format import format_hits
from tradecast.memory.outcomes import realised_outcome
from tradecast.memory.situation import describe_situation
from tradecast.news.view import NewsView
from tradecast.risk.execution import GatedExecutor
from tradecast.risk.exits import ExitPlan, atr_exits, trader_exits
from tradecast.risk.sizing import TargetWeight, TradeRecord, target_weight
from tradecast.settings import AblatableAgent, DeskConfig

log = get_logger(__name__)


MemoryCalls = Callable[..., Awaitable[Any]]
"""How the nodes call the decision memory, ``(function, *args, **kwargs)``: on a worker thread
(``asyncio.to_thread``, the default: a Chroma call blocks for milliseconds), or
:func:`call_inline` for a memory whose calls take microseconds (a thread hop costs more)."""


async def call_inline(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Call ``func`` on the event loop (a :data:`MemoryCalls` for an in-process memory)."""
    return func(*args, **kwargs)


class Node(Protocol):
    """A desk node: the state in, the keys it changes out. Its parameter is named ``state``
    (langgraph's node protocols allow calling it by that name, which a Callable does not)."""

    def __call__(self, state: DeskState) -> Awaitable[dict[str, Any]]: ...


def timed(name: str, node: Node) -> Node:
    """Record the node's wall time under ``latency_ms[name]``."""

    async def run(state: DeskState) -> dict[str, Any]:
        started = time.perf_counter()
        update = await node(state)
        update["latency_ms"] = {name: round((time.perf_counter() - started) * 1000, 2)}
        return update

    run.__name__ = name
    return run


def emit(channel: str, event: str, data: dict[str, Any]) -> None:
    """Send an event to whoever streams this run (custom stream mode); no-op otherwise."""
    try:
        writer = get_stream_writer()
    except RuntimeError:
        return
    writer({"channel": channel, "event": event, "data": data})


def _jsonable(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json")


@dataclass(frozen=True)
class ContextSources:
    """What gather_context reads: closed bars, the portfolio (through the executor's mark),
    and the memory."""

    market: MarketData
    executor: GatedExecutor
    memory: DecisionMemory
    config: DeskConfig
    bar: timedelta
    memory_calls: MemoryCalls = asyncio.to_thread
    news: NewsView | None = None


def gather_context(sources: ContextSources) -> Node:
    """Candles up to now, indicators, marked portfolio, similar past situations and the news
    readable by now."""
    strategy_sources = StrategySources(
        sources.memory, sources.config, sources.bar, sources.memory_calls
    )

    async def node(state: DeskState) -> dict[str, Any]:
        symbol, at = state["symbol"], state["at"]
        history = await sources.market.candles(
            symbol, until=at, limit=bars_read(sources.config, sources.bar)
        )
        candles = history[-sources.config.candles :]
        if len(candles) < 2:
            raise MarketDataError(f"not enough {symbol} bars closed by {at.isoformat()}")
        price, exits = await sources.executor.mark_with_exits(symbol, at)
        for fill, trigger in exits:  # stops and resting limits the new price set off
            emit("desk", "fill", {**_jsonable(fill), "trigger": trigger})
        portfolio = sources.executor.portfolio()
        strategy = await strategy_view(
            strategy_sources,
            symbol,
            at,
            history,
            portfolio,
            sources.executor.broker.fills(),
        )
        situation = describe_situation(candles)
        hits = (
            await sources.memory_calls(
                sources.memory.similar,
                situation,
                k=sources.config.memory_k,
                symbol=symbol,
                as_of=at,
            )
            if sources.config.memory_k
            else []
        )
        reading = await sources.news.read(symbol, at, situation) if sources.news else None
        context = DeskContext(
            symbol=symbol,
            at=at,
            price=price,
            summary=summarize(candles_to_frame(candles)),
            situation=situation,
            portfolio=portfolio,
            memory_hits=tuple(hits),
            # outcomes without the past situations' text: the hits were chosen for being
            # similar, and their text would double the prompt a small model evaluates
            memory_text=format_hits(hits, max_situation_chars=0),
            news=reading.headlines if reading else (),
            news_text=reading.text if reading else "",
            regime=strategy.regime,
            weights=strategy.weights,
            daily_volatility=strategy.inputs.daily_volatility(),
            daily_atr=strategy.inputs.atr(),
            closed_trades=strategy.closed_trades,
        )
        emit("market", "tick", {"symbol": symbol, "price": str(price), "at": at.isoformat()})
        return {"context": context, "signals": [rules_signal(context.summary), *strategy.signals]}

    return node


def analyst_node(model: BaseChatModel) -> Node:
    """The analyst's vote, the only agent that reads the news."""

    async def node(state: DeskState) -> dict[str, Any]:
        context = state["context"]
        prompt = context.as_prompt()
        if context.news_text:
            prompt += "\n" + context.news_text
        signal, call = await analyse(model, context.symbol, prompt)
        return {"signals": [signal], "llm_calls": [call]}

    return node


def risk_agent_node(model: BaseChatModel) -> Node:
    """The risk agent's review (shrink or veto only)."""

    async def node(state: DeskState) -> dict[str, Any]:
        signal, call = await review_risk(model, state["context"].as_prompt())
        return {"risk_review": signal, "llm_calls": [call]}

    return node


def trader_node(model: BaseChatModel, tools: Sequence[BaseTool], tool_steps: int) -> Node:
    """The trader's proposal, after reading the analyst's and risk agent's views."""

    async def node(state: DeskState) -> dict[str, Any]:
        context = state["context"]
        views = [s for s in state.get("signals", []) if s.agent == "analyst"]
        risk = state.get("risk_review")
        notes = [f"Analyst: {s.action.value} ({s.confidence:.2f}) {s.rationale}" for s in views]
        if risk is not None:
            notes.append(f"Risk: {risk.abstain_reason or risk.rationale}")
        prompt = context.as_prompt() + "\n" + "\n".join(notes)
        signal, proposal, calls = await propose(model, context.symbol, prompt, tools, tool_steps)
        exits = TraderExits(
            stop_loss_pct=proposal.stop_loss_pct if proposal else 0.0,
            take_profit_pct=proposal.take_profit_pct if proposal else 0.0,
        )
        return {"signals": [signal], "exits": exits, "llm_calls": calls}

    return node


def ablated_node(agent: AblatableAgent) -> Node:
    """An agent left out of the desk (an ablation): it is never asked and abstains, so its
    vote is removed and the consensus treats it as any abstention (the persona is silent)."""

    async def node(state: DeskState) -> dict[str, Any]:
        if agent == "persona":
            return {"persona": []}
        signal = AgentSignal.abstain(agent, "ablated: left out of this run")
        if agent == "risk":
            return {"risk_review": signal}
        update: dict[str, Any] = {"signals": [signal]}
        if agent == "trader":
            update["exits"] = TraderExits(stop_loss_pct=0.0, take_profit_pct=0.0)
        return update

    return node


def consensus_node(
    config: DeskConfig, max_position_pct: Callable[[], Decimal], *, shorts: bool = False
) -> Node:
    """Combine the votes into one Decision and, unless HOLD, an order intent. With ``shorts``
    a SELL with nothing held opens a short, sized as a BUY is."""

    async def node(state: DeskState) -> dict[str, Any]:
        context = state["context"]
        position = context.portfolio.position(context.symbol)
        short = context.portfolio.short(context.symbol) if shorts else None
        cap = max_position_pct()
        target = _target(config, context, cap)
        sizing = SizingContext(
            price=context.price,
            equity=context.portfolio.equity,
            held_quantity=position.quantity if position else Decimal(0),
            max_position_pct=cap,
            target_weight=None if target is None else Decimal(str(target.weight)),
            note=target.note if target else "",
            firm=target.firm if target else True,
            shorts=shorts,
            short_quantity=short.quantity if short else Decimal(0),
        )
        decision = combine(
            symbol=context.symbol,
            at=context.at,
            signals=state.get("signals", []),
            risk=state.get("risk_review"),
            sizing=sizing,
            config=config,
            weights=context.weights or agent_weights(config, UNKNOWN, {}),
            memory_hits=context.memory_hits,
            regime=context.regime,
        )
        if context.news:
            decision = decision.model_copy(update={"news": context.news})
        emit("desk", "decision", _jsonable(decision))
        plan = _exit_plan(config, context, state.get("exits"))
        opens_short = sizing.opens_short and decision.action is Action.SELL
        if opens_short:
            plan = plan.for_short(context.price)
        # exits protect a new position: a long bought or a short opened, not a cover or a sale
        opening = opens_short or (decision.action is Action.BUY and short is None)
        return {"decision": decision, "intent": _intent(decision, plan, opening)}

    return node


def _target(config: DeskConfig, context: DeskContext, cap: Decimal) -> TargetWeight | None:
    if config.strategy.sizing == "fixed":
        return None
    return target_weight(
        config.strategy,
        cap=float(cap),
        daily_volatility=context.daily_volatility,
        record=TradeRecord(context.closed_trades),
    )


def _exit_plan(config: DeskConfig, context: DeskContext, exits: TraderExits | None) -> ExitPlan:
    if config.strategy.exits == "trader":
        return trader_exits(
            context.price,
            stop_loss_pct=exits.stop_loss_pct if exits else 0.0,
            take_profit_pct=exits.take_profit_pct if exits else 0.0,
        )
    return atr_exits(config.strategy, context.price, context.daily_atr, context.at)


def _intent(decision: Decision, plan: ExitPlan, opening: bool) -> OrderIntent | None:
    if decision.action is Action.HOLD:
        return None
    return OrderIntent(
        symbol=decision.symbol,
        side=Side(decision.action.value),
        quantity=decision.quantity,
        stop_loss=plan.stop_loss if opening else None,
        take_profit=plan.take_profit if opening else None,
        time_stop_at=plan.time_stop_at if opening else None,
        client_order_id=f"tc-{decision.id}",
    )


def risk_gate_node(executor: GatedExecutor) -> Node:
    """The hard limits, in code: every rejection has a reason that is streamed."""

    async def node(state: DeskState) -> dict[str, Any]:
        intent = state.get("intent")
        if intent is None:
            verdict = RiskVerdict(approved=False, reasons=("nothing to trade (HOLD)",))
            return {"verdict": verdict}
        placed = executor.submitted(intent)
        if placed is not None:
            return {"verdict": placed.verdict}
        verdict, _ = await executor.review(intent, state["at"])
        if not verdict.approved:
            emit(
                "desk",
                "risk_rejection",
                {
                    "decision_id": state["decision"].id,
                    "reasons": list(verdict.reasons),
                    "intent": _jsonable(intent),
                },
            )
        return {"verdict": verdict}

    return node


def approval_request(state: DeskState) -> dict[str, Any]:
    """What an approval asks a human: the decision, the order and the gate's notes, as a
    human-in-the-loop action request (:mod:`tradecast.graphs.review`)."""
    verdict = state["verdict"]
    return review_request(state["decision"].id, verdict.intent, list(verdict.reasons))


def request_approval_node() -> Node:
    """Announce that an order waits for a human. A node of its own, before the one that
    waits, because LangGraph runs an interrupted node again from its start on resume: the
    announcement would go out a second time."""

    async def node(state: DeskState) -> dict[str, Any]:
        emit("desk", "approval_pending", approval_request(state))
        return {"approval": "pending"}

    return node


def approval_node() -> Node:
    """Wait for a human: the run pauses here until resumed with approve or reject."""

    async def node(state: DeskState) -> dict[str, Any]:
        verdict = state["verdict"]
        intent = verdict.intent
        request = approval_request(state)
        answer = parse_answer(interrupt(request), request["action_requests"][0])
        if not answer.approved:
            return {"approval": "rejected"}
        if answer.quantity is None or intent is None or answer.quantity == intent.quantity:
            return {"approval": "approved"}
        # The gate checks the smaller order again when it executes.
        note = f"quantity cut from {intent.quantity} to {answer.quantity} by a human review"
        edited = verdict.model_copy(
            update={
                "intent": intent.model_copy(update={"quantity": answer.quantity}),
                "reasons": (*verdict.reasons, note),
            }
        )
        return {"approval": "approved", "verdict": edited}

    return node


def execute_node(executor: GatedExecutor) -> Node:
    """Submit the approved intent (idempotent on its client order id)."""

    async def node(state: DeskState) -> dict[str, Any]:
        verdict = state.get("verdict")
        if (
            verdict is None
            or not verdict.approved
            or verdict.intent is None
            or state.get("approval") == "rejected"
        ):
            return {"execution": None}
        report = await executor.submit(verdict.intent, state["at"])
        if report.execution is None:
            reason = report.error or "; ".join(report.verdict.reasons)
            emit(
                "desk", "risk_rejection", {"decision_id": state["decision"].id, "reasons": [reason]}
            )
            # The gate's verdict at execution is the one that counts (an approval may have
            # waited while the kill switch went on): the report, the journal and the persona
            # all read it from here.
            refused = RiskVerdict(approved=False, intent=verdict.intent, reasons=(reason,))
            return {"execution": None, "execution_error": reason, "verdict": refused}
        emit("desk", "order", _jsonable(report.execution.order))
        for fill in report.execution.fills:
            emit("desk", "fill", _jsonable(fill))
        portfolio = executor.portfolio()
        emit(
            "desk",
            "pnl",
            {
                "equity": str(portfolio.equity),
                "cash": str(portfolio.cash),
                "realized": str(portfolio.realized_pnl),
                "unrealized": str(portfolio.unrealized_pnl),
            },
        )
        return {"execution": report.execution}

    return node


def persona_node(model: BaseChatModel, card: PersonaCard, max_tokens: int) -> Node:
    """Narrate the final action. Sees the decision and its outcome, not the broker."""

    async def node(state: DeskState) -> dict[str, Any]:
        facts = persona_facts(state)
        decision_id = state["decision"].id

        def speak(event: str, data: dict[str, Any]) -> None:
            emit("persona", event, {**data, "decision_id": decision_id})

        lines, call = await narrate(model, card, facts, speak, max_tokens=max_tokens)
        return {"persona": lines, "llm_calls": [call]}

    return node


def persona_facts(state: DeskState) -> PersonaFacts:
    """What the persona may say about this tick."""
    decision = state["decision"]
    execution = state.get("execution")
    verdict = state.get("verdict")
    fills = execution.fills if execution else ()
    quantity = sum((f.quantity for f in fills), Decimal(0)) if fills else decision.quantity
    fill_price = fills[-1].price if fills else None
    rejection = None
    if decision.action is not Action.HOLD and not fills:
        rejection = state.get("execution_error") or (
            "; ".join(verdict.reasons) if verdict and verdict.reasons else "not executed"
        )
        if state.get("approval") == "rejected":
            rejection = "the operator rejected it"
    return PersonaFacts(
        symbol=decision.symbol,
        action=decision.action,
        quantity=quantity,
        price=decision.price,
        confidence=decision.confidence,
        executed=bool(fills),
        fill_price=fill_price,
        rejection=rejection,
    )


@dataclass(frozen=True)
class MemorySinks:
    """What remember needs: the memory, closed bars for outcomes, and the horizons."""

    memory: DecisionMemory
    market: MarketData
    horizons: tuple[str, ...]
    bar: timedelta
    memory_calls: MemoryCalls = asyncio.to_thread


def remember_node(sinks: MemorySinks) -> Node:
    """Record this decision, and attach outcomes to past decisions whose horizon just ended."""

    async def node(state: DeskState) -> dict[str, Any]:
        decision, context = state["decision"], state["context"]
        record = DecisionRecord.of(decision, context.situation)
        await sinks.memory_calls(sinks.memory.record, record)
        for horizon in sinks.horizons:
            await _attach_matured(sinks, decision.symbol, state["at"], horizon)
        return {"remembered": True}

    return node


async def _attach_matured(sinks: MemorySinks, symbol: str, at: Any, horizon: str) -> None:
    decided_at = at - horizon_delta(horizon)
    past_id = decision_id(symbol, decided_at)
    try:
        past = await sinks.memory_calls(sinks.memory.get, past_id)
    except MemoryStoreError:
        return  # no decision at that instant (cadence does not divide the horizon)
    if horizon in past.outcome_returns:
        return
    bars_needed = int(horizon_delta(horizon) / sinks.bar) + 2
    candles = await sinks.market.candles(symbol, until=at, limit=bars_needed)
    entry = [c for c in candles if c.timestamp + sinks.bar <= decided_at]
    if not entry:
        return
    try:
        outcome = realised_outcome(
            past.action, entry[-1].close, decided_at, candles, horizon, sinks.bar
        )
    except ValueError as exc:
        log.info("memory.outcome_not_ready", decision_id=past_id, reason=str(exc))
        return
    await sinks.memory_calls(sinks.memory.attach_outcome, past_id, outcome)

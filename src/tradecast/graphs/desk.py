"""The desk graph (docs/ARCHITECTURE.md, "The desk graph"):

START -> gather_context -> [analyst, risk] -> trader -> consensus -> risk_gate
      -> (approval) -> execute -> [persona, remember] -> END
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from tradecast.agents.persona_card import PersonaCard
from tradecast.graphs.nodes import (
    ContextSources,
    MemoryCalls,
    MemorySinks,
    Node,
    ablated_node,
    analyst_node,
    approval_node,
    consensus_node,
    execute_node,
    gather_context,
    persona_node,
    remember_node,
    request_approval_node,
    risk_agent_node,
    risk_gate_node,
    timed,
    trader_node,
)
from tradecast.graphs.state import DeskState
from tradecast.market.base import MarketData
from tradecast.memory.base import DecisionMemory
from tradecast.news.view import NewsView
from tradecast.risk.execution import GatedExecutor
from tradecast.settings import AgentRole, DeskConfig


@dataclass(frozen=True)
class DeskDependencies:
    """Everything the desk graph is built from (made by bootstrap)."""

    market: MarketData
    executor: GatedExecutor
    memory: DecisionMemory
    models: Mapping[AgentRole, BaseChatModel]
    trader_tools: Sequence[BaseTool]
    card: PersonaCard
    config: DeskConfig
    bar: timedelta
    memory_calls: MemoryCalls = asyncio.to_thread
    """How the nodes call ``memory`` (on a worker thread unless its calls take microseconds)."""
    news: NewsView | None = None
    """What the analyst may read of the news (None: no news source configured)."""
    shorts: bool = False
    """Whether a SELL with nothing held opens a short (the broker's margin account is on)."""


def route_after_gate(
    state: DeskState, *, require_approval: bool
) -> Literal["request_approval", "execute"]:
    """Approved trades wait for a human when approval is required; all else goes on."""
    verdict = state.get("verdict")
    if require_approval and verdict is not None and verdict.approved:
        return "request_approval"
    return "execute"


def decision_graph(deps: DeskDependencies) -> StateGraph:
    """The part of the desk that decides on one symbol, up to the consensus:
    gather_context -> [analyst, risk] -> trader -> consensus (no order is sent). The one-symbol
    desk goes on from ``consensus``; the portfolio desk runs it once per symbol."""
    config = deps.config
    sources = ContextSources(
        deps.market, deps.executor, deps.memory, config, deps.bar, deps.memory_calls, deps.news
    )
    max_position: Callable[[], Decimal] = lambda: deps.executor.limits.max_position_pct  # noqa: E731
    agents: dict[str, Node] = {
        "analyst": analyst_node(deps.models["analyst"]),
        "risk": risk_agent_node(deps.models["risk"]),
        "trader": trader_node(deps.models["trader"], deps.trader_tools, config.trader_tool_steps),
    }
    for agent in config.ablate:
        if agent in agents:
            agents[agent] = ablated_node(agent)
    graph = StateGraph(DeskState)
    nodes: dict[str, Node] = {
        "gather_context": gather_context(sources),
        **agents,
        "consensus": consensus_node(config, max_position, shorts=deps.shorts),
    }
    for name, node in nodes.items():
        graph.add_node(name, timed(name, node))
    graph.add_edge(START, "gather_context")
    graph.add_edge("gather_context", "analyst")
    graph.add_edge("gather_context", "risk")
    graph.add_edge(["analyst", "risk"], "trader")
    graph.add_edge("trader", "consensus")
    return graph


def persona_or_ablated(deps: DeskDependencies) -> Node:
    """The persona node, or its ablation when the run leaves the persona out."""
    if "persona" in deps.config.ablate:
        return ablated_node("persona")
    return persona_node(deps.models["persona"], deps.card, deps.config.persona_max_tokens)


def memory_sinks(deps: DeskDependencies) -> MemorySinks:
    """What the remember node writes to."""
    return MemorySinks(
        deps.memory, deps.market, deps.config.outcome_horizons, deps.bar, deps.memory_calls
    )


def build_desk_graph(
    deps: DeskDependencies, checkpointer: BaseCheckpointSaver | None = None
) -> CompiledStateGraph:
    """The compiled desk graph over ``deps`` (checkpointed when a saver is given)."""
    config = deps.config
    graph = decision_graph(deps)
    nodes: dict[str, Node] = {
        "risk_gate": risk_gate_node(deps.executor),
        "request_approval": request_approval_node(),
        "approval": approval_node(),
        "execute": execute_node(deps.executor),
        "persona": persona_or_ablated(deps),
        "remember": remember_node(memory_sinks(deps)),
    }
    for name, node in nodes.items():
        graph.add_node(name, timed(name, node))
    graph.add_edge("consensus", "risk_gate")
    graph.add_conditional_edges(
        "risk_gate",
        lambda state: route_after_gate(state, require_approval=config.require_approval),
        ["request_approval", "execute"],
    )
    graph.add_edge("request_approval", "approval")
    graph.add_edge("approval", "execute")
    graph.add_edge("execute", "persona")
    graph.add_edge("execute", "remember")
    graph.add_edge("persona", END)
    graph.add_edge("remember", END)
    return graph.compile(checkpointer=checkpointer, name="desk")

"""Checkpoint serialisation limited to the desk's own types (no arbitrary classes)."""

from __future__ import annotations

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from tradecast.agents.calls import LLMCall
from tradecast.broker.paper import Execution
from tradecast.domain import (
    Action,
    AgentSignal,
    Attribution,
    Decision,
    Fill,
    MemoryHit,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    PersonaLine,
    Portfolio,
    Position,
    RiskVerdict,
    Side,
)
from tradecast.graphs.state import DeskContext, TraderExits
from tradecast.market.indicators import IndicatorSummary

CHECKPOINTED_TYPES: tuple[type, ...] = (
    Action,
    AgentSignal,
    Attribution,
    Decision,
    DeskContext,
    Execution,
    Fill,
    IndicatorSummary,
    LLMCall,
    MemoryHit,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    PersonaLine,
    Portfolio,
    Position,
    RiskVerdict,
    Side,
    TraderExits,
)


def desk_serializer() -> JsonPlusSerializer:
    """A serializer that restores exactly the types the desk state holds."""
    return JsonPlusSerializer(allowed_msgpack_modules=CHECKPOINTED_TYPES)

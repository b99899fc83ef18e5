"""Checkpoint serialisation limited to the desk's own types (no arbitrary classes), and a
SQLite checkpointer without a worker thread for runs that own their file (evals)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

from tradecast.agents.calls import LLMCall
from tradecast.broker.paper import Execution
from tradecast.domain import (
    Action,
    AgentSignal,
    Attribution,
    Decision,
    Fill,
    MemoryHit,
    NewsHeadline,
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
    NewsHeadline,
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


class InlineSqliteSaver(SqliteSaver):
    """LangGraph's SQLite checkpointer with its async methods run on the event loop itself.

    The same tables, queries and serialisation as ``AsyncSqliteSaver`` (so the file reads
    back with either), without aiosqlite's worker thread: every read or write of a tick
    there is a thread round trip (~60 us each, some 25 per tick), while the statement itself
    takes microseconds on a local file. For a process that owns the file and does nothing
    else while it ticks, such as an eval run.
    """

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.get_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for item in self.list(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return self.get_delta_channel_history(config=config, channels=channels)

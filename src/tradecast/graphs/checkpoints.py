"""Checkpoint serialisation limited to the desk's own types (no arbitrary classes), and a
SQLite checkpointer without a worker thread for runs that own their file (evals)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph.state import CompiledStateGraph

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
from tradecast.graphs.chat import ChatReply
from tradecast.graphs.commands import Command
from tradecast.graphs.portfolio_state import (
    PlannedOrder,
    PortfolioReview,
    SymbolOutcome,
    SymbolProposal,
)
from tradecast.graphs.report import ExposureView
from tradecast.graphs.state import DeskContext, TraderExits
from tradecast.market.indicators import IndicatorSummary

CHECKPOINTED_TYPES: tuple[type, ...] = (
    AIMessage,
    HumanMessage,
    ChatReply,
    Command,
    Action,
    AgentSignal,
    Attribution,
    Decision,
    DeskContext,
    Execution,
    ExposureView,
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
    PlannedOrder,
    Portfolio,
    PortfolioReview,
    Position,
    RiskVerdict,
    Side,
    SymbolOutcome,
    SymbolProposal,
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


async def delete_run_checkpoints(saver: BaseCheckpointSaver, thread_id: str, run_id: str) -> int:
    """Delete the checkpoints (and their pending writes) that run ``run_id`` wrote to
    ``thread_id``: LangGraph's ``delete_for_runs`` for one thread, done here for the SQLite
    and PostgreSQL savers, which leave it unimplemented. Returns how many were deleted."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    ids = [
        item.config["configurable"]["checkpoint_id"]
        async for item in saver.alist(config, filter={"run_id": run_id})
    ]
    if not ids:
        return 0
    if isinstance(saver, AsyncPostgresSaver):
        marks = ", ".join(["%s"] * len(ids))
        async with saver._cursor() as cursor:
            for table in ("checkpoint_writes", "checkpoints"):
                await cursor.execute(
                    f"DELETE FROM {table} WHERE thread_id = %s AND checkpoint_id IN ({marks})",
                    (thread_id, *ids),
                )
    elif isinstance(saver, AsyncSqliteSaver):
        marks = ", ".join(["?"] * len(ids))
        async with saver.lock:
            for table in ("writes", "checkpoints"):
                await saver.conn.execute(
                    f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_id IN ({marks})",
                    (thread_id, *ids),
                )
            await saver.conn.commit()
    else:
        await saver.adelete_for_runs([run_id])
    return len(ids)


async def has_checkpoint(graph: CompiledStateGraph, thread_id: str, checkpoint_id: str) -> bool:
    """Whether ``graph``'s checkpointer holds ``checkpoint_id`` on ``thread_id`` (reading a
    state at an unknown id would answer an empty state, not an error)."""
    saver = graph.checkpointer
    config: RunnableConfig = {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": "",
            "checkpoint_id": checkpoint_id,
        }
    }
    return isinstance(saver, BaseCheckpointSaver) and await saver.aget_tuple(config) is not None

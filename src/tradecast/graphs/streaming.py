"""Running a compiled graph in several LangGraph stream modes at once, ``events`` included.

LangGraph's own modes (values, updates, messages, custom, debug, tasks, checkpoints) come
from ``astream``. ``events`` is LangChain's event stream (``astream_events``, v2): when it is
asked for, the graph runs under it, and the other modes' chunks are taken from the root
run's ``on_chain_stream`` events, so one execution serves every mode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Durability

GraphMode = Literal["values", "updates", "messages", "custom", "debug", "tasks", "checkpoints"]
GRAPH_MODES: frozenset[str] = frozenset(get_args(GraphMode))
EVENTS = "events"
Chunk = tuple[str, Any]


@dataclass
class GraphTap:
    """Who else wants a run's chunks: the modes it asked for, and where they go."""

    modes: frozenset[str]
    deliver: Callable[[str, Any], None]

    def __call__(self, mode: str, chunk: Any) -> None:
        if mode in self.modes:
            self.deliver(mode, chunk)


async def stream_graph(
    graph: CompiledStateGraph,
    payload: Any,
    config: RunnableConfig,
    modes: Iterable[str],
    durability: Durability | None = None,
) -> AsyncIterator[Chunk]:
    """``(mode, chunk)`` pairs of one execution of ``graph`` in every mode of ``modes``.

    Raises:
        ValueError: a mode LangGraph does not have.
    """
    wanted = set(modes)
    unknown = wanted - GRAPH_MODES - {EVENTS}
    if unknown:
        raise ValueError(f"unknown stream modes: {', '.join(sorted(unknown))}")
    graph_modes = cast("list[GraphMode]", sorted(wanted - {EVENTS}) or ["values"])
    kwargs: dict[str, Any] = {"durability": durability} if durability else {}
    if EVENTS not in wanted:
        async for mode, chunk in graph.astream(payload, config, stream_mode=graph_modes, **kwargs):
            yield mode, chunk
        return
    async for event in graph.astream_events(
        payload, config, version="v2", stream_mode=graph_modes, **kwargs
    ):
        yield EVENTS, event
        if event["event"] == "on_chain_stream" and not event.get("parent_ids"):
            chunk = event["data"].get("chunk")
            if isinstance(chunk, tuple) and len(chunk) == 2 and chunk[0] in wanted:
                yield chunk[0], chunk[1]

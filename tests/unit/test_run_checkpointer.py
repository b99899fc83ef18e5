"""The eval run's checkpointer: LangGraph's SQLite checkpoints written on the event loop, in
the same file format the desk's own (aiosqlite) checkpointer reads."""

from __future__ import annotations

import operator
import sqlite3
from pathlib import Path
from typing import Annotated, TypedDict

import aiosqlite
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph

from tradecast.bootstrap import CHECKPOINTS_FILENAME, open_run_checkpointer
from tradecast.graphs.checkpoints import desk_serializer
from tradecast.settings import load_settings


class Counter(TypedDict, total=False):
    steps: Annotated[list[str], operator.add]


def _graph() -> StateGraph:
    graph = StateGraph(Counter)
    graph.add_node("one", lambda state: {"steps": ["one"]})
    graph.add_node("two", lambda state: {"steps": ["two"]})
    graph.add_edge(START, "one")
    graph.add_edge("one", "two")
    graph.add_edge("two", END)
    return graph


async def test_run_checkpoints_read_back_with_the_desks_checkpointer(tmp_path: Path):
    settings = load_settings(data_dir=tmp_path)
    config = {"configurable": {"thread_id": "tick:1"}}
    async with open_run_checkpointer(settings) as saver:
        graph = _graph().compile(checkpointer=saver)
        for durability in ("exit", None):
            thread = {"configurable": {"thread_id": f"tick:{durability}"}}
            await graph.ainvoke({"steps": []}, thread, durability=durability)
        await graph.ainvoke({"steps": []}, config, durability="exit")
        inline = await graph.aget_state(config)
        history = [s async for s in graph.aget_state_history(config)]
    assert inline.values == {"steps": ["one", "two"]} and not inline.next
    assert len(history) == 1, "durability 'exit': one checkpoint for the whole run"

    path = tmp_path / CHECKPOINTS_FILENAME
    async with aiosqlite.connect(str(path)) as connection:
        reader = _graph().compile(
            checkpointer=AsyncSqliteSaver(connection, serde=desk_serializer())
        )
        again = await reader.aget_state(config)
        per_step = await reader.aget_state({"configurable": {"thread_id": "tick:None"}})
    assert again.values == inline.values and again.config == inline.config
    assert per_step.values == {"steps": ["one", "two"]}
    (mode,) = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"

"""Deleting one run's checkpoints (what a rollback does to a chat thread) on both savers the
desk uses: SQLite and PostgreSQL. The thread's head goes back to where it was before the
run, and the other runs' checkpoints, and other threads, are untouched."""

from __future__ import annotations

import operator
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import aiosqlite
import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from tradecast.bootstrap.scaled import postgres_checkpointer
from tradecast.graphs.checkpoints import delete_run_checkpoints, desk_serializer


class Said(TypedDict, total=False):
    lines: Annotated[list[str], operator.add]


def _graph(saver: BaseCheckpointSaver):
    graph = StateGraph(Said)
    graph.add_node("echo", lambda state: {"lines": ["echo"]})
    graph.add_edge(START, "echo")
    graph.add_edge("echo", END)
    return graph.compile(checkpointer=saver)


@asynccontextmanager
async def _sqlite(path: Path) -> AsyncIterator[BaseCheckpointSaver]:
    async with aiosqlite.connect(path) as connection:
        yield AsyncSqliteSaver(connection, serde=desk_serializer())


@pytest.fixture(params=["sqlite", "postgres"])
async def saver(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BaseCheckpointSaver]:
    if request.param == "postgres":
        request.applymarker(pytest.mark.scaleout)
        opened = postgres_checkpointer(request.getfixturevalue("postgres_url"))
    else:
        opened = _sqlite(tmp_path / "checkpoints.sqlite")
    async with opened as made:
        yield made


async def _run(graph, thread: str, said: str) -> str:
    run_id = str(uuid.uuid4())
    config = {"configurable": {"thread_id": thread}, "metadata": {"run_id": run_id}}
    await graph.ainvoke({"lines": [said]}, config)
    return run_id


async def test_a_rolled_back_run_leaves_no_checkpoint(saver: BaseCheckpointSaver) -> None:
    graph = _graph(saver)
    thread, other = f"chat-{uuid.uuid4()}", f"chat-{uuid.uuid4()}"
    await _run(graph, thread, "first")
    kept = await graph.aget_state({"configurable": {"thread_id": thread}})
    second = await _run(graph, thread, "second")
    await _run(graph, other, "elsewhere")
    count = len([c async for c in saver.alist({"configurable": {"thread_id": thread}})])

    deleted = await delete_run_checkpoints(saver, thread, second)

    assert deleted == 3, "the input, the step and the end of the run"
    left = [c async for c in saver.alist({"configurable": {"thread_id": thread}})]
    assert len(left) == count - deleted
    head = await graph.aget_state({"configurable": {"thread_id": thread}})
    assert head.config == kept.config and head.values == {"lines": ["first", "echo"]}
    untouched = await graph.aget_state({"configurable": {"thread_id": other}})
    assert untouched.values == {"lines": ["elsewhere", "echo"]}
    assert await delete_run_checkpoints(saver, thread, second) == 0

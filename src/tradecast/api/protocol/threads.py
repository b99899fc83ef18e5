"""Threads as LangGraph's server shows them: create, get, search, update, delete, state and
history.

Three kinds of thread:

- ``desk``: the desk itself. Its values are the latest tick report, its interrupts the
  orders waiting for a human, its history the latest tick reports. It cannot be deleted.
- ``tick:<decision id>``: one tick's checkpointed desk graph (state, history, resume).
  Its checkpoints are the desk's record; they cannot be deleted here.
- any other id: a chat conversation (the chat graph's checkpoints).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph

from tradecast.api.auth import Principal
from tradecast.api.deps import ApiContext, get_context, operator, operator_control
from tradecast.api.errors import CONTROL_RESPONSES, ERROR_RESPONSES, ApiError
from tradecast.api.protocol.assistants import GRAPHS, assistant_id
from tradecast.api.protocol.schemas import (
    CheckpointRef,
    StateAt,
    ThreadCreate,
    ThreadHistory,
    ThreadPatch,
    ThreadSearch,
)
from tradecast.api.protocol.serde import interrupts_by_task, jsonable, thread_state
from tradecast.api.protocol.work import DESK_THREAD, kind_of
from tradecast.desk.store import MAX_THREADS
from tradecast.graphs.checkpoints import has_checkpoint

router = APIRouter(tags=["langgraph"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: ERROR_RESPONSES[401] | {"description": "no such thread"}
}
DESK_METADATA = {"kind": "desk", "graph_id": "desk", "assistant_id": assistant_id("desk")}


def _config(thread_id: str, checkpoint_id: str | None = None) -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def graph_for(ctx: ApiContext, thread_id: str) -> CompiledStateGraph:
    """The graph whose checkpoints a tick or chat thread is."""
    return ctx.desk.runtime.runner.graph if kind_of(thread_id) == "tick" else ctx.chat.graph


def _status(ctx: ApiContext, thread_id: str, interrupted: bool) -> str:
    runs = ctx.runs.of_thread(thread_id)
    if any(not run.done for run in runs):
        return "busy"
    if runs and runs[0].status == "error":
        return "error"
    return "interrupted" if interrupted else "idle"


async def thread_json(ctx: ApiContext, thread_id: str) -> dict[str, Any]:
    """LangGraph's ``Thread``.

    Raises:
        ApiError: 404, no such thread.
    """
    kind = kind_of(thread_id)
    if kind == "desk":
        return await _desk_thread(ctx)
    stored = ctx.desk.store.thread(thread_id) if kind == "chat" else None
    if kind == "chat" and stored is None:
        raise ApiError(404, "not_found", f"no thread {thread_id!r}")
    snapshot = await graph_for(ctx, thread_id).aget_state(_config(thread_id))
    if stored is None and not snapshot.values:
        raise ApiError(404, "not_found", f"no thread {thread_id!r}")
    created = stored["created_at"] if stored else snapshot.created_at
    metadata = stored["metadata"] if stored else DESK_METADATA | {"kind": "tick"}
    interrupts = interrupts_by_task(snapshot)
    return {
        "thread_id": thread_id,
        "created_at": created,
        "updated_at": snapshot.created_at or created,
        "metadata": metadata,
        "status": _status(ctx, thread_id, bool(interrupts)),
        "config": {},
        "values": jsonable(snapshot.values),
        "interrupts": interrupts,
    }


async def _desk_thread(ctx: ApiContext) -> dict[str, Any]:
    latest, _ = ctx.desk.store.decisions(limit=1)
    interrupts = {
        review["decision_id"]: [{"id": review["decision_id"], "value": review}]
        for review in await ctx.desk.pending_reviews()
    }
    status = _status(ctx, DESK_THREAD, bool(interrupts))
    if status != "busy" and ctx.desk.status()["ticking"]:
        status = "busy"
    report = latest[0] if latest else {}
    return {
        "thread_id": DESK_THREAD,
        "created_at": ctx.started_at,
        "updated_at": (report.get("decision") or {}).get("at") or ctx.started_at,
        "metadata": DESK_METADATA,
        "status": status,
        "config": {},
        "values": report,
        "interrupts": interrupts,
    }


def _desk_state(report: dict[str, Any], interrupts: dict[str, Any]) -> dict[str, Any]:
    """A tick report as a state of the desk thread (it has no checkpoints of its own)."""
    tasks = [
        {
            "id": decision_id,
            "name": "approval",
            "path": [],
            "error": None,
            "interrupts": items,
            "checkpoint": None,
            "state": None,
            "result": None,
        }
        for decision_id, items in interrupts.items()
    ]
    return {
        "values": report,
        "next": ["approval"] if tasks else [],
        "tasks": tasks,
        "checkpoint": None,
        "parent_checkpoint": None,
        "metadata": {
            "decision_id": report.get("id"),
            "tick_thread_id": report.get("thread_id"),
        },
        "created_at": (report.get("decision") or {}).get("at"),
        "interrupts": [i for items in interrupts.values() for i in items],
    }


async def state_json(
    ctx: ApiContext, thread_id: str, checkpoint_id: str | None = None
) -> dict[str, Any]:
    """LangGraph's ``ThreadState`` now (or at ``checkpoint_id``).

    Raises:
        ApiError: 404, no such thread or checkpoint.
    """
    thread = await thread_json(ctx, thread_id)
    if kind_of(thread_id) == "desk":
        if checkpoint_id:
            raise ApiError(404, "not_found", "the desk thread has no checkpoints; see tick threads")
        return _desk_state(thread["values"], thread["interrupts"])
    graph = graph_for(ctx, thread_id)
    if checkpoint_id and not await has_checkpoint(graph, thread_id, checkpoint_id):
        raise ApiError(404, "not_found", f"no checkpoint {checkpoint_id[:64]!r} on {thread_id!r}")
    return thread_state(await graph.aget_state(_config(thread_id, checkpoint_id)))


async def history_json(
    ctx: ApiContext, thread_id: str, body: ThreadHistory
) -> list[dict[str, Any]]:
    """The thread's states, newest first."""
    await thread_json(ctx, thread_id)
    if kind_of(thread_id) == "desk":
        reports, _ = ctx.desk.store.decisions(limit=body.limit)
        return [_desk_state(report, {}) for report in reports]
    before = body.before.checkpoint_id if isinstance(body.before, CheckpointRef) else body.before
    start = body.checkpoint.checkpoint_id if body.checkpoint else None
    graph = graph_for(ctx, thread_id)
    states = graph.aget_state_history(
        _config(thread_id, start),
        filter=body.metadata,
        before=_config(thread_id, before) if before else None,
        limit=body.limit,
    )
    try:
        return [thread_state(snapshot) async for snapshot in states]
    except ValueError as exc:  # a filter the checkpointer cannot run
        raise ApiError(422, "validation_error", f"history: {exc}") from None


# --- routes -------------------------------------------------------------------------------


@router.post("/threads", responses=CONTROL_RESPONSES)
async def create_thread(
    body: ThreadCreate,
    _: Principal = Depends(operator_control),
    ctx: ApiContext = Depends(get_context),
) -> dict[str, Any]:
    """Create a chat thread. Operator."""
    thread_id = body.thread_id or str(uuid.uuid4())
    if kind_of(thread_id) != "chat":
        raise ApiError(409, "conflict", f"thread id {thread_id!r} is reserved for the desk")
    metadata = dict(body.metadata)
    if body.graph_id is not None:
        metadata["graph_id"] = body.graph_id
    if metadata.get("graph_id") not in (None, "chat"):
        raise ApiError(422, "validation_error", "threads you create are chat threads (graph chat)")
    created = ctx.desk.store.create_thread(thread_id, {"kind": "chat"} | metadata)
    if created is None and body.if_exists != "do_nothing":
        raise ApiError(409, "conflict", f"thread {thread_id!r} exists already")
    return await thread_json(ctx, thread_id)


@router.post("/threads/search", responses=ERROR_RESPONSES)
async def search_threads(
    body: ThreadSearch, _: Principal = Depends(operator), ctx: ApiContext = Depends(get_context)
) -> list[dict[str, Any]]:
    """The desk thread and the chat threads matching the filters (tick threads are not
    listed: open them by id). Operator."""
    rows: list[dict[str, Any]] = [
        {"thread_id": DESK_THREAD, "created_at": ctx.started_at, "metadata": DESK_METADATA}
    ]
    rows += ctx.desk.store.threads(MAX_THREADS)
    if body.ids is not None:
        wanted = set(body.ids)
        rows = [r for r in rows if r["thread_id"] in wanted]
    if body.metadata:
        rows = [r for r in rows if _contains(r["metadata"], body.metadata)]
    descending = body.sort_order == "desc"
    if body.status is None and not body.values and body.sort_by in ("thread_id", "created_at"):
        # what sorts and filters without reading any state: page first, then read the page
        rows.sort(key=lambda r: str(r[body.sort_by] or ""), reverse=descending)
        rows = rows[body.offset : body.offset + body.limit]
        page = [await thread_json(ctx, r["thread_id"]) for r in rows]
    else:
        threads = [await thread_json(ctx, r["thread_id"]) for r in rows]
        if body.status is not None:
            threads = [t for t in threads if t["status"] == body.status]
        if body.values:
            threads = [t for t in threads if _contains(t["values"], body.values)]
        threads.sort(key=lambda t: str(t[body.sort_by] or ""), reverse=descending)
        page = threads[body.offset : body.offset + body.limit]
    if body.select:
        page = [{k: t[k] for k in body.select if k in t} for t in page]
    return page


def _contains(value: Any, wanted: dict[str, Any]) -> bool:
    return isinstance(value, dict) and all(value.get(k) == v for k, v in wanted.items())


@router.get("/threads/{thread_id}", responses={**ERROR_RESPONSES, **NOT_FOUND})
async def get_thread(
    thread_id: str, _: Principal = Depends(operator), ctx: ApiContext = Depends(get_context)
) -> dict[str, Any]:
    """A thread: status ``idle``, ``busy``, ``interrupted`` or ``error``, its values and
    interrupts. Operator."""
    return await thread_json(ctx, thread_id)


@router.patch("/threads/{thread_id}", responses={**CONTROL_RESPONSES, **NOT_FOUND})
async def patch_thread(
    thread_id: str,
    body: ThreadPatch,
    _: Principal = Depends(operator_control),
    ctx: ApiContext = Depends(get_context),
) -> dict[str, Any]:
    """Merge metadata into a chat thread's. Operator."""
    if kind_of(thread_id) != "chat":
        raise ApiError(409, "conflict", "only chat threads take metadata")
    if ctx.desk.store.update_thread(thread_id, dict(body.metadata)) is None:
        raise ApiError(404, "not_found", f"no thread {thread_id!r}")
    return await thread_json(ctx, thread_id)


@router.delete(
    "/threads/{thread_id}",
    status_code=204,
    response_class=Response,
    responses={**CONTROL_RESPONSES, **NOT_FOUND},
)
async def delete_thread(
    thread_id: str, _: Principal = Depends(operator_control), ctx: ApiContext = Depends(get_context)
) -> Response:
    """Delete a chat thread, its conversation and its runs. The desk's threads are its
    record and cannot be deleted. Operator."""
    if kind_of(thread_id) != "chat":
        raise ApiError(409, "conflict", f"{thread_id!r} is the desk's record; it cannot be deleted")
    if ctx.desk.store.thread(thread_id) is None:
        raise ApiError(404, "not_found", f"no thread {thread_id!r}")
    if ctx.runs.in_flight(thread_id):
        raise ApiError(409, "conflict", f"thread {thread_id!r} is running a task; cancel it first")
    await drop_chat_thread(ctx, thread_id)
    ctx.runs.forget_thread(thread_id)
    return Response(status_code=204)


async def drop_chat_thread(ctx: ApiContext, thread_id: str) -> None:
    """Delete a chat thread and its conversation (its checkpoints)."""
    if ctx.chat.checkpointer is not None:
        await ctx.chat.checkpointer.adelete_thread(thread_id)
    ctx.desk.store.delete_thread(thread_id)


@router.get("/threads/{thread_id}/state", responses={**ERROR_RESPONSES, **NOT_FOUND})
async def get_state(
    thread_id: str,
    subgraphs: bool = Query(False, description="the desk has no subgraphs"),
    _: Principal = Depends(operator),
    ctx: ApiContext = Depends(get_context),
) -> dict[str, Any]:
    """The thread's state: values, ``next``, tasks with their interrupts, checkpoint.
    Operator."""
    return await state_json(ctx, thread_id)


@router.get(
    "/threads/{thread_id}/state/{checkpoint_id}",
    responses={**ERROR_RESPONSES, **NOT_FOUND},
)
async def get_state_at(
    thread_id: str,
    checkpoint_id: str,
    _: Principal = Depends(operator),
    ctx: ApiContext = Depends(get_context),
) -> dict[str, Any]:
    """The thread's state at one checkpoint. Operator."""
    return await state_json(ctx, thread_id, checkpoint_id)


@router.post(
    "/threads/{thread_id}/state/checkpoint",
    responses={**ERROR_RESPONSES, **NOT_FOUND},
)
async def post_state_at(
    thread_id: str,
    body: StateAt,
    _: Principal = Depends(operator),
    ctx: ApiContext = Depends(get_context),
) -> dict[str, Any]:
    """The thread's state at ``checkpoint`` (what the SDK sends for a checkpoint dict).
    Operator."""
    return await state_json(ctx, thread_id, body.checkpoint.checkpoint_id)


@router.post("/threads/{thread_id}/history", responses={**ERROR_RESPONSES, **NOT_FOUND})
async def post_history(
    thread_id: str,
    body: ThreadHistory,
    _: Principal = Depends(operator),
    ctx: ApiContext = Depends(get_context),
) -> list[dict[str, Any]]:
    """The thread's states, newest first (``limit``, ``before`` a checkpoint, ``metadata``
    filter). Operator."""
    return await history_json(ctx, thread_id, body)


@router.get("/threads/{thread_id}/history", responses={**ERROR_RESPONSES, **NOT_FOUND})
async def get_history(
    thread_id: str,
    limit: int = Query(10, ge=1, le=1000),
    before: str | None = Query(None, max_length=64),
    _: Principal = Depends(operator),
    ctx: ApiContext = Depends(get_context),
) -> list[dict[str, Any]]:
    """The same as ``POST .../history``. Operator."""
    return await history_json(ctx, thread_id, ThreadHistory(limit=limit, before=before))


def stamp_graph(ctx: ApiContext, thread_id: str, graph_id: str) -> None:
    """Record which graph runs on a chat thread, as LangGraph's server does (Agent Chat UI
    lists threads by it)."""
    if kind_of(thread_id) == "chat" and graph_id in GRAPHS:
        ctx.desk.store.update_thread(
            thread_id, {"graph_id": graph_id, "assistant_id": assistant_id(graph_id)}
        )

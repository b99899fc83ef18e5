"""Runs as LangGraph's server serves them: streamed, waited for or in the background, on a
thread or without one; listed, joined, cancelled and deleted.

Streams are server-sent events in LangGraph's names, numbered; the first is ``metadata``
with the run id. Every response names the run in ``Content-Location``, and a stream's
``Location`` is where to rejoin it, so the SDK picks a dropped stream up with
``Last-Event-ID`` (``-1``: from the start). Comments keep idle streams alive.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tradecast.api.auth import Principal
from tradecast.api.deps import ApiContext, get_context, operator, operator_control
from tradecast.api.errors import CONTROL_RESPONSES, ERROR_RESPONSES, ApiError
from tradecast.api.protocol.assistants import assistant_id, graph_of
from tradecast.api.protocol.schemas import RunCreate
from tradecast.api.protocol.threads import drop_chat_thread, stamp_graph, thread_json
from tradecast.api.protocol.work import DESK_THREAD, chat_job, desk_job, kind_of
from tradecast.api.runs import RunJob, RunRecord, RunStatus
from tradecast.api.schemas import THREAD_ID_PATTERN
from tradecast.api.sse import SSE_RESPONSES, event_stream, frame

router = APIRouter(tags=["langgraph"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: ERROR_RESPONSES[401] | {"description": "no such thread or run"}
}
WAIT_KEEPALIVE_S = 5.0


# --- creating runs --------------------------------------------------------------------------


async def start_run(
    ctx: ApiContext, who: Principal, thread_id: str | None, body: RunCreate
) -> RunRecord:
    """Check a run's request and start it (on a new chat thread when ``thread_id`` is None).

    Raises:
        ApiError: an unknown assistant or thread, a run the thread cannot take, or input
            that does not fit the assistant.
    """
    graph_id = graph_of(body.assistant_id)
    if thread_id is not None and not re.fullmatch(THREAD_ID_PATTERN, thread_id):
        raise ApiError(422, "validation_error", "thread_id: letters, digits and _:.- (at most 100)")
    temporary = thread_id is None and graph_id == "chat"
    if thread_id is None:
        thread_id = DESK_THREAD if graph_id == "desk" else _new_chat_thread(ctx)
    try:
        job = await _job(ctx, who, thread_id, graph_id, body)
    except ApiError:
        if temporary:
            await drop_chat_thread(ctx, thread_id)
        raise
    if temporary and body.on_completion == "delete":
        job = _then_dropped(ctx, job, thread_id)
    stamp_graph(ctx, thread_id, graph_id)
    return ctx.runs.start(
        thread_id,
        assistant_id(graph_id),
        job,
        metadata=body.metadata,
        strategy=body.multitask_strategy,
        kwargs={"graph_id": graph_id, "stream_mode": body.modes()},
    )


def _then_dropped(ctx: ApiContext, job: RunJob, thread_id: str) -> RunJob:
    """``job``, then its thread deleted (a run without a thread keeps none, unless it asks
    with ``on_completion: "keep"``)."""

    async def execute(run: RunRecord) -> RunStatus:
        try:
            return await job.execute(run)
        finally:
            await drop_chat_thread(ctx, thread_id)

    return RunJob(execute, job.rollback, job.final)


def _new_chat_thread(ctx: ApiContext) -> str:
    thread_id = str(uuid.uuid4())
    ctx.desk.store.create_thread(thread_id, {"kind": "chat", "stateless": True})
    return thread_id


async def _job(
    ctx: ApiContext, who: Principal, thread_id: str, graph_id: str, body: RunCreate
) -> RunJob:
    kind = kind_of(thread_id)
    if graph_id == "desk":
        if kind == "chat":
            raise ApiError(422, "validation_error", "desk runs go on the 'desk' or a tick thread")
        return await desk_job(ctx, who, thread_id, body)
    if kind != "chat":
        raise ApiError(422, "validation_error", "chat runs need a chat thread, not the desk's")
    if ctx.desk.store.thread(thread_id) is None:
        if body.if_not_exists != "create":
            raise ApiError(
                404,
                "not_found",
                f"no thread {thread_id!r}; create it first or pass if_not_exists='create'",
            )
        ctx.desk.store.create_thread(thread_id, {"kind": "chat"})
    return await chat_job(ctx, who, thread_id, body)


def _located(run: RunRecord, stateless: bool = False, rejoin: str = "stream") -> dict[str, str]:
    """``Content-Location`` (the run) and ``Location`` (where to pick it up again: its
    ``stream``, or ``join`` for an answer that is the final values), as paths under the
    protocol's prefix: LangGraph's SDKs join them to the URL they were given (the browser
    SDK by appending, so an absolute URL would break it)."""
    run_path = f"/threads/{run.thread_id}/runs/{run.run_id}"
    return {
        "Content-Location": f"/runs/{run.run_id}" if stateless else run_path,
        "Location": f"{run_path}/{rejoin}",
    }


def _stream(ctx: ApiContext, run: RunRecord, after: int, cancel_on_disconnect: bool) -> Response:
    async def frames() -> AsyncIterator[bytes]:
        try:
            async for seq, event, data in run.follow(after):
                yield frame(event, data, str(seq))
        finally:
            if cancel_on_disconnect and not run.done:
                ctx.runs.cancel(run, "interrupt")

    return event_stream(frames(), ctx.settings.api, headers=_located(run))


async def _wait_response(run: RunRecord, headers: dict[str, str]) -> StreamingResponse:
    """The run's final values once it ends (``{"__error__": ...}`` if it failed), with a
    newline every few seconds meanwhile so proxies keep the connection."""

    async def body() -> AsyncIterator[bytes]:
        waiting = asyncio.ensure_future(run.wait())
        try:
            while not waiting.done():
                done, _ = await asyncio.wait({waiting}, timeout=WAIT_KEEPALIVE_S)
                if not done:
                    yield b"\n"
        finally:
            waiting.cancel()
        yield json.dumps(final_values(run), default=str).encode()

    return StreamingResponse(body(), media_type="application/json", headers=headers)


def final_values(run: RunRecord) -> Any:
    """What ``wait`` and ``join`` answer: the last values, or the error."""
    error = run.error()
    if error is not None:
        return {"__error__": error}
    return run.values()


@router.post(
    "/threads/{thread_id}/runs/stream",
    response_class=Response,
    responses={**SSE_RESPONSES, **CONTROL_RESPONSES, **NOT_FOUND},
)
async def stream_run(
    thread_id: str,
    body: RunCreate,
    who: Principal = Depends(operator_control),
    ctx: ApiContext = Depends(get_context),
) -> Response:
    """Create a run on a thread and stream it. Operator."""
    run = await start_run(ctx, who, thread_id, body)
    return _stream(ctx, run, 0, body.on_disconnect == "cancel")


@router.post(
    "/runs/stream",
    response_class=Response,
    responses={**SSE_RESPONSES, **CONTROL_RESPONSES},
)
async def stream_stateless_run(
    body: RunCreate,
    who: Principal = Depends(operator_control),
    ctx: ApiContext = Depends(get_context),
) -> Response:
    """A run without a thread: ``desk`` runs on the desk thread, ``chat`` on a new one.
    Operator."""
    run = await start_run(ctx, who, None, body)
    return _stream(ctx, run, 0, body.on_disconnect == "cancel")


@router.post("/threads/{thread_id}/runs/wait", responses={**CONTROL_RESPONSES, **NOT_FOUND})
async def wait_run(
    thread_id: str,
    body: RunCreate,
    who: Principal = Depends(operator_control),
    ctx: ApiContext = Depends(get_context),
) -> StreamingResponse:
    """Create a run and answer with its final values. Operator."""
    run = await start_run(ctx, who, thread_id, body)
    return await _wait_response(run, _located(run, rejoin="join"))


@router.post("/runs/wait", responses=CONTROL_RESPONSES)
async def wait_stateless_run(
    body: RunCreate,
    who: Principal = Depends(operator_control),
    ctx: ApiContext = Depends(get_context),
) -> StreamingResponse:
    """A run without a thread, answered with its final values. Operator."""
    run = await start_run(ctx, who, None, body)
    return await _wait_response(run, _located(run, stateless=True, rejoin="join"))


@router.post("/threads/{thread_id}/runs", responses={**CONTROL_RESPONSES, **NOT_FOUND})
async def create_run(
    thread_id: str,
    body: RunCreate,
    who: Principal = Depends(operator_control),
    ctx: ApiContext = Depends(get_context),
) -> JSONResponse:
    """Create a run in the background; answer with the run. Operator."""
    run = await start_run(ctx, who, thread_id, body)
    return JSONResponse(run.as_json(), headers=_located(run))


@router.post("/runs", responses=CONTROL_RESPONSES)
async def create_stateless_run(
    body: RunCreate,
    who: Principal = Depends(operator_control),
    ctx: ApiContext = Depends(get_context),
) -> JSONResponse:
    """A run without a thread, in the background. Operator."""
    run = await start_run(ctx, who, None, body)
    return JSONResponse(run.as_json(), headers=_located(run, stateless=True))


# --- following runs -----------------------------------------------------------------------


def find_run(ctx: ApiContext, thread_id: str, run_id: str) -> RunRecord:
    """A run of a thread.

    Raises:
        ApiError: 404, no such run on that thread (or it was forgotten).
    """
    run = ctx.runs.get(run_id)
    if run is None or run.thread_id != thread_id:
        raise ApiError(
            404,
            "not_found",
            f"no run {run_id[:64]!r} on thread {thread_id[:100]!r} (runs are kept in memory "
            "for the latest few hundred)",
        )
    return run


@router.get("/threads/{thread_id}/runs", responses={**ERROR_RESPONSES, **NOT_FOUND})
async def list_runs(
    thread_id: str,
    limit: int = Query(10, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
    status: RunStatus | None = Query(None),
    _: Principal = Depends(operator),
    ctx: ApiContext = Depends(get_context),
) -> list[dict[str, Any]]:
    """The thread's recent runs of this process, newest first. Operator."""
    await thread_json(ctx, thread_id)
    runs = [r for r in ctx.runs.of_thread(thread_id) if status is None or r.status == status]
    return [run.as_json() for run in runs[offset : offset + limit]]


@router.get("/threads/{thread_id}/runs/{run_id}", responses={**ERROR_RESPONSES, **NOT_FOUND})
async def get_run(
    thread_id: str,
    run_id: str,
    _: Principal = Depends(operator),
    ctx: ApiContext = Depends(get_context),
) -> dict[str, Any]:
    """One run: ``pending``, ``running``, ``success``, ``error`` or ``interrupted``.
    Operator."""
    return find_run(ctx, thread_id, run_id).as_json()


@router.delete(
    "/threads/{thread_id}/runs/{run_id}",
    status_code=204,
    response_class=Response,
    responses={**CONTROL_RESPONSES, **NOT_FOUND},
)
async def delete_run(
    thread_id: str,
    run_id: str,
    _: Principal = Depends(operator_control),
    ctx: ApiContext = Depends(get_context),
) -> Response:
    """Forget an ended run (409 while it is in flight). Operator."""
    ctx.runs.delete(find_run(ctx, thread_id, run_id))
    return Response(status_code=204)


@router.get(
    "/threads/{thread_id}/runs/{run_id}/join",
    responses={**ERROR_RESPONSES, **NOT_FOUND},
)
async def join_run(
    thread_id: str,
    run_id: str,
    _: Principal = Depends(operator),
    ctx: ApiContext = Depends(get_context),
) -> StreamingResponse:
    """Wait for a run to end; answer with its final values. Operator."""
    run = find_run(ctx, thread_id, run_id)
    return await _wait_response(run, {})


@router.get(
    "/threads/{thread_id}/runs/{run_id}/stream",
    response_class=Response,
    responses={**SSE_RESPONSES, **ERROR_RESPONSES, **NOT_FOUND},
)
async def join_run_stream(
    thread_id: str,
    run_id: str,
    cancel_on_disconnect: bool = Query(False),
    stream_mode: str | None = Query(None, max_length=200, description="ignored: as created"),
    last_event_id: str | None = Header(None, alias="Last-Event-ID", max_length=20),
    _: Principal = Depends(operator),
    ctx: ApiContext = Depends(get_context),
) -> Response:
    """Rejoin a run's stream; with ``Last-Event-ID``, only what came after it (``-1``: from
    the start). Operator."""
    run = find_run(ctx, thread_id, run_id)
    return _stream(ctx, run, _after(last_event_id), cancel_on_disconnect)


def _after(last_event_id: str | None) -> int:
    if not last_event_id or last_event_id == "-1":
        return 0
    if not re.fullmatch(r"[0-9]{1,9}", last_event_id):
        raise ApiError(
            422, "validation_error", "Last-Event-ID: a run's event ids are whole numbers (or -1)"
        )
    return int(last_event_id)


@router.post(
    "/threads/{thread_id}/runs/{run_id}/cancel",
    response_class=Response,
    responses={**CONTROL_RESPONSES, **NOT_FOUND},
)
async def cancel_run(
    thread_id: str,
    run_id: str,
    wait: bool = Query(False, description="answer once the run has ended (204)"),
    action: Literal["interrupt", "rollback"] = Query("interrupt"),
    _: Principal = Depends(operator_control),
    ctx: ApiContext = Depends(get_context),
) -> Response:
    """Cancel a run: ``interrupt`` keeps what it wrote, ``rollback`` undoes it and forgets
    the run (chat runs; a desk tick cannot be undone). 202, or 204 with ``wait``.
    Operator."""
    run = find_run(ctx, thread_id, run_id)
    ctx.runs.cancel(run, action)
    if wait:
        await run.wait()
        return Response(status_code=204)
    return Response(status_code=202)

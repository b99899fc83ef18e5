"""Chat, and LangGraph-style threads and runs, so LangGraph SDK clients can follow the desk.

Threads:

- ``desk``: the desk itself. A run of assistant ``desk`` on it is one tick; with
  ``command: {"resume": {"approved": true}}`` it answers the pending approval. Its values are
  the latest tick report; its interrupts the orders waiting for a human.
- ``tick:<decision id>``: one tick's checkpointed state (read it; resume it if it waits).
- any other id: a chat conversation (``POST /v1/threads`` creates one).

Run streams use LangGraph's event names (``metadata``, ``values``, ``custom``, ``error``,
``end``), number their events, and send ``Location`` so the SDK can rejoin a dropped stream
with ``Last-Event-ID``. ``POST /v1/chat`` streams the same run with the desk's own event names
(``token``, ``sentence``, ``blocked``, ``reply``, ``end``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response

from tradecast.api.auth import Principal
from tradecast.api.deps import ApiContext, get_context, operator, operator_control
from tradecast.api.errors import CONTROL_RESPONSES, ERROR_RESPONSES, ApiError
from tradecast.api.runs import RunRecord, RunStatus
from tradecast.api.schemas import ChatBody, RunCreate, RunView, ThreadCreate, ThreadView
from tradecast.api.sse import SSE_RESPONSES, event_stream, frame
from tradecast.domain import StreamEvent
from tradecast.graphs.chat import ChatController

router = APIRouter(prefix="/v1")
DESK_THREAD = "desk"
TICK_PREFIX = "tick:"
STREAM_MODES = ("values", "custom")
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: ERROR_RESPONSES[401] | {"description": "no such thread or run"}
}
CHAT_NAMES = {"values": "reply", "error": "error", "end": "end", "metadata": "metadata"}


# --- chat -------------------------------------------------------------------------------


@router.post(
    "/chat",
    tags=["chat"],
    response_class=Response,
    responses={**SSE_RESPONSES, **CONTROL_RESPONSES},
)
async def chat(
    body: ChatBody,
    request: Request,
    who: Principal = Depends(operator_control),
    ctx: ApiContext = Depends(get_context),
) -> Response:
    """Send the desk a message: a command (``pause``, ``resume``, ``tick``, ``approve ID``,
    ``max position 5%``, ``kill switch on``...) is applied if your role allows it; anything
    else is a question the persona answers. The answer streams as SSE: ``token`` and
    ``sentence`` events while the persona speaks, then ``reply`` (what was done and why),
    then ``end``. Operator."""
    ctx.desk.store.create_thread(body.thread_id, {"kind": "chat"})
    run = ctx.runs.start(body.thread_id, "chat", _chat_work(ctx, who, body.message))
    return _run_response(request, run, _chat_frames(run))


def _chat_work(ctx: ApiContext, who: Principal, message: str) -> Any:
    async def work(run: RunRecord) -> RunStatus:
        def emit(event: str, data: dict[str, Any]) -> None:
            if event != "token" or data.get("text"):
                run.append("custom", {"event": event, "data": data})

        controller = ChatController(
            ctx.desk, ctx.chat_model, ctx.card, max_tokens=ctx.settings.desk.persona_max_tokens
        )
        reply = await controller.handle(
            message, thread_id=run.thread_id, role=who.role, actor=who.name, emit=emit
        )
        ctx.metrics.chat_messages.labels(reply.command, str(reply.applied).lower()).inc()
        run.append("values", reply.model_dump(mode="json"))
        return "success"

    return work


async def _chat_frames(run: RunRecord) -> AsyncIterator[bytes]:
    async for seq, event, data in run.follow():
        if event == "custom":
            yield frame(data["event"], data["data"], str(seq))
        else:
            yield frame(CHAT_NAMES.get(event, event), data, str(seq))


# --- threads ----------------------------------------------------------------------------


@router.post("/threads", tags=["threads"], response_model=ThreadView, responses=CONTROL_RESPONSES)
async def create_thread(
    body: ThreadCreate,
    _: Principal = Depends(operator_control),
    ctx: ApiContext = Depends(get_context),
) -> dict[str, Any]:
    """Create a chat thread (LangGraph ``threads.create``). Operator."""
    thread_id = body.thread_id or str(uuid.uuid4())
    if thread_id == DESK_THREAD or thread_id.startswith(TICK_PREFIX):
        raise ApiError(409, "conflict", f"thread id {thread_id!r} is reserved for the desk")
    created = ctx.desk.store.create_thread(thread_id, body.metadata)
    if created is None:
        if body.if_exists != "do_nothing":
            raise ApiError(409, "conflict", f"thread {thread_id!r} exists already")
        return await _thread_json(ctx, thread_id)
    return await _thread_json(ctx, thread_id)


@router.get(
    "/threads/{thread_id}",
    tags=["threads"],
    response_model=ThreadView,
    responses={**ERROR_RESPONSES, **NOT_FOUND},
)
async def get_thread(
    thread_id: str, _: Principal = Depends(operator), ctx: ApiContext = Depends(get_context)
) -> dict[str, Any]:
    """A thread (LangGraph ``threads.get``): status ``idle``, ``busy`` or ``interrupted``,
    its values and interrupts. Operator."""
    return await _thread_json(ctx, thread_id)


@router.get(
    "/threads/{thread_id}/runs",
    tags=["threads"],
    response_model=list[RunView],
    responses={**ERROR_RESPONSES, **NOT_FOUND},
)
async def list_runs(
    thread_id: str, _: Principal = Depends(operator), ctx: ApiContext = Depends(get_context)
) -> list[dict[str, Any]]:
    """The thread's recent runs of this process, newest first. Operator."""
    await _thread_json(ctx, thread_id)
    return [run.as_json() for run in ctx.runs.of_thread(thread_id)]


async def _thread_json(ctx: ApiContext, thread_id: str) -> dict[str, Any]:
    runs = ctx.runs.of_thread(thread_id)
    busy = any(not run.done for run in runs)
    if thread_id == DESK_THREAD:
        latest, _ = ctx.desk.store.decisions(limit=1)
        interrupts = {}
        for decision_id in sorted(ctx.desk.status()["pending_approvals"]):
            tick = ctx.desk.store.tick(decision_id)
            state = await ctx.desk.thread_state(tick.thread_id) if tick else None
            interrupts[decision_id] = state["interrupts"] if state else []
        status = (
            "busy"
            if busy or ctx.desk.status()["ticking"]
            else ("interrupted" if interrupts else "idle")
        )
        return _thread(
            thread_id, None, {"kind": "desk"}, status, latest[0] if latest else {}, interrupts
        )
    if thread_id.startswith(TICK_PREFIX):
        state = await ctx.desk.thread_state(thread_id)
        if state is None:
            raise ApiError(404, "not_found", f"no thread {thread_id!r}")
        status = "busy" if busy else ("interrupted" if state["interrupts"] else "idle")
        return _thread(
            thread_id,
            state["created_at"],
            {"kind": "tick"},
            status,
            state["report"],
            {thread_id: state["interrupts"]} if state["interrupts"] else {},
        )
    stored = ctx.desk.store.thread(thread_id)
    if stored is None:
        raise ApiError(404, "not_found", f"no thread {thread_id!r}")
    values: Any = next(
        (item[2] for run in runs for item in reversed(run.items) if item[1] == "values"), {}
    )
    return _thread(
        thread_id, stored["created_at"], stored["metadata"], "busy" if busy else "idle", values, {}
    )


def _thread(
    thread_id: str,
    created_at: str | None,
    metadata: dict[str, Any],
    status: str,
    values: Any,
    interrupts: dict[str, Any],
) -> dict[str, Any]:
    return {
        "thread_id": thread_id,
        "created_at": created_at,
        "updated_at": created_at,
        "metadata": metadata,
        "status": status,
        "values": values,
        "interrupts": interrupts,
    }


# --- runs -------------------------------------------------------------------------------


@router.post(
    "/threads/{thread_id}/runs/stream",
    tags=["threads"],
    response_class=Response,
    responses={**SSE_RESPONSES, **CONTROL_RESPONSES, **NOT_FOUND},
)
async def stream_run(
    thread_id: str,
    body: RunCreate,
    request: Request,
    who: Principal = Depends(operator_control),
    ctx: ApiContext = Depends(get_context),
) -> Response:
    """Create a run on a thread and stream it (LangGraph ``runs.stream``). Operator."""
    return await _start_run(request, ctx, who, thread_id, body)


@router.post(
    "/runs/stream",
    tags=["threads"],
    response_class=Response,
    responses={**SSE_RESPONSES, **CONTROL_RESPONSES},
)
async def stream_stateless_run(
    body: RunCreate,
    request: Request,
    who: Principal = Depends(operator_control),
    ctx: ApiContext = Depends(get_context),
) -> Response:
    """A run without a thread: ``desk`` runs on the desk thread, ``chat`` on a new one.
    Operator."""
    if body.assistant_id == "desk":
        return await _start_run(request, ctx, who, DESK_THREAD, body)
    thread_id = str(uuid.uuid4())
    ctx.desk.store.create_thread(thread_id, {"kind": "chat", "stateless": True})
    return await _start_run(request, ctx, who, thread_id, body)


@router.get(
    "/threads/{thread_id}/runs/{run_id}",
    tags=["threads"],
    response_model=RunView,
    responses={**ERROR_RESPONSES, **NOT_FOUND},
)
async def get_run(
    thread_id: str,
    run_id: str,
    _: Principal = Depends(operator),
    ctx: ApiContext = Depends(get_context),
) -> dict[str, Any]:
    """One run: its status (``pending``, ``running``, ``success``, ``error``,
    ``interrupted``). Operator."""
    return _find_run(ctx, thread_id, run_id).as_json()


@router.get(
    "/threads/{thread_id}/runs/{run_id}/stream",
    tags=["threads"],
    response_class=Response,
    name="join_run_stream",
    responses={**SSE_RESPONSES, **ERROR_RESPONSES, **NOT_FOUND},
)
async def join_run_stream(
    thread_id: str,
    run_id: str,
    request: Request,
    last_event_id: str | None = Header(None, alias="Last-Event-ID", max_length=20),
    _: Principal = Depends(operator),
    ctx: ApiContext = Depends(get_context),
) -> Response:
    """Rejoin a run's stream (LangGraph ``runs.join_stream``); with ``Last-Event-ID``, only
    what came after it. Operator."""
    run = _find_run(ctx, thread_id, run_id)
    after = 0
    if last_event_id:
        if not last_event_id.isdigit():
            raise ApiError(
                422, "validation_error", "Last-Event-ID: a run's event ids are whole numbers"
            )
        after = int(last_event_id)
    return _run_response(request, run, _run_frames(run, after))


def _find_run(ctx: ApiContext, thread_id: str, run_id: str) -> RunRecord:
    run = ctx.runs.get(run_id)
    if run is None or run.thread_id != thread_id:
        raise ApiError(
            404,
            "not_found",
            f"no run {run_id!r} on thread {thread_id!r} (runs are "
            "kept in memory for the latest few hundred)",
        )
    return run


async def _start_run(
    request: Request, ctx: ApiContext, who: Principal, thread_id: str, body: RunCreate
) -> Response:
    modes = body.modes()
    unknown = [m for m in modes if m not in STREAM_MODES]
    if unknown:
        raise ApiError(
            422,
            "validation_error",
            f"stream_mode {', '.join(unknown)} is not "
            f"available; available: {', '.join(STREAM_MODES)}",
        )
    if body.assistant_id == "chat":
        work = _chat_run(ctx, who, thread_id, body, modes)
    else:
        work = await _desk_run(ctx, who, thread_id, body, modes)
    run = ctx.runs.start(thread_id, body.assistant_id, work, body.metadata)
    return _run_response(request, run, _run_frames(run, 0))


def _chat_run(
    ctx: ApiContext, who: Principal, thread_id: str, body: RunCreate, modes: list[str]
) -> Any:
    if thread_id == DESK_THREAD or thread_id.startswith(TICK_PREFIX):
        raise ApiError(422, "validation_error", "chat runs need a chat thread, not the desk's")
    if ctx.desk.store.thread(thread_id) is None:
        if body.if_not_exists != "create":
            raise ApiError(
                404,
                "not_found",
                f"no thread {thread_id!r}; create it first or pass if_not_exists='create'",
            )
        ctx.desk.store.create_thread(thread_id, {"kind": "chat"})
    message = (body.input or {}).get("message")
    if not isinstance(message, str) or not 1 <= len(message) <= 2000:
        raise ApiError(
            422,
            "validation_error",
            "input.message: a chat run needs a message of 1 to 2000 characters",
        )
    chat_work = _chat_work(ctx, who, message)

    async def work(run: RunRecord) -> RunStatus:
        status = await chat_work(_ModeFilter(run, modes))
        return status

    return work


async def _desk_run(
    ctx: ApiContext, who: Principal, thread_id: str, body: RunCreate, modes: list[str]
) -> Any:
    resume = body.command.resume if body.command else None
    if resume is None:
        if thread_id != DESK_THREAD:
            raise ApiError(
                422,
                "validation_error",
                "a desk tick runs on the 'desk' thread; to answer an approval send command.resume",
            )
        if ctx.desk.finished:
            raise ApiError(409, "conflict", "the replay has ended; nothing is left to tick")
    approved, decision_id = _approval(ctx, thread_id, resume) if resume is not None else (False, "")

    async def work(run: RunRecord) -> RunStatus:
        def observe(event: StreamEvent) -> None:
            if "custom" in modes:
                run.append("custom", event.model_dump(mode="json"))

        if resume is None:
            result = await ctx.desk.force_tick(who.name, observer=observe)
        else:
            result = await ctx.desk.decide_approval(
                who.name, decision_id, approved, observer=observe
            )
        values: dict[str, Any] = result.model_dump(mode="json")
        status: RunStatus = "success"
        if result.status == "awaiting_approval":
            state = await ctx.desk.thread_state(result.thread_id)
            values["__interrupt__"] = state["interrupts"] if state else []
            status = "interrupted"
        if "values" in modes:
            run.append("values", values)
        return status

    return work


def _approval(ctx: ApiContext, thread_id: str, resume: Any) -> tuple[bool, str]:
    answer = resume if isinstance(resume, dict) else {"approved": resume}
    approved = answer.get("approved")
    if not isinstance(approved, bool):
        raise ApiError(422, "validation_error", "command.resume.approved must be true or false")
    pending = ctx.desk.status()["pending_approvals"]
    decision_id = answer.get("decision_id")
    if thread_id.startswith(TICK_PREFIX):
        decision_id = decision_id or thread_id.removeprefix(TICK_PREFIX)
    elif thread_id != DESK_THREAD:
        raise ApiError(
            422, "validation_error", "approvals resume the 'desk' thread or a tick thread"
        )
    if decision_id is None:
        if len(pending) != 1:
            raise ApiError(
                422,
                "validation_error",
                "command.resume.decision_id is needed: "
                f"{len(pending)} orders are waiting ({', '.join(pending) or 'none'})",
            )
        decision_id = pending[0]
    if decision_id not in pending:
        raise ApiError(404, "not_found", f"no order waits for approval under {decision_id!r}")
    return approved, str(decision_id)


class _ModeFilter:
    """A run as seen by work that streams every mode: keeps only the modes asked for."""

    def __init__(self, run: RunRecord, modes: list[str]) -> None:
        self._run = run
        self._modes = modes
        self.thread_id = run.thread_id

    def append(self, event: str, data: Any) -> None:
        if event not in STREAM_MODES or event in self._modes:
            self._run.append(event, data)


async def _run_frames(run: RunRecord, after: int) -> AsyncIterator[bytes]:
    async for seq, event, data in run.follow(after):
        yield frame(event, data, str(seq))


def _run_response(request: Request, run: RunRecord, frames: AsyncIterator[bytes]) -> Response:
    ctx: ApiContext = request.app.state.ctx
    join = request.url_for("join_run_stream", thread_id=run.thread_id, run_id=run.run_id)
    headers = {
        "Location": str(join),
        "Content-Location": f"/v1/threads/{run.thread_id}/runs/{run.run_id}",
    }
    return event_stream(frames, ctx.settings.api, headers=headers)

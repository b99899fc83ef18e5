"""Operator chat as server-sent events (``POST /v1/chat``): the same chat run as the
LangGraph protocol's ``chat`` assistant (:mod:`tradecast.api.protocol`), streamed with the
desk's own event names (``metadata``, ``token``, ``sentence``, ``blocked``, ``reply``,
``end``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from tradecast.api.auth import Principal
from tradecast.api.deps import ApiContext, get_context, operator_control
from tradecast.api.errors import CONTROL_RESPONSES, ApiError
from tradecast.api.protocol.work import kind_of, speech_events
from tradecast.api.runs import RunJob, RunRecord, RunStatus
from tradecast.api.schemas import ChatBody
from tradecast.api.sse import SSE_RESPONSES, event_stream, frame

router = APIRouter(prefix="/v1")
CHAT_NAMES = {"values": "reply", "error": "error", "end": "end", "metadata": "metadata"}


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
    if kind_of(body.thread_id) != "chat":
        raise ApiError(
            422, "validation_error", f"thread_id {body.thread_id!r} is the desk's, not a chat's"
        )
    ctx.desk.store.create_thread(body.thread_id, {"kind": "chat"})
    run = ctx.runs.start(body.thread_id, "chat", _chat_job(ctx, who, body.message))
    headers = {"Content-Location": f"/v1/threads/{run.thread_id}/runs/{run.run_id}"}
    return event_stream(_chat_frames(run), ctx.settings.api, headers=headers)


def _chat_job(ctx: ApiContext, who: Principal, message: str) -> RunJob:
    async def execute(run: RunRecord) -> RunStatus:
        reply = await ctx.chat.handle(
            message,
            thread_id=run.thread_id,
            role=who.role,
            actor=who.name,
            emit=speech_events(run, ["custom"]),
        )
        ctx.metrics.chat_messages.labels(reply.command, str(reply.applied).lower()).inc()
        run.append("values", reply.model_dump(mode="json"))
        return "success"

    return RunJob(execute)


async def _chat_frames(run: RunRecord) -> AsyncIterator[bytes]:
    async for seq, event, data in run.follow():
        if event == "custom":
            yield frame(data["event"], data["data"], str(seq))
        else:
            yield frame(CHAT_NAMES.get(event, event), data, str(seq))

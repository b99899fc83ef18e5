"""The live streams (SSE) and the snapshot a client resyncs from."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response
from starlette.background import BackgroundTask

from tradecast.api.auth import Principal
from tradecast.api.deps import ApiContext, get_context, viewer
from tradecast.api.errors import ERROR_RESPONSES
from tradecast.api.schemas import ChannelEvents, Snapshot, portfolio_json
from tradecast.api.sse import SSE_RESPONSES, channel_frames, event_stream, last_event_id
from tradecast.domain import CHANNELS, Channel

router = APIRouter(prefix="/v1", tags=["streams"])
SNAPSHOT_SENTENCES = 3


@router.get(
    "/streams/{channel}", responses={**SSE_RESPONSES, **ERROR_RESPONSES}, response_class=Response
)
async def stream(
    channel: Channel,
    request: Request,
    last_event_id_header: str | None = Header(None, alias="Last-Event-ID", max_length=64),
    last_event_id_query: str | None = Query(None, alias="last_event_id", max_length=64),
    _: Principal = Depends(viewer),
    ctx: ApiContext = Depends(get_context),
) -> Response:
    """Server-sent events of one channel: ``desk`` (decision, order, fill, pnl,
    risk_rejection, approval_pending, recorded, status), ``persona`` (token, sentence, emotion,
    blocked) or ``market`` (tick).

    Every event has an ``id``; reconnect with ``Last-Event-ID`` (or ``?last_event_id=``) to
    get exactly the events missed. When they can no longer be accounted for, the first event
    is ``resync``: reload ``GET /v1/snapshot``. A client that stops reading is cut off (it
    reconnects and resumes); ``:`` comments keep idle connections alive.
    """
    after = last_event_id(last_event_id_header, last_event_id_query)
    subscription = ctx.bus.subscribe(
        channel, after=after, queue_size=ctx.settings.api.sse_queue_size
    )
    frames = channel_frames(subscription, channel, ctx.frames, ctx.metrics)
    return event_stream(frames, ctx.settings.api, on_close=BackgroundTask(subscription.aclose))


@router.get("/streams/{channel}/latest", response_model=ChannelEvents, responses=ERROR_RESPONSES)
async def latest(
    channel: Channel,
    limit: int = Query(50, ge=1, le=1000),
    _: Principal = Depends(viewer),
    ctx: ApiContext = Depends(get_context),
) -> dict[str, Any]:
    """The last ``limit`` events of a channel (oldest first) and the id to stream on from."""
    events = await ctx.bus.latest(channel, limit)
    return {
        "items": [e.model_dump(mode="json") for e in events],
        "last_id": await ctx.bus.last_id(channel),
    }


@router.get("/snapshot", response_model=Snapshot, responses=ERROR_RESPONSES)
async def snapshot(
    _: Principal = Depends(viewer), ctx: ApiContext = Depends(get_context)
) -> dict[str, Any]:
    """Everything a screen needs to redraw: desk status, portfolio, the latest decision, the
    persona's last sentences, and each channel's last event id to stream on from."""
    last_ids = {name: await ctx.bus.last_id(name) for name in CHANNELS}
    decisions, _cursor = ctx.desk.store.decisions(limit=1)
    persona = await ctx.bus.latest("persona", 500)
    sentences = [e.data for e in persona if e.event == "sentence"][-SNAPSHOT_SENTENCES:]
    return {
        "status": ctx.desk.status(),
        "portfolio": portfolio_json(ctx.desk.current_broker().portfolio()),
        "decision": decisions[0] if decisions else None,
        "persona": {
            "sentences": sentences,
            "emotion": sentences[-1].get("emotion") if sentences else None,
        },
        "last_ids": last_ids,
    }

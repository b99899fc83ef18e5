"""Server-sent events: bus channels and runs as ``text/event-stream`` (sse-starlette).

Every event carries an ``id:`` (the bus id on channels, the item number on runs) so a client
that reconnects with ``Last-Event-ID`` (or ``?last_event_id=`` where it cannot set headers)
gets what it missed. The first frame tells the client to retry after 2 s; comments keep idle
connections alive. An event is encoded once however many clients receive it.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from tradecast.api.errors import ApiError
from tradecast.bus import Resync, SubscriberDropped, Subscription, parse_event_id
from tradecast.desk.metrics import Metrics
from tradecast.domain import Channel, StreamEvent
from tradecast.logs import get_logger
from tradecast.settings import APIConfig

log = get_logger(__name__)
SEP = "\n"
RETRY_MS = 2000
HELLO = ServerSentEvent(comment="connected", retry=RETRY_MS, sep=SEP).encode()
SSE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "an event stream", "content": {"text/event-stream": {}}},
}


def frame(event: str, data: Any, event_id: str | None) -> bytes:
    """One SSE frame with JSON ``data``."""
    payload = (
        data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), default=str)
    )
    return ServerSentEvent(payload, event=event, id=event_id, sep=SEP).encode()


class FrameCache:
    """Encodes each bus event once (the last ``size`` events are kept encoded)."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._frames: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    def event(self, event: StreamEvent) -> bytes:
        """The frame of a stored bus event: its name, its id, the whole event as data."""
        key = (event.channel, event.id or "")
        cached = self._frames.get(key)
        if cached is None:
            cached = frame(event.event, event.model_dump_json(), event.id)
            self._frames[key] = cached
            if len(self._frames) > self.size:
                self._frames.popitem(last=False)
        return cached


def resync_frame(resync: Resync) -> bytes:
    """The ``resync`` event: the client must reload a snapshot (``GET /v1/snapshot``)."""
    return frame(
        "resync",
        {
            "channel": resync.channel,
            "reason": resync.reason,
            "requested": resync.requested,
            "oldest_id": resync.oldest_id,
            "latest_id": resync.latest_id,
            "snapshot": "/v1/snapshot",
        },
        resync.resume_id,
    )


def last_event_id(header: str | None, query: str | None) -> str | None:
    """The id to resume after: the ``Last-Event-ID`` header, else ``?last_event_id=``."""
    value = header if header not in (None, "") else query
    if value in (None, ""):
        return None
    try:
        parse_event_id(value)
    except ValueError as exc:
        raise ApiError(422, "validation_error", f"Last-Event-ID: {exc}") from None
    return value


async def channel_frames(
    subscription: Subscription,
    channel: Channel,
    cache: FrameCache,
    metrics: Metrics | None,
) -> AsyncIterator[bytes]:
    """The frames of one subscriber until it disconnects or is dropped for falling behind."""
    if metrics is not None:
        metrics.sse_clients.labels(channel).inc()
    try:
        yield HELLO
        async for item in subscription:
            # a subscriber that is behind sends what has piled up in one write
            items = [item, *subscription.take_ready()]
            yield b"".join(_encode(i, channel, cache, metrics) for i in items)
    except SubscriberDropped:
        log.info("sse.client_dropped", channel=channel)
        if metrics is not None:
            metrics.sse_dropped.labels(channel).inc()
    finally:
        await subscription.aclose()
        if metrics is not None:
            metrics.sse_clients.labels(channel).dec()


def _encode(
    item: StreamEvent | Resync, channel: Channel, cache: FrameCache, metrics: Metrics | None
) -> bytes:
    if isinstance(item, Resync):
        if metrics is not None:
            metrics.sse_resyncs.labels(channel).inc()
        return resync_frame(item)
    return cache.event(item)


def event_stream(
    frames: AsyncIterator[bytes],
    config: APIConfig,
    *,
    headers: dict[str, str] | None = None,
    on_close: BackgroundTask | None = None,
) -> EventSourceResponse:
    """An SSE response with keep-alive pings and a send timeout for clients that stall."""
    return EventSourceResponse(
        frames,
        ping=config.sse_ping_s,
        sep=SEP,
        send_timeout=config.sse_send_timeout_s,
        headers=headers,
        background=on_close,
    )

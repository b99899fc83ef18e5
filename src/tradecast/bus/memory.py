"""The in-process event bus: a ring buffer per channel and a bounded queue per subscriber.

Everything happens on the event loop without awaiting between storing an event and handing it
to the subscribers, and a subscription takes its replay and registers for live events in the
same step, so a resuming subscriber can neither miss nor repeat an event. ``publish`` never
waits: a subscriber whose queue is full is dropped (it reconnects and resumes from the buffer).

Ids are Redis-style ``<ms>-<seq>``. Milliseconds come from the wall clock but never go back,
so ids keep increasing across a restart; ids from before this bus started (or already
evicted from the buffer) cannot be accounted for and get a :class:`Resync`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from tradecast.bus.base import EventId, Resync, format_event_id, parse_event_id
from tradecast.bus.queue import Item, QueueSubscription
from tradecast.domain import CHANNELS, Channel, StreamEvent
from tradecast.logs import get_logger

log = get_logger(__name__)


def wall_clock_ms() -> int:
    """Milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


@dataclass
class _ChannelLog:
    name: Channel
    buffer: deque[tuple[EventId, StreamEvent]]
    last: EventId
    known_after: EventId
    """Every event with an id above this one is still in the buffer."""
    started: EventId
    """Ids up to this one predate the bus."""
    subscribers: set[QueueSubscription] = field(default_factory=set)
    published: int = 0
    dropped: int = 0


class InProcessEventBus:
    """The embedded :class:`~tradecast.bus.base.EventBus`: one process, nothing persisted."""

    def __init__(
        self,
        buffer_size: int = 10_000,
        queue_size: int = 1_000,
        *,
        clock_ms: Callable[[], int] = wall_clock_ms,
        on_drop: Callable[[Channel], None] | None = None,
    ) -> None:
        if buffer_size < 1 or queue_size < 1:
            raise ValueError("buffer_size and queue_size must be at least 1")
        self.buffer_size = buffer_size
        self.queue_size = queue_size
        self._clock_ms = clock_ms
        self._on_drop = on_drop
        started: EventId = (clock_ms(), 0)
        self._channels: dict[Channel, _ChannelLog] = {
            name: _ChannelLog(name, deque(maxlen=buffer_size), started, started, started)
            for name in CHANNELS
        }

    async def publish(self, event: StreamEvent) -> StreamEvent:
        """Assign the next id on the event's channel, buffer it and queue it for everyone."""
        channel = self._channel(event.channel)
        millis = max(self._clock_ms(), channel.last[0])
        event_id = (millis, channel.last[1] + 1) if millis == channel.last[0] else (millis, 0)
        stored = event.model_copy(update={"id": format_event_id(event_id)})
        if len(channel.buffer) == channel.buffer.maxlen:
            channel.known_after = channel.buffer[0][0]
        channel.buffer.append((event_id, stored))
        channel.last = event_id
        channel.published += 1
        for subscriber in tuple(channel.subscribers):
            subscriber.offer(stored)
        return stored

    def subscribe(
        self, channel: Channel, after: str | None = None, *, queue_size: int | None = None
    ) -> QueueSubscription:
        """Replay after ``after`` (see :class:`~tradecast.bus.base.EventBus`), then live."""
        log_ = self._channel(channel)
        replay = self._replay(log_, after)

        def detach(subscriber: QueueSubscription) -> None:
            if subscriber.dropped and subscriber in log_.subscribers:
                log_.dropped += 1
            log_.subscribers.discard(subscriber)

        subscription = QueueSubscription(
            channel, replay, queue_size or self.queue_size, detach, self._on_drop
        )
        log_.subscribers.add(subscription)
        return subscription

    async def latest(self, channel: Channel, limit: int = 1) -> list[StreamEvent]:
        """The last ``limit`` events of ``channel``, oldest first."""
        if limit < 1:
            return []
        buffer = self._channel(channel).buffer
        return [event for _, event in list(buffer)[-limit:]]

    async def last_id(self, channel: Channel) -> str | None:
        """The id of the latest event on ``channel``."""
        buffer = self._channel(channel).buffer
        return buffer[-1][1].id if buffer else None

    def stats(self) -> dict[str, dict[str, int]]:
        """Per channel: events published, buffered, subscribers now, subscribers dropped."""
        return {
            name: {
                "published": c.published,
                "buffered": len(c.buffer),
                "subscribers": len(c.subscribers),
                "dropped": c.dropped,
            }
            for name, c in self._channels.items()
        }

    async def aclose(self) -> None:
        """End every subscription (their iterators stop)."""
        for channel in self._channels.values():
            for subscriber in tuple(channel.subscribers):
                subscriber.close()

    def _channel(self, name: str) -> _ChannelLog:
        channel = self._channels.get(name)  # type: ignore[call-overload]
        if channel is None:
            raise ValueError(f"unknown channel {name!r}; channels: {', '.join(CHANNELS)}")
        return channel

    @staticmethod
    def _replay(channel: _ChannelLog, after: str | None) -> list[Item]:
        if after is None:
            return []
        requested = parse_event_id(after)
        buffer = channel.buffer
        if requested == (0, 0):
            return [event for _, event in buffer]
        oldest = format_event_id(buffer[0][0]) if buffer else None
        latest = format_event_id(channel.last) if buffer else None
        if requested > channel.last:
            reason = (
                "the id is ahead of this stream (the server restarted or it comes from "
                "another server)"
            )
            return [
                Resync(channel.name, after, reason, format_event_id(channel.last), oldest, latest)
            ]
        if requested < channel.known_after:
            reason = (
                "the id is older than the replay buffer"
                if channel.known_after != channel.started
                else "the id is from before the server started"
            )
            resync = Resync(
                channel.name, after, reason, format_event_id(channel.known_after), oldest, latest
            )
            return [resync, *(event for _, event in buffer)]
        missed: list[Item] = []
        for event_id, event in reversed(buffer):
            if event_id <= requested:
                break
            missed.append(event)
        missed.reverse()
        return missed

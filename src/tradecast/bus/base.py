"""The event bus interface: channels of ordered events that clients can resume.

Every event published on a channel gets an id that only ever increases on that channel. Ids
have the shape of Redis Stream ids, ``"<milliseconds>-<sequence>"`` (compare them with
:func:`parse_event_id`, not as strings), so the Redis Streams implementation can hand its own
ids to SSE clients unchanged.

A subscriber passes the last id it saw and gets every later event exactly once: first from
the channel's bounded replay buffer, then live. When it asks for an id the bus can no longer
account for (older than the buffer, from before a restart, or ahead of the channel), the first
item it gets is a :class:`Resync` saying so, never a silent gap.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tradecast.domain import Channel, StreamEvent

EventId = tuple[int, int]
"""A parsed event id: (milliseconds, sequence)."""

_ID = re.compile(r"^(\d{1,20})(?:-(\d{1,20}))?$")
MAX_SEQUENCE = 2**64 - 1
BEGINNING = "0-0"
"""Pass as ``after`` to get everything the channel still holds, without a resync."""


def parse_event_id(value: str) -> EventId:
    """``"1712345678901-3"`` -> (1712345678901, 3); a bare number means sequence 0.

    Raises ValueError naming the expected shape.
    """
    match = _ID.match(value.strip())
    if match is None:
        raise ValueError(
            f"event id {value[:40]!r} is not of the form '<milliseconds>-<sequence>', "
            "e.g. '1712345678901-0'"
        )
    millis, sequence = int(match.group(1)), int(match.group(2) or 0)
    if sequence > MAX_SEQUENCE or millis > MAX_SEQUENCE:
        raise ValueError(f"event id {value[:40]!r} is out of range")
    return millis, sequence


def format_event_id(event_id: EventId) -> str:
    """(ms, seq) -> ``"ms-seq"``."""
    return f"{event_id[0]}-{event_id[1]}"


@dataclass(frozen=True)
class Resync:
    """The bus cannot prove the subscriber missed nothing: it must reload a snapshot.

    ``resume_id`` is the id to resume from afterwards (events after it follow this item), so a
    client that reconnects again is not told twice.
    """

    channel: Channel
    requested: str
    reason: str
    resume_id: str
    oldest_id: str | None
    latest_id: str | None


@runtime_checkable
class Subscription(Protocol):
    """Events of one channel for one subscriber, in id order, each exactly once.

    Iterating raises :class:`SubscriberDropped` when the subscriber fell too far behind.
    """

    def __aiter__(self) -> AsyncIterator[StreamEvent | Resync]: ...

    async def __anext__(self) -> StreamEvent | Resync: ...

    def take_ready(self, limit: int = 256) -> list[StreamEvent | Resync]:
        """Up to ``limit`` items that are already here, without waiting (so a subscriber that
        is behind can send them in one write). Raises :class:`SubscriberDropped` like
        iterating does."""
        ...

    async def aclose(self) -> None:
        """Stop receiving; idempotent."""
        ...


@runtime_checkable
class EventBus(Protocol):
    """Channels of ordered, resumable events (in-process now; Redis Streams for scale-out)."""

    async def publish(self, event: StreamEvent) -> StreamEvent:
        """Store ``event`` on its channel and deliver it to every subscriber; returns it with
        its id. Never waits for a subscriber: a full subscriber is dropped instead."""
        ...

    def subscribe(
        self, channel: Channel, after: str | None = None, *, queue_size: int | None = None
    ) -> Subscription:
        """Events on ``channel`` after the id ``after`` (None: only events published from now
        on; :data:`BEGINNING`: all the channel holds). ``queue_size`` bounds the events that
        may wait for this subscriber before it is dropped. ValueError on a malformed id."""
        ...

    async def latest(self, channel: Channel, limit: int = 1) -> list[StreamEvent]:
        """The last ``limit`` events of ``channel``, oldest first (a snapshot to resync from)."""
        ...

    async def last_id(self, channel: Channel) -> str | None:
        """The id of the channel's latest event (None: nothing published yet)."""
        ...

    async def aclose(self) -> None:
        """End every subscription and release resources."""
        ...

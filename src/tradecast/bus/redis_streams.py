"""The event bus on Redis Streams, for replicas that share their streams (scale-out).

Each channel is one stream, ``<namespace>:stream:<channel>``, trimmed to ``maxlen`` entries
(``XADD ... MAXLEN``, exact, so the replay buffer means the same as in-process). The ids Redis
assigns are the event ids, so an SSE client may resume on any replica with the
``Last-Event-ID`` it got from another.

One reader task per channel and process follows the stream (``XREAD BLOCK``) and fans events
out to the local subscribers through bounded queues, as the in-process bus does: a thousand
viewers cost one Redis connection, not a thousand.

Redis here may keep nothing on disk, so the bus is careful about what it cannot account for:

- every publish also records, in the same script, the stream's *origin* (its first id since
  Redis last started); an id older than the origin, or older than what trimming deleted, may
  have missed events;
- with an :class:`~tradecast.bus.archive.EventArchive` (PostgreSQL), those events are read
  back from the archive; without one, the subscriber gets a :class:`Resync`, never a silent
  gap;
- while Redis is unreachable, published events wait in a bounded outbox, in order, and are
  sent when it is back (``healthy`` is False meanwhile, and ``/readyz`` says so).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tradecast.bus.archive import EventArchive
from tradecast.bus.base import (
    BEGINNING,
    MAX_SEQUENCE,
    EventId,
    Resync,
    format_event_id,
    parse_event_id,
)
from tradecast.bus.queue import Item, QueueSubscription
from tradecast.domain import CHANNELS, Channel, StreamEvent
from tradecast.errors import ArchiveUnavailable
from tradecast.logs import get_logger

log = get_logger(__name__)

# In one round trip: note the newest id that trimming removes, XADD, and remember the stream's
# first id since Redis started. (XINFO's max-deleted-entry-id does not count trimming.)
PUBLISH_SCRIPT = """
local limit = tonumber(ARGV[1])
local length = redis.call('XLEN', KEYS[1])
if length >= limit then
  local gone = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', length - limit + 1)
  redis.call('SET', KEYS[3], gone[#gone][1])
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', limit, '*', 'e', ARGV[2])
redis.call('SET', KEYS[2], id, 'NX')
return id
"""
READ_BLOCK_MS = 1_000
READ_BATCH = 512
RETRY_S = (0.2, 0.5, 1.0, 2.0)
# A stream entry as XRANGE and XREVRANGE return it. redis-py types the entries of every stream
# command alike, with the None id and fields that only XCLAIM and XAUTOCLAIM give a deleted entry.
_Entry = tuple[bytes | str, dict[bytes | str, bytes | str]]


class _ChannelReader:
    """Follows one stream and hands each new event to the channel's local subscribers."""

    def __init__(self, bus: RedisStreamBus, channel: Channel) -> None:
        self.bus = bus
        self.channel = channel
        self.subscribers: set[QueueSubscription] = set()
        self.position: str | None = None
        self.ready = asyncio.Event()
        self.task = asyncio.create_task(self._run(), name=f"redis-reader-{channel}")

    async def _run(self) -> None:
        failures = 0
        while not self.bus.closing:
            try:
                if self.position is None:
                    self.position = await self.bus.last_id(self.channel) or BEGINNING
                    self.ready.set()
                await self._read_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except RedisError as exc:
                delay = RETRY_S[min(failures, len(RETRY_S) - 1)]
                failures += 1
                self.bus.note_failure(f"reading {self.channel}: {exc}")
                await asyncio.sleep(delay)

    async def _read_once(self) -> None:
        assert self.position is not None
        key = self.bus.stream_key(self.channel)
        # RESP2, the protocol the bus's clients speak: a list of [stream, entries] pairs
        # (redis-py's return type also has RESP3's dict).
        response = cast(
            "list[list[Any]]",
            await self.bus.redis.xread({key: self.position}, count=READ_BATCH, block=READ_BLOCK_MS),
        )
        self.bus.note_success()
        for _, entries in response or ():
            for entry_id, fields in entries:
                event = decode_event(entry_id, fields)
                self.position = event.id
                for subscriber in tuple(self.subscribers):
                    subscriber.offer(event)


class RedisStreamBus:
    """:class:`~tradecast.bus.base.EventBus` on Redis Streams (see the module docstring)."""

    def __init__(
        self,
        redis: Redis,
        *,
        namespace: str = "tradecast",
        maxlen: int = 10_000,
        queue_size: int = 1_000,
        outbox_size: int = 100_000,
        archive: EventArchive | None = None,
        on_drop: Callable[[Channel], None] | None = None,
    ) -> None:
        if maxlen < 1 or queue_size < 1 or outbox_size < 1:
            raise ValueError("maxlen, queue_size and outbox_size must be at least 1")
        self.redis = redis
        self.namespace = namespace
        self.maxlen = maxlen
        self.queue_size = queue_size
        self.archive = archive
        self._on_drop = on_drop
        self._publish = redis.register_script(PUBLISH_SCRIPT)
        self._outbox: deque[StreamEvent] = deque(maxlen=outbox_size)
        self._flusher: asyncio.Task[None] | None = None
        self._readers: dict[Channel, _ChannelReader] = {}
        self._publish_lock = asyncio.Lock()
        self.healthy = True
        self.last_error: str | None = None
        self.archive_failures = 0
        self.closing = False
        self._published: dict[Channel, str] = {}

    # --- keys and health ----------------------------------------------------------------

    def stream_key(self, channel: Channel) -> str:
        """The Redis key of ``channel``'s stream."""
        return f"{self.namespace}:stream:{channel}"

    def _origin_key(self, channel: Channel) -> str:
        return f"{self.namespace}:stream-origin:{channel}"

    def _trimmed_key(self, channel: Channel) -> str:
        return f"{self.namespace}:stream-trimmed:{channel}"

    def note_failure(self, reason: str) -> None:
        """Record that Redis failed (logged once per outage)."""
        if self.healthy:
            log.error("bus.redis_unavailable", reason=reason)
        self.healthy = False
        self.last_error = reason

    def note_success(self) -> None:
        """Record that Redis answered (logs the recovery)."""
        if not self.healthy:
            log.info("bus.redis_recovered", outbox=len(self._outbox))
        self.healthy = True
        self.last_error = None

    @property
    def outbox(self) -> int:
        """Events waiting for Redis to come back."""
        return len(self._outbox)

    # --- EventBus -----------------------------------------------------------------------

    async def publish(self, event: StreamEvent) -> StreamEvent:
        """Add ``event`` to its stream (and the archive); while Redis is down it waits in the
        outbox and is returned without an id."""
        self._check_channel(event.channel)
        async with self._publish_lock:
            if not self._outbox:
                # Twice: after a Redis restart the pooled connection fails once, then reconnects.
                for _ in range(2):
                    try:
                        return await self._send(event)
                    except RedisError as exc:
                        error = exc
                self.note_failure(f"publishing on {event.channel}: {error}")
            if len(self._outbox) == self._outbox.maxlen:
                log.error("bus.outbox_full", dropped_event=self._outbox[0].event)
            self._outbox.append(event)
            self._start_flusher()
            return event

    def subscribe(
        self, channel: Channel, after: str | None = None, *, queue_size: int | None = None
    ) -> _RedisSubscription:
        """Events on ``channel`` after ``after`` (see the EventBus protocol), then live."""
        self._check_channel(channel)
        if after is not None:
            parse_event_id(after)
        return _RedisSubscription(self, channel, after, queue_size or self.queue_size)

    async def latest(self, channel: Channel, limit: int = 1) -> list[StreamEvent]:
        """The last ``limit`` events of ``channel``, oldest first."""
        if limit < 1:
            return []
        entries = cast(
            "list[_Entry]", await self.redis.xrevrange(self.stream_key(channel), count=limit)
        )
        return [decode_event(i, f) for i, f in reversed(entries)]

    async def last_id(self, channel: Channel) -> str | None:
        """The id of the channel's latest event."""
        entries = cast(
            "list[_Entry]", await self.redis.xrevrange(self.stream_key(channel), count=1)
        )
        return _text(entries[0][0]) if entries else None

    async def aclose(self) -> None:
        """Stop the readers and the flusher; end every subscription."""
        self.closing = True
        if self._flusher is not None:
            self._flusher.cancel()
        # Readers stop between two blocking reads: cancelling one inside XREAD BLOCK can
        # leave it stuck in the client (seen with redis-py's asyncio client), so they are
        # cancelled only if they do not stop by themselves.
        tasks = [r.task for r in self._readers.values()]
        if self._flusher is not None:
            tasks.append(self._flusher)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=READ_BLOCK_MS / 1000 + 1)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1)
        for reader in self._readers.values():
            for subscriber in tuple(reader.subscribers):
                subscriber.close()
        self._readers.clear()
        if self._outbox:
            log.error("bus.outbox_discarded", events=len(self._outbox), reason="bus closed")

    # --- internals used by subscriptions ------------------------------------------------

    def reader(self, channel: Channel) -> _ChannelReader:
        """The channel's reader (started on first use; wait for ``ready`` before using its
        position)."""
        reader = self._readers.get(channel)
        if reader is None:
            reader = self._readers[channel] = _ChannelReader(self, channel)
        return reader

    def known_last(self, channel: Channel) -> str | None:
        """The newest id of ``channel`` this process has seen, without asking Redis."""
        reader = self._readers.get(channel)
        if reader is not None and reader.ready.is_set():
            return reader.position
        return self._published.get(channel)

    async def replay(
        self,
        channel: Channel,
        after: str,
        upto: str,
        *,
        check_loss: bool = True,
        since: str | None = None,
    ) -> list[Item]:
        """Events with ids in (``after``, ``upto``]: from the stream, completed from the
        archive where the stream lost some, or preceded by a Resync when nothing can.

        ``since`` is where the subscriber's "now" was when it subscribed: an id ahead of the
        stream resyncs to it (and gets what came after it)."""
        key = self.stream_key(channel)
        empty = upto == BEGINNING
        requested = parse_event_id(after)
        ahead = not empty and requested > parse_event_id(upto)
        if ahead or empty:
            # This replica's reader may just be behind the stream: ask Redis itself.
            latest = await self.last_id(channel)
            if latest is not None and requested <= parse_event_id(latest):
                return []  # the reader delivers what follows ``after``; nothing is missing
        low = "-" if after == BEGINNING else "(" + after
        entries = [] if empty or ahead else await _xrange(self, key, low, upto)
        events: list[Item] = [decode_event(i, f) for i, f in entries]
        if not check_loss or after == BEGINNING:
            return events
        loss = await self._loss(channel, requested, key)
        if loss is None:
            if ahead:
                reason = "the id is ahead of this stream (it comes from another deployment)"
                resume = since or upto
                later = await self.replay(channel, resume, upto, check_loss=False)
                return [Resync(channel, after, reason, resume, None, upto), *later]
            return events
        if self.archive is not None:
            try:
                older = await self.archive.read(channel, after, None if empty else upto)
            except ArchiveUnavailable as exc:
                log.error("bus.archive_unreadable", reason=str(exc))
            else:
                merged = {e.id: e for e in [*older, *events] if isinstance(e, StreamEvent)}
                # Sorted StreamEvents (a new list, so typing it as list[Item] is sound).
                return cast(
                    "list[Item]",
                    sorted(merged.values(), key=lambda e: parse_event_id(e.id or BEGINNING)),
                )
        reason, resume = loss
        first = entries[0][0] if entries else None
        return [Resync(channel, after, reason, resume, first, None if empty else upto), *events]

    # --- helpers ------------------------------------------------------------------------

    async def _send(self, event: StreamEvent) -> StreamEvent:
        payload = encode_event(event)
        channel = event.channel
        event_id = await self._publish(
            keys=[
                self.stream_key(channel),
                self._origin_key(channel),
                self._trimmed_key(channel),
            ],
            args=[self.maxlen, payload],
        )
        event_id = event_id.decode() if isinstance(event_id, bytes) else str(event_id)
        self.note_success()
        self._published[channel] = event_id
        stored = event.model_copy(update={"id": event_id})
        if self.archive is not None:
            try:
                await self.archive.append(stored)
            except ArchiveUnavailable as exc:
                # The event is on the stream; only a later resume past a Redis loss misses it.
                self.archive_failures += 1
                log.error("bus.archive_failed", event_id=event_id, reason=str(exc))
        return stored

    def _start_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="redis-outbox")

    async def _flush(self) -> None:
        failures = 0
        while self._outbox:
            await asyncio.sleep(RETRY_S[min(failures, len(RETRY_S) - 1)])
            async with self._publish_lock:
                try:
                    while self._outbox:
                        await self._send(self._outbox[0])
                        self._outbox.popleft()
                    log.info("bus.outbox_flushed")
                except RedisError as exc:
                    failures += 1
                    self.note_failure(f"flushing the outbox: {exc}")

    async def _loss(self, channel: Channel, requested: EventId, key: str) -> tuple[str, str] | None:
        """Why events after ``requested`` may be missing from the stream, and the id to resume
        from after a resync; None when the stream still holds every one of them."""
        trimmed, origin = await self.redis.mget(
            self._trimmed_key(channel), self._origin_key(channel)
        )
        if trimmed is not None and requested < parse_event_id(_text(trimmed)):
            reason = "the id is older than the replay buffer (the stream was trimmed)"
            return reason, _text(trimmed)
        if origin is None:
            return "the stream holds nothing from before that id (Redis lost it)", BEGINNING
        before_origin = _previous(parse_event_id(_text(origin)))
        if requested < before_origin:
            reason = "the id is from before Redis last started (its streams were lost)"
            return reason, format_event_id(before_origin)
        return None

    @staticmethod
    def _check_channel(channel: str) -> None:
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}; channels: {', '.join(CHANNELS)}")


class _RedisSubscription(QueueSubscription):
    """Registers with the channel's reader at once (so its bounded queue fills, and it is
    dropped, exactly as in-process), replays what it missed on first use, then goes live.
    An event is never delivered twice: the replay and the live queue may overlap."""

    def __init__(self, bus: RedisStreamBus, channel: Channel, after: str | None, size: int):
        super().__init__(channel, [], size, self._leave, bus._on_drop)
        self._bus = bus
        self._reader = bus.reader(channel)
        self._reader.subscribers.add(self)
        # "From now on" is the newest id this process knows (before it knows any: the clock,
        # which Redis also stamps ids with); a resume id is checked for loss.
        self._since = bus.known_last(channel) or f"{time.time_ns() // 1_000_000}-0"
        self._check_loss = after is not None
        self._after = after if after is not None else self._since
        self._delivered = parse_event_id(self._after) if self._after else (0, 0)
        self._joined = False

    async def __anext__(self) -> Item:
        if not self._joined:
            await self._join()
        while True:
            item = await super().__anext__()
            if self._fresh(item):
                return item

    def take_ready(self, limit: int = 256) -> list[Item]:
        """Up to ``limit`` items already here, without waiting (none before the first
        ``__anext__``, which fetches the replay)."""
        if not self._joined:
            return []
        return [item for item in super().take_ready(limit) if self._fresh(item)]

    def _fresh(self, item: Item) -> bool:
        if isinstance(item, Resync):
            self._delivered = parse_event_id(item.resume_id)
            return True
        event_id = parse_event_id(item.id or BEGINNING)
        if event_id <= self._delivered:
            return False
        self._delivered = event_id
        return True

    async def _join(self) -> None:
        self._joined = True
        await self._reader.ready.wait()
        if self.closed or self.dropped or self._after is None:
            return
        upto = self._reader.position or BEGINNING
        replay = await self._bus.replay(
            self.channel, self._after, upto, check_loss=self._check_loss, since=self._since
        )
        self._replay.extend(replay)

    def _leave(self, subscriber: QueueSubscription) -> None:
        self._reader.subscribers.discard(subscriber)


def _previous(event_id: EventId) -> EventId:
    millis, sequence = event_id
    return (millis, sequence - 1) if sequence else (max(millis - 1, 0), MAX_SEQUENCE)


async def _xrange(bus: RedisStreamBus, key: str, low: str, high: str) -> list[tuple[str, Any]]:
    entries: list[tuple[str, Any]] = []
    while True:
        batch = cast(
            "list[_Entry]", await bus.redis.xrange(key, min=low, max=high, count=READ_BATCH)
        )
        entries.extend((_text(entry_id), fields) for entry_id, fields in batch)
        if len(batch) < READ_BATCH:
            return entries
        low = "(" + entries[-1][0]


def encode_event(event: StreamEvent) -> str:
    """The JSON stored in a stream entry (the event without its id)."""
    return event.model_dump_json(exclude={"id"})


def decode_event(entry_id: str | bytes, fields: dict[Any, Any]) -> StreamEvent:
    """A stream entry back to its event, with the entry's id."""
    payload = fields.get("e") or fields.get(b"e")
    # Every entry the bus writes holds its event under "e" (PUBLISH_SCRIPT).
    data = json.loads(cast("str | bytes", payload))
    data["id"] = _text(entry_id)
    return StreamEvent.model_validate(data)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value

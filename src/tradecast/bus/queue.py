"""A subscriber's bounded queue, shared by the bus implementations.

The queue is a deque with one waiter (lighter than ``asyncio.Queue``: a publish to many
subscribers costs one append and at most one wake-up each). A subscriber whose queue is full
is dropped rather than waited for.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from tradecast.bus.base import Resync
from tradecast.domain import Channel, StreamEvent
from tradecast.errors import SubscriberDropped
from tradecast.logs import get_logger

log = get_logger(__name__)
Item = StreamEvent | Resync


class QueueSubscription:
    """One subscriber's view of a channel: its replay, then a bounded live queue.

    ``detach`` unregisters it from its channel (on drop or close); ``on_drop`` is told the
    channel of a subscriber that was dropped.
    """

    def __init__(
        self,
        channel: Channel,
        replay: list[Item],
        queue_size: int,
        detach: Callable[[QueueSubscription], None],
        on_drop: Callable[[Channel], None] | None = None,
    ) -> None:
        self.channel = channel
        self._replay: deque[Item] = deque(replay)
        self._queue: deque[StreamEvent] = deque()
        self._limit = queue_size
        self._waiter: asyncio.Future[None] | None = None
        self._detach_from = detach
        self._on_drop = on_drop
        self.dropped = False
        self.closed = False

    def offer(self, event: StreamEvent) -> None:
        """Queue ``event``, or drop this subscriber when its queue is full (never waits)."""
        if len(self._queue) >= self._limit:
            self.dropped = True
            self._detach_from(self)
            log.info("bus.subscriber_dropped", channel=self.channel, queued=len(self._queue))
            self._queue.clear()
            self._wake()
            if self._on_drop is not None:
                self._on_drop(self.channel)
            return
        self._queue.append(event)
        self._wake()

    def __aiter__(self) -> QueueSubscription:
        return self

    async def __anext__(self) -> Item:
        if self._replay:
            return self._replay.popleft()
        while not self._queue:
            if self.dropped:
                raise SubscriberDropped(f"subscriber of {self.channel!r} fell behind")
            if self.closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    def take_ready(self, limit: int = 256) -> list[Item]:
        """Up to ``limit`` items already here, without waiting."""
        items: list[Item] = []
        while self._replay and len(items) < limit:
            items.append(self._replay.popleft())
        if self.dropped and not items:
            raise SubscriberDropped(f"subscriber of {self.channel!r} fell behind")
        while self._queue and len(items) < limit:
            items.append(self._queue.popleft())
        return items

    async def aclose(self) -> None:
        """Stop receiving; idempotent."""
        self.close()

    def close(self) -> None:
        """Stop receiving (synchronously); idempotent."""
        if self.closed:
            return
        self.closed = True
        self._detach_from(self)
        self._replay.clear()
        self._queue.clear()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

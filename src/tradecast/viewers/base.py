"""What every livestream chat source provides, and the pieces they share.

Sources (:mod:`tradecast.viewers.twitch` over IRC, :mod:`tradecast.viewers.youtube` on the
Data API) only receive: they hand over :class:`~tradecast.domain.viewers.ViewerMessage`s as they
arrive and never answer, moderate or look at the desk. Each keeps what it received in a bounded
queue of its own (:class:`MessageBuffer`), so a reconnect never loses a message already
received, and reconnects by itself with a :class:`Backoff`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import random
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from tradecast.domain.viewers import ViewerMessage


class ChatSource(Protocol):
    """Viewers' messages from one livestream chat, in the order the platform sent them."""

    name: str
    """The platform and the chat, for logs: ``twitch:#channel``, ``youtube:<live chat id>``."""

    def messages(self) -> AsyncIterator[ViewerMessage]:
        """Every message received, once each, until :meth:`close`.

        The first call starts the source. It reconnects by itself (with backoff) and never
        raises for a network blip; messages received before a reconnect are still delivered.
        Meant for one consumer.

        Returns:
            An async iterator that ends when the source is closed.

        Raises:
            ChatSourceError: a permanent failure (credentials rejected, the chat ended or is
                disabled, the channel does not exist), raised once the messages received
                before it have been delivered.
        """
        ...

    async def close(self) -> None:
        """Stop receiving and release the connection; :meth:`messages` ends. Idempotent."""
        ...


class Backoff:
    """Exponential delays with jitter, capped; :meth:`reset` after a healthy connection.

    The n-th delay (from 0) is ``min(max_s, initial_s * factor**n)`` times a random factor in
    ``[1 - jitter, 1]``, so many clients cut off at once do not all come back at once.

    Args:
        initial_s: the first delay before jitter.
        max_s: no delay is longer.
        factor: growth per failed attempt (1 or more).
        jitter: the fraction of a delay that may be taken off at random (0 to 1).
        rng: the random source (tests seed one).
    """

    def __init__(
        self,
        initial_s: float = 1.0,
        max_s: float = 60.0,
        *,
        factor: float = 2.0,
        jitter: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 <= initial_s <= max_s:
            raise ValueError("backoff needs 0 <= initial_s <= max_s")
        if factor < 1 or not 0 <= jitter <= 1:
            raise ValueError("backoff needs factor >= 1 and 0 <= jitter <= 1")
        self.initial_s = initial_s
        self.max_s = max_s
        self.factor = factor
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._attempts = 0
        self._capped = False

    @property
    def attempts(self) -> int:
        """Delays handed out since the last reset."""
        return self._attempts

    def next_delay(self) -> float:
        """The delay before the next attempt (and count this attempt)."""
        base = self.max_s if self._capped else self.initial_s * self.factor**self._attempts
        if base >= self.max_s:
            # Once at the cap, stop growing the exponent (no overflow after days of failures).
            base, self._capped = self.max_s, True
        self._attempts += 1
        return base * (1.0 - self.jitter * self._rng.random())

    def reset(self) -> None:
        """The connection was healthy: the next failure starts from ``initial_s`` again."""
        self._attempts = 0
        self._capped = False


@dataclass
class SourceStats:
    """What a source has done since it started (for logs, metrics and tests)."""

    received: int = 0
    """Messages put in the queue (each id once)."""
    duplicates: int = 0
    """Messages seen again (overlapping connections, a page fetched twice) and skipped."""
    dropped: int = 0
    """Messages pushed out of a full queue, oldest first, because nobody was reading."""
    connections: int = 0
    """Connections that got through login (Twitch) or successful polls (YouTube)."""
    failures: int = 0
    """Connects or polls that failed and were retried (network blips, 5xx, timeouts)."""


class RecentIds:
    """The last ``size`` message ids, to skip a message delivered twice."""

    def __init__(self, size: int = 4096) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self._size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def seen(self, message_id: str) -> bool:
        """Whether ``message_id`` was seen before (it is remembered either way)."""
        if message_id in self._ids:
            self._ids.move_to_end(message_id)
            return True
        self._ids[message_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return False


class MessageBuffer:
    """The bounded queue between a source's connection and its reader.

    The connection side never waits: when the queue is full the oldest message is dropped
    (and counted), because blocking the socket would get the connection cut. The reader side
    waits for a message, and sees the source's permanent failure only once the queue is empty.

    Args:
        maxsize: the most messages kept.
        stats: the counters to update (``received``, ``dropped``).
    """

    def __init__(self, maxsize: int, stats: SourceStats) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._queue: asyncio.Queue[ViewerMessage] = asyncio.Queue(maxsize)
        self._changed = asyncio.Event()
        self._error: BaseException | None = None
        self._closed = False
        self._stats = stats

    def __len__(self) -> int:
        return self._queue.qsize()

    def put(self, message: ViewerMessage) -> None:
        """Queue ``message``; when full, drop the oldest first."""
        if self._queue.full():
            self._queue.get_nowait()
            self._stats.dropped += 1
        self._queue.put_nowait(message)
        self._stats.received += 1
        self._changed.set()

    def fail(self, error: BaseException) -> None:
        """The source stopped for good: the reader gets ``error`` after the queued messages."""
        self._error = error
        self._changed.set()

    def close(self) -> None:
        """The source was closed: the reader's next :meth:`get` returns None."""
        self._closed = True
        self._changed.set()

    async def get(self) -> ViewerMessage | None:
        """The oldest message, waiting for one; None once closed.

        Raises:
            BaseException: what :meth:`fail` was given, once no message is left.
        """
        while True:
            if self._closed:
                return None
            if not self._queue.empty():
                return self._queue.get_nowait()
            if self._error is not None:
                raise self._error
            self._changed.clear()
            await self._changed.wait()


class BackgroundSource(abc.ABC):
    """What a source that receives in a task of its own shares: the bounded queue, the
    counters, starting, reading and closing. Subclasses write :meth:`_run` (receive and
    :meth:`MessageBuffer.put`, reconnecting as they need) and may release more on close."""

    name: str
    task_role = "reader"
    """How the task is named in asyncio's task list: ``<name> <task_role>``."""

    def __init__(self, queue_size: int) -> None:
        self.stats = SourceStats()
        self._buffer = MessageBuffer(queue_size, self.stats)
        self._recent = RecentIds()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def queued(self) -> int:
        """Messages received and not yet taken by the reader."""
        return len(self._buffer)

    async def messages(self) -> AsyncIterator[ViewerMessage]:
        """See :meth:`ChatSource.messages`."""
        self.start()
        while (message := await self._buffer.get()) is not None:
            yield message

    def start(self) -> None:
        """Start receiving now, before anyone reads (:meth:`messages` does it otherwise)."""
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._run(), name=f"{self.name} {self.task_role}")

    async def close(self) -> None:
        """See :meth:`ChatSource.close`."""
        if self._closed:
            return
        self._closed = True
        self._buffer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        await self._release()

    @abc.abstractmethod
    async def _run(self) -> None:
        """Receive until cancelled (or until a permanent failure, given to the buffer)."""

    async def _release(self) -> None:
        """Release what the source holds once its task is gone (connections...)."""
        return None

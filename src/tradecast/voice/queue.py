"""The speaking queue: what the persona will say next, so lines never overlap.

Lines are spoken one after another. The queue keeps the timeline of what has been handed to
listeners (when the last announced line ends playing), and two rules for when the desk talks
faster than the voice:

- **drop**: small talk that would only be heard more than ``max_backlog_s`` from now is
  dropped, oldest first (it still appears as a caption);
- **priority**: a risk line (a stop-out) goes ahead of every waiting line and interrupts the
  small talk being played: the timeline restarts with it.

The queue is plain code with an injected clock, so its rules are tested without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Priority = Literal["normal", "risk"]
CHARS_PER_SECOND = 14.0
"""How fast a voice speaks, to estimate a line not synthesised yet (piper's joe: ~14-16)."""


@dataclass(frozen=True)
class Line:
    """A sentence to speak: already grounded and moderated."""

    text: str
    emotion: str = "neutral"
    decision_id: str | None = None
    priority: Priority = "normal"

    @property
    def estimated_s(self) -> float:
        """How long it will take to say, before it is synthesised."""
        return len(self.text) / CHARS_PER_SECOND


class SpeakingQueue:
    """Lines waiting for their voice, risk lines first, and the timeline of what plays."""

    def __init__(self, max_backlog_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_backlog_s = max_backlog_s
        self._clock = clock
        self._risk: deque[Line] = deque()
        self._normal: deque[Line] = deque()
        self._ready = asyncio.Event()
        self._plays_until = 0.0

    def __len__(self) -> int:
        return len(self._risk) + len(self._normal)

    @property
    def playing_for_s(self) -> float:
        """Seconds until what was already announced has been heard."""
        return max(0.0, self._plays_until - self._clock())

    def put(self, line: Line) -> list[Line]:
        """Queue ``line``; returns the small talk dropped to keep within the backlog (``line``
        itself among them when even it would come too late)."""
        if line.priority == "risk":
            self._risk.append(line)
            self._ready.set()
            return []
        self._normal.append(line)
        dropped: list[Line] = []
        while self._normal and self._newest_starts_in_s() > self.max_backlog_s:
            dropped.append(self._normal.popleft())
        if self:
            self._ready.set()
        return dropped

    def take(self) -> Line | None:
        """The next line to synthesise (risk lines first), or None when none waits."""
        queue = self._risk or self._normal
        line = queue.popleft() if queue else None
        if not self:
            self._ready.clear()
        return line

    async def next(self) -> Line:
        """Wait for the next line."""
        while True:
            line = self.take()
            if line is not None:
                return line
            await self._ready.wait()

    def announced(self, line: Line, duration_s: float) -> bool:
        """Record that ``line`` (``duration_s`` long) was handed to listeners; returns whether
        it interrupts what is playing (a risk line cuts the small talk short)."""
        now = self._clock()
        interrupts = line.priority == "risk" and self._plays_until > now
        start = now if line.priority == "risk" else max(now, self._plays_until)
        self._plays_until = start + duration_s
        return interrupts

    def _newest_starts_in_s(self) -> float:
        """When the newest waiting line would begin to be heard."""
        ahead = (*self._risk, *list(self._normal)[:-1])
        return self.playing_for_s + sum(line.estimated_s for line in ahead)

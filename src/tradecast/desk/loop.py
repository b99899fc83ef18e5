"""The desk loop: one symbol ticked through a timeline, one instant at a time, in order.

The server (:class:`~tradecast.desk.service.DeskService`), ``tradecast run`` and the eval
harness all step the desk with this loop, so they decide at the same instants in the same
order. The server supervises it (pause, approvals, the loop lease, backoff) and calls
:meth:`DeskLoop.tick_next` and :meth:`DeskLoop.advance` itself; the CLI and the eval harness,
which have nobody to wait for, call :meth:`DeskLoop.run`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

from tradecast.desk.timeline import Timeline
from tradecast.graphs.runner import DeskRunner, TickResult

OnTick = Callable[[datetime, TickResult], Awaitable[None]]
"""Called after each tick with the instant decided and its report."""


class DeskLoop:
    """Where the desk is up to on its timeline, and the step from one instant to the next."""

    def __init__(
        self,
        runner: DeskRunner,
        symbol: str,
        timeline: Timeline,
        cursor: datetime | None = None,
    ) -> None:
        self.runner = runner
        self.symbol = symbol
        self.timeline = timeline
        self.cursor = cursor or timeline.first
        """The next instant to decide."""

    @property
    def finished(self) -> bool:
        """Whether nothing is left to tick."""
        return self.timeline.finished(self.cursor)

    def seconds_until_due(self) -> float:
        """Wall seconds before the cursor can be decided."""
        return self.timeline.seconds_until_due(self.cursor)

    async def tick_next(self) -> tuple[datetime, TickResult]:
        """Decide at the cursor (resuming the tick if it was started before); the cursor stays
        until :meth:`advance`, since a tick waiting for approval is not done."""
        moment = self.timeline.moment(self.cursor)
        return moment, await self.runner.tick(self.symbol, moment)

    def advance(self, moment: datetime) -> None:
        """Move past ``moment``, once its tick is done."""
        self.cursor = moment + self.timeline.step

    async def run(self, on_tick: OnTick, *, limit: int = 0, pace_s: float = 0.0) -> int:
        """Tick every instant to the end of the timeline (or ``limit`` ticks; 0: no limit),
        waiting ``pace_s`` between ticks; returns how many ran."""
        count = 0
        while not self.finished and (limit == 0 or count < limit):
            await asyncio.sleep(self.seconds_until_due())
            moment, result = await self.tick_next()
            self.advance(moment)
            await on_tick(moment, result)
            count += 1
            if pace_s > 0:
                await asyncio.sleep(pace_s)
        return count

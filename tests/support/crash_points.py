"""`tradecast serve` that kills itself with SIGKILL at one named point of a tick, once.

The crash tests run this script instead of the `tradecast` command, so that a kill lands at a
chosen point between the risk gate, the broker's fill, the tick's checkpoints and the persona
stream, every time, instead of wherever a kill sent from the test happens to land. The hooks
wrap the real classes (the paper broker, LangGraph's SQLite checkpointer, the event
publisher); nothing else changes. A marker file records that the kill happened, so the server
started again on the same data dir runs without hooks.

Usage: ``python crash_points.py POINT MARKER serve --port PORT``
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from tradecast.broker.paper import PaperBroker
from tradecast.cli import app
from tradecast.desk.publisher import EventPublisher

POINTS = {
    "before_submit": "the gate approved and its step was saved; the broker was not asked yet",
    "after_fill": "the broker journaled the order and its fill; the tick's next checkpoint "
    "was not written",
    "after_fill_gate_unsaved": "the broker filled while the gate's own step was still unsaved "
    "(LangGraph writes checkpoints in the background): the gate runs again after the restart",
    "after_execute_saved": "the fill and the execute step's checkpoint are on disk; the memory "
    "and the persona have not run",
    "after_approved_fill": "an operator approved a waiting order and the broker filled it; "
    "the approval's answer was still unsaved: the tick waits for approval again on disk",
    "mid_persona": "the persona had streamed its first token",
}
HELD_FROM = {
    "after_fill_gate_unsaved": lambda channel, value: channel == "verdict",
    "after_approved_fill": lambda channel, value: channel == "approval" and value == "approved",
}
"""For these points: nothing reaches the disk from the first write that matches on."""
FILL_KILLS = ("after_fill", "after_fill_gate_unsaved", "after_approved_fill")
GATE_SAVED_WAIT_S = 30.0


class CrashHooks:
    """The hooks of one kill point; each one does nothing once the marker exists."""

    def __init__(self, point: str, marker: Path) -> None:
        if point not in POINTS:
            raise SystemExit(f"unknown kill point {point!r}; one of {', '.join(POINTS)}")
        self.point = point
        self.marker = marker
        self.gate_saved = asyncio.Event()
        self.hold_saves = False

    @property
    def armed(self) -> bool:
        return not self.marker.exists()

    def die(self, event_id: str | None = None) -> None:
        """SIGKILL now, after noting in the marker where (and the last persona event's id)."""
        self.marker.write_text(json.dumps({"point": self.point, "event_id": event_id}))
        os.kill(os.getpid(), signal.SIGKILL)

    def install(self) -> None:
        self._wrap_submit()
        self._wrap_checkpoints()
        self._wrap_publish()

    def _wrap_submit(self) -> None:
        submit = PaperBroker.submit
        hooks = self

        async def hooked(self: PaperBroker, intent: Any, at: Any = None) -> Any:
            if hooks.armed and hooks.point in ("before_submit", "after_fill"):
                await asyncio.wait_for(hooks.gate_saved.wait(), GATE_SAVED_WAIT_S)
                if hooks.point == "before_submit":
                    hooks.die()
            execution = await submit(self, intent, at)
            if hooks.armed and execution.fills and hooks.point in FILL_KILLS:
                hooks.die()
            return execution

        PaperBroker.submit = hooked  # type: ignore[method-assign]

    def _wrap_checkpoints(self) -> None:
        aput, aput_writes = AsyncSqliteSaver.aput, AsyncSqliteSaver.aput_writes
        hooks = self

        async def hooked_put(self: AsyncSqliteSaver, config: Any, checkpoint: Any, *a: Any) -> Any:
            values = checkpoint.get("channel_values", {})
            await hooks._maybe_hold(values.items())
            saved = await aput(self, config, checkpoint, *a)
            if hooks.armed and "verdict" in values:
                hooks.gate_saved.set()
            if hooks.armed and hooks.point == "after_execute_saved" and "execution" in values:
                hooks.die()
            return saved

        async def hooked_writes(self: AsyncSqliteSaver, config: Any, writes: Any, *a: Any) -> Any:
            await hooks._maybe_hold(writes)
            return await aput_writes(self, config, writes, *a)

        AsyncSqliteSaver.aput = hooked_put  # type: ignore[method-assign]
        AsyncSqliteSaver.aput_writes = hooked_writes  # type: ignore[method-assign]

    async def _maybe_hold(self, writes: Any) -> None:
        """For the points of :data:`HELD_FROM`: from the first matching write on, nothing
        reaches the disk (the save waits until the process is killed)."""
        matches = HELD_FROM.get(self.point) if self.armed else None
        if matches is None:
            return
        self.hold_saves = self.hold_saves or any(matches(c, v) for c, v in writes)
        if self.hold_saves:
            await asyncio.Event().wait()

    def _wrap_publish(self) -> None:
        publish: Callable[[EventPublisher, Any], Awaitable[Any]] = EventPublisher.publish
        hooks = self

        async def hooked(self: EventPublisher, event: Any) -> Any:
            published = await publish(self, event)
            if hooks.armed and hooks.point == "mid_persona" and event.event == "token":
                hooks.die(published.id)
            return published

        EventPublisher.publish = hooked  # type: ignore[method-assign]


def main() -> None:
    point, marker, *args = sys.argv[1:]
    CrashHooks(point, Path(marker)).install()
    app(args, prog_name="tradecast")


if __name__ == "__main__":
    main()

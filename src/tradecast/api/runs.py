"""Runs: one desk tick, approval or chat message, executed in the background and recorded so
its stream can be followed, dropped and joined again (LangGraph's threads/runs model).

A run keeps going when its client disconnects; every item it produced stays in the record
(numbered 1, 2, ...) until the run is among the oldest beyond ``keep``, so a client that
reconnects with ``Last-Event-ID`` gets exactly what it missed.

Items are stored in LangGraph's stream vocabulary: ``metadata`` (run id), ``custom`` (an
event the desk or the persona emitted), ``values`` (the final state: a tick report or a chat
reply), ``error`` and ``end``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from tradecast.errors import NotFound
from tradecast.logs import bind_run, get_logger

log = get_logger(__name__)
RunStatus = Literal["pending", "running", "success", "error", "interrupted"]
RunItem = tuple[int, str, Any]


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class RunRecord:
    """One run and everything it streamed so far."""

    run_id: str
    thread_id: str
    assistant_id: str
    metadata: dict[str, Any]
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)
    status: RunStatus = "pending"
    items: list[RunItem] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def done(self) -> bool:
        """Whether the run has ended (its last item is ``end``)."""
        return bool(self.items) and self.items[-1][1] == "end"

    def append(self, event: str, data: Any) -> None:
        """Add one item and wake the followers."""
        if self.done:
            return
        self.items.append((len(self.items) + 1, event, data))
        self.updated_at = _now()
        self._changed.set()
        self._changed = asyncio.Event()

    def finish(self, status: RunStatus) -> None:
        """End the run with ``status``."""
        self.status = status
        self.append("end", {"run_id": self.run_id, "status": status})

    async def follow(self, after: int = 0) -> AsyncIterator[RunItem]:
        """Items after number ``after``, then new ones as they come, until ``end``."""
        position = max(0, after)
        while True:
            changed = self._changed
            while position < len(self.items):
                item = self.items[position]
                position += 1
                yield item
            if self.done:
                return
            await changed.wait()

    def as_json(self) -> dict[str, Any]:
        """The run as LangGraph's ``Run`` object."""
        return {
            "run_id": self.run_id,
            "thread_id": self.thread_id,
            "assistant_id": self.assistant_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "status": self.status,
            "metadata": self.metadata,
            "multitask_strategy": "enqueue",
        }


RunWork = Callable[[RunRecord], Awaitable[RunStatus]]


class RunStore:
    """The latest ``keep`` runs of this process and the tasks running them."""

    def __init__(self, keep: int = 200) -> None:
        self.keep = keep
        self._runs: OrderedDict[str, RunRecord] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def start(
        self,
        thread_id: str,
        assistant_id: str,
        work: RunWork,
        metadata: dict[str, Any] | None = None,
    ) -> RunRecord:
        """Create a run and execute ``work`` on it in the background."""
        run = RunRecord(str(uuid.uuid4()), thread_id, assistant_id, dict(metadata or {}))
        run.append("metadata", {"run_id": run.run_id, "thread_id": thread_id, "attempt": 1})
        self._runs[run.run_id] = run
        while len(self._runs) > self.keep:
            oldest = next(iter(self._runs.values()))
            if not oldest.done:
                break
            self._runs.popitem(last=False)
        task = asyncio.create_task(self._execute(run, work), name=f"run-{run.run_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return run

    def get(self, run_id: str) -> RunRecord | None:
        """A run by id."""
        return self._runs.get(run_id)

    def of_thread(self, thread_id: str) -> list[RunRecord]:
        """The thread's runs, newest first."""
        return [r for r in reversed(self._runs.values()) if r.thread_id == thread_id]

    async def aclose(self) -> None:
        """Cancel the runs still going."""
        for task in tuple(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @staticmethod
    async def _execute(run: RunRecord, work: RunWork) -> None:
        run.status = "running"
        bind_run(run_id=run.run_id, thread_id=run.thread_id)
        try:
            status = await work(run)
        except asyncio.CancelledError:
            run.append("error", {"error": "Cancelled", "message": "the server is stopping"})
            run.finish("error")
            raise
        except (NotFound, ValueError) as exc:
            message = str(exc.args[0]) if exc.args else str(exc)
            run.append("error", {"error": type(exc).__name__, "message": message})
            run.finish("error")
            return
        except Exception as exc:
            log.exception("run.failed", run_id=run.run_id, assistant_id=run.assistant_id)
            run.append(
                "error",
                {
                    "error": type(exc).__name__,
                    "message": "the run failed; the server log has the details",
                },
            )
            run.finish("error")
            return
        run.finish(status)

"""Runs: one desk tick, approval or chat message, executed in the background and recorded so
its stream can be followed, dropped and joined again (LangGraph's threads/runs model).

A run keeps going when its client disconnects (unless it asked to be cancelled then); every
item it produced stays in the record (numbered 1, 2, ...) until the run is among the oldest
beyond ``keep``, so a client that reconnects with ``Last-Event-ID`` gets exactly what it
missed.

One run at a time works on a thread. A run started while another is in flight follows its
``multitask_strategy``: ``reject`` (refused), ``enqueue`` (waits its turn), ``interrupt``
(the one in flight is cancelled, what it wrote stays) or ``rollback`` (cancelled, and what it
wrote to the thread is undone: only for runs that can undo, never a desk tick).

Items are stored in LangGraph's stream vocabulary: ``metadata`` (run id), then the stream
modes' events (``values``, ``updates``, ``messages``, ``custom``...), ``error`` and ``end``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from tradecast.errors import DeskConflict, NotFound
from tradecast.logs import bind_run, get_logger

log = get_logger(__name__)
RunStatus = Literal["pending", "running", "success", "error", "timeout", "interrupted"]
MultitaskStrategy = Literal["reject", "interrupt", "rollback", "enqueue"]
CancelAction = Literal["interrupt", "rollback"]
RunItem = tuple[int, str, Any]
MAX_QUEUED = 20
"""Runs waiting on one thread at most (more is a client in a loop)."""
MAX_ITEMS = 50_000
"""Items one run keeps at most (``events`` and ``debug`` streams are large); past it only the
run's ``error`` and ``end`` are recorded."""


class ThreadBusy(DeskConflict):
    """A run was refused: another is in flight on its thread."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class RunJob:
    """What a run does, and how to undo what it wrote to its thread (None: it cannot be
    undone, and ``final`` says why)."""

    execute: Callable[[RunRecord], Awaitable[RunStatus]]
    rollback: Callable[[RunRecord], Awaitable[None]] | None = None
    final: str = "what it did cannot be undone"


@dataclass
class RunRecord:
    """One run and everything it streamed so far."""

    run_id: str
    thread_id: str
    assistant_id: str
    metadata: dict[str, Any]
    multitask_strategy: MultitaskStrategy = "reject"
    kwargs: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)
    status: RunStatus = "pending"
    items: list[RunItem] = field(default_factory=list)
    cancelled: CancelAction | None = None
    """Why the run was cancelled, when a client cancelled it."""
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _job: RunJob | None = None

    @property
    def done(self) -> bool:
        """Whether the run has ended (its last item is ``end``)."""
        return bool(self.items) and self.items[-1][1] == "end"

    def append(self, event: str, data: Any) -> None:
        """Add one item and wake the followers."""
        if self.done or (len(self.items) >= MAX_ITEMS and event not in ("error", "end")):
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

    async def wait(self) -> None:
        """Return when the run has ended."""
        async for _ in self.follow(len(self.items)):
            pass

    def values(self) -> Any:
        """The data of the run's last ``values`` event (None: it sent none)."""
        return next((data for _, event, data in reversed(self.items) if event == "values"), None)

    def error(self) -> dict[str, Any] | None:
        """The run's ``error`` event, if it failed."""
        return next((data for _, event, data in reversed(self.items) if event == "error"), None)

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
            "multitask_strategy": self.multitask_strategy,
            "kwargs": self.kwargs,
        }


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
        job: RunJob,
        metadata: dict[str, Any] | None = None,
        strategy: MultitaskStrategy = "enqueue",
        kwargs: dict[str, Any] | None = None,
    ) -> RunRecord:
        """Create a run and execute ``job`` on it in the background, after the runs in
        flight on its thread (which ``strategy`` may cancel first).

        Raises:
            ThreadBusy: runs are in flight and the strategy is ``reject``, or ``rollback``
                of a run that cannot be undone, or too many wait already.
        """
        ahead = self.in_flight(thread_id)
        if ahead and strategy == "reject":
            raise ThreadBusy(
                f"thread {thread_id!r} is already running a task; wait for it to finish or "
                "choose a different multitask_strategy (enqueue, interrupt, rollback)"
            )
        if strategy == "rollback":
            self._check_undoable(ahead)
        if len(ahead) >= MAX_QUEUED:
            raise ThreadBusy(f"{len(ahead)} runs wait on thread {thread_id!r} already")
        run = RunRecord(
            str(uuid.uuid4()),
            thread_id,
            assistant_id,
            dict(metadata or {}),
            strategy,
            dict(kwargs or {}),
        )
        run.append("metadata", {"run_id": run.run_id, "thread_id": thread_id, "attempt": 1})
        if strategy in ("interrupt", "rollback"):
            for other in ahead:
                self.cancel(other, strategy)
        run._job = job
        self._runs[run.run_id] = run
        self._forget_oldest()
        task = asyncio.create_task(self._execute(run, job, ahead), name=f"run-{run.run_id}")
        run._task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return run

    def get(self, run_id: str) -> RunRecord | None:
        """A run by id."""
        return self._runs.get(run_id)

    def of_thread(self, thread_id: str) -> list[RunRecord]:
        """The thread's runs, newest first."""
        return [r for r in reversed(self._runs.values()) if r.thread_id == thread_id]

    def in_flight(self, thread_id: str) -> list[RunRecord]:
        """The thread's runs still pending or running, oldest first."""
        return [r for r in self._runs.values() if r.thread_id == thread_id and not r.done]

    def cancel(self, run: RunRecord, action: CancelAction = "interrupt") -> None:
        """Cancel ``run`` (nothing when it has ended): ``interrupt`` keeps what it wrote,
        ``rollback`` undoes it and forgets the run.

        Raises:
            ThreadBusy: ``rollback`` of a run that cannot be undone.
        """
        if run.done:
            return
        if action == "rollback":
            self._check_undoable([run])
        run.cancelled = action
        if run.status == "pending":
            # it has written nothing, and its task may not have started (a task cancelled
            # before its first step never runs the handlers that would end the run)
            self._end_cancelled(run)
        if run._task is not None:
            run._task.cancel()

    def delete(self, run: RunRecord) -> None:
        """Forget an ended run.

        Raises:
            ThreadBusy: the run is still in flight.
        """
        if not run.done:
            raise ThreadBusy(f"run {run.run_id} is still {run.status}; cancel it first")
        self._forget(run.run_id)

    def forget_thread(self, thread_id: str) -> None:
        """Forget every ended run of a thread (it was deleted)."""
        for run in self.of_thread(thread_id):
            if run.done:
                self._forget(run.run_id)

    async def aclose(self) -> None:
        """Cancel the runs still going."""
        for task in tuple(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _check_undoable(self, runs: list[RunRecord]) -> None:
        for other in runs:
            job = other._job
            if job is not None and job.rollback is None:
                raise ThreadBusy(
                    f"run {other.run_id} cannot be rolled back: {job.final}; use interrupt"
                )

    def _forget(self, run_id: str) -> None:
        self._runs.pop(run_id, None)

    def _forget_oldest(self) -> None:
        """Forget the oldest ended runs beyond ``keep`` (runs in flight are kept)."""
        excess = len(self._runs) - self.keep
        for run in [r for r in self._runs.values() if r.done][: max(0, excess)]:
            self._forget(run.run_id)

    async def _execute(self, run: RunRecord, job: RunJob, ahead: list[RunRecord]) -> None:
        bind_run(run_id=run.run_id, thread_id=run.thread_id)
        try:
            for other in ahead:
                await other.wait()
            run.status = "running"
            status = await job.execute(run)
        except asyncio.CancelledError:
            if run.cancelled is None:
                run.append("error", {"error": "Cancelled", "message": "the server is stopping"})
                run.finish("error")
                raise
            await self._cancelled(run, job)
            return
        except (NotFound, DeskConflict, ValueError) as exc:
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

    async def _cancelled(self, run: RunRecord, job: RunJob) -> None:
        if run.done:
            return
        try:
            if run.cancelled == "rollback" and job.rollback is not None:
                # a second cancel must not leave the undo half done
                await asyncio.shield(job.rollback(run))
        except Exception:
            log.exception("run.rollback_failed", run_id=run.run_id)
            run.append("error", {"error": "RollbackFailed", "message": "the undo failed"})
            run.cancelled = "interrupt"
        except asyncio.CancelledError:
            pass
        finally:
            self._end_cancelled(run)

    def _end_cancelled(self, run: RunRecord) -> None:
        log.info("run.cancelled", run_id=run.run_id, action=run.cancelled)
        if run.cancelled == "rollback":
            self._forget(run.run_id)
        run.finish("interrupted")

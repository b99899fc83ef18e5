"""Runs desk ticks: one checkpointed LangGraph thread per decision, streamed to a sink.

The thread id is derived from the decision's id, so running the same tick again resumes it:
a finished tick returns its recorded result, a tick that crashed mid-way continues from its
last checkpoint, and a tick waiting for approval stays waiting. With the broker idempotent on
the decision's client order id, nothing ever fills twice.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, Durability

from tradecast.agents.consensus import decision_id
from tradecast.domain import StreamEvent
from tradecast.errors import NotFound
from tradecast.graphs.report import LLMUsage, PersonaReport, RiskReport, TickResult, TickStatus
from tradecast.graphs.review import ReviewAnswer
from tradecast.graphs.streaming import GraphTap, stream_graph
from tradecast.logs import bind_run, get_logger

log = get_logger(__name__)
EventSink = Callable[[StreamEvent], Awaitable[None]]
TICK_PREFIX = "tick:"
"""Tick threads are ``tick:<decision id>``."""
__all__ = ["DeskRunner", "EventSink", "TickResult", "TickStatus", "tick_result"]


async def _discard(_: StreamEvent) -> None:
    return None


class DeskRunner:
    """Runs ticks of a compiled desk graph and forwards its custom events to ``sink``."""

    def __init__(
        self,
        graph: CompiledStateGraph,
        sink: EventSink = _discard,
        set_clock: Callable[[datetime], None] | None = None,
        durability: Durability | None = None,
    ) -> None:
        self.graph = graph
        self.sink = sink
        self._set_clock = set_clock
        # None: LangGraph's default (a checkpoint per step). The eval harness uses "exit": one
        # checkpoint per finished tick, since a replay that dies is run again from the start.
        self.durability: Durability | None = durability
        # the thread and graph state this runner last read at the end of a tick
        self._last_state: tuple[str, dict[str, Any]] | None = None
        self.tap: GraphTap | None = None
        """Who also gets the graph's chunks of the ticks run while it is set (an API run
        following a tick in more stream modes)."""

    @staticmethod
    def thread_id(symbol: str, at: datetime) -> str:
        """The checkpoint thread of the tick on ``symbol`` at ``at``."""
        return f"{TICK_PREFIX}{decision_id(symbol, at)}"

    async def tick(self, symbol: str, at: datetime) -> TickResult:
        """Decide on ``symbol`` at ``at`` (resuming the tick if it was started before)."""
        thread = self.thread_id(symbol, at)
        config: RunnableConfig = {"configurable": {"thread_id": thread}}
        bind_run(run_id=thread, thread_id=thread)
        if self._set_clock is not None:
            self._set_clock(at)
        snapshot = await self.graph.aget_state(config)
        waiting = _interrupted(snapshot)
        if snapshot.values and (waiting or _finished(snapshot)):
            self._last_state = (thread, snapshot.values)
            return self._result(thread, snapshot.values, 0.0, resumed=True, waiting=waiting)
        payload: Any = None if snapshot.values else self.first_input(symbol, at)
        if payload is None:
            log.info("desk.tick_resumed", next=list(snapshot.next))
        return await self._run(thread, config, payload, resumed=payload is None)

    def first_input(self, symbol: str, at: datetime) -> dict[str, Any]:
        """What a new tick's graph starts from."""
        return {"symbol": symbol, "at": at}

    async def state(self, thread: str) -> dict[str, Any]:
        """The graph state of ``thread``: when this runner's last tick was that thread, the
        state it read at the tick's end (what the tick's result was made from; no second
        checkpoint read, and nothing another process wrote since); otherwise it is read from
        the checkpointer."""
        if self._last_state is not None and self._last_state[0] == thread:
            return self._last_state[1]
        config: RunnableConfig = {"configurable": {"thread_id": thread}}
        return (await self.graph.aget_state(config)).values

    async def cut_short(self, symbol: str, at: datetime) -> list[str] | None:
        """The steps still to run of the tick on ``symbol`` at ``at`` when it was started and
        then cut short (the process stopped mid-tick); None when it was never started, has
        finished or waits for approval."""
        config: RunnableConfig = {"configurable": {"thread_id": self.thread_id(symbol, at)}}
        snapshot = await self.graph.aget_state(config)
        if not snapshot.values or _interrupted(snapshot) or _finished(snapshot):
            return None
        return list(snapshot.next)

    async def resume(
        self, thread: str, answer: ReviewAnswer, at: datetime | None = None
    ) -> TickResult:
        """Answer a pending approval; a second answer changes nothing.

        Raises:
            NotFound: no tick was checkpointed under ``thread``.
        """
        config: RunnableConfig = {"configurable": {"thread_id": thread}}
        snapshot = await self.graph.aget_state(config)
        if not snapshot.values:
            raise NotFound(f"no tick {thread!r}")
        if self._set_clock is not None and not _finished(snapshot):
            self._set_clock(at or snapshot.values["at"])
        if not _interrupted(snapshot):
            if _finished(snapshot):
                return self._result(thread, snapshot.values, 0.0, resumed=True)
            # answered, then cut short (the process stopped): finish what the answer began
            return await self._run(thread, config, None, True)
        return await self._run(thread, config, Command(resume=answer.as_resume()), True)

    async def _run(
        self, thread: str, config: RunnableConfig, payload: Any, resumed: bool
    ) -> TickResult:
        started = time.perf_counter()
        tap = self.tap
        modes = {"custom", "updates"} | (tap.modes if tap else set())
        async for mode, chunk in stream_graph(self.graph, payload, config, modes, self.durability):
            if mode == "custom":
                await self.sink(
                    StreamEvent(run_id=thread, thread_id=thread, **cast("dict[str, Any]", chunk))
                )
            if tap is not None:
                tap(mode, chunk)
        total_ms = (time.perf_counter() - started) * 1000
        snapshot = await self.graph.aget_state(config)
        self._last_state = (thread, snapshot.values)
        result = self._result(
            thread, snapshot.values, total_ms, resumed=resumed, waiting=_interrupted(snapshot)
        )
        log.info(
            "desk.tick",
            status=result.status,
            action=result.decision.action if result.decision else None,
            llm_calls=result.llm.calls,
            total_ms=round(total_ms, 1),
        )
        return result

    @staticmethod
    def _result(
        thread: str,
        values: dict[str, Any],
        total_ms: float,
        *,
        resumed: bool,
        waiting: bool = False,
    ) -> TickResult:
        return tick_result(thread, values, total_ms, resumed=resumed, waiting=waiting)


def _interrupted(snapshot: Any) -> bool:
    return any(task.interrupts for task in snapshot.tasks)


def _finished(snapshot: Any) -> bool:
    """Whether the tick reached its end. An empty ``next`` alone does not say so: a process
    killed after a step's writes were saved but before the next checkpoint leaves a thread
    with nothing "next" that must still be resumed (``astream(None)`` applies those writes
    and goes on)."""
    return not snapshot.next and bool(snapshot.values.get("remembered"))


def tick_result(
    thread: str, values: dict[str, Any], total_ms: float, *, resumed: bool, waiting: bool
) -> TickResult:
    """The report of a tick from its graph state."""
    decision = values.get("decision")
    verdict = values.get("verdict")
    execution = values.get("execution")
    lines = values.get("persona") or []
    calls = values.get("llm_calls") or []
    latency = dict(values.get("latency_ms") or {})
    latency["total"] = round(total_ms or sum(latency.values()), 2)
    return TickResult(
        thread_id=thread,
        status="awaiting_approval" if waiting else "completed",
        decision=decision,
        risk=RiskReport(
            approved=bool(verdict and verdict.approved),
            reasons=list(verdict.reasons) if verdict else [],
            shrunk=bool(verdict and verdict.shrunk),
            approval=values.get("approval", "not_required"),
        ),
        order=execution.order if execution else None,
        fills=list(execution.fills) if execution else [],
        persona=PersonaReport(
            text=" ".join(line.text for line in lines),
            emotion=lines[0].emotion if lines else None,
            lines=list(lines),
        ),
        llm=LLMUsage(
            calls=len(calls),
            failed=sum(1 for c in calls if not c.ok),
            prompt_tokens=sum(c.prompt_tokens for c in calls),
            completion_tokens=sum(c.completion_tokens for c in calls),
            by_agent=list(calls),
        ),
        latency_ms=latency,
        resumed=resumed,
    )

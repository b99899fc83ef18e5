"""The desk service: runs the desk loop and is the one way operators act on the desk.

It owns the :class:`~tradecast.bootstrap.DeskRuntime` opened by the app, and implements
:class:`~tradecast.graphs.controls.DeskControls` for the API routes and the chat-control graph
alike. Every control action is journaled (who, what, when, outcome) and every tick's report is
kept for ``GET /v1/decisions``; both live in :class:`~tradecast.desk.store.DeskStore`.

The loop (:class:`~tradecast.desk.loop.DeskLoop`) ticks one symbol at the ``desk.every``
cadence, on the timeline the market allows (:mod:`tradecast.desk.timeline`):

- **replay** (the bundled candles, the default): from ``desk.replay_from`` (default: the first
  instant with ``desk.candles`` bars of context) through the last bar, waiting
  ``desk.seconds_per_tick`` of wall time between ticks. Where it is up to is stored, so a
  restart goes on from there (and resumes a tick cut short, from its checkpoint).
- **live** (ccxt): each tick when a new ``every`` bar has closed.

Only one tick runs at a time (an asyncio lock), whether the loop, an operator or an approval
started it. While an order waits for approval the loop waits too: a human-in-the-loop desk
does not trade past an open question.

Scaled out, several replicas share the store, the journal and the checkpoints, and only the
holder of the loop lease (:mod:`tradecast.desk.leadership`) runs the loop; the others stand by,
serve reads and controls, and take over when the holder's lease expires. The desk does not
tick while a shared service is down (:mod:`tradecast.desk.health`). Before each tick it
catches up with what other replicas wrote: the broker's journal, the replay cursor, the risk
limits and the approvals decided elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from tradecast.agents.consensus import decision_id as decision_id_at
from tradecast.broker.paper import Broker
from tradecast.desk.approvals import PendingApprovals
from tradecast.desk.confirmations import Confirmations
from tradecast.desk.health import HealthMonitor
from tradecast.desk.leadership import Leadership
from tradecast.desk.lease import LocalLease, LoopLease
from tradecast.desk.loop import DeskLoop
from tradecast.desk.metrics import Metrics
from tradecast.desk.publisher import EventObserver, EventPublisher
from tradecast.desk.run_flag import RunFlag
from tradecast.desk.runtime import DeskRuntime
from tradecast.desk.status import DeskState, DeskStatus
from tradecast.desk.store import DeskStore
from tradecast.desk.timeline import Timeline
from tradecast.domain import Portfolio, StreamEvent, utc_now
from tradecast.errors import (
    BrokerError,
    ConfirmationRequired,
    DeskConflict,
    MarketDataError,
    NotFound,
    TickLockError,
)
from tradecast.graphs.review import ReviewAnswer
from tradecast.graphs.runner import TickResult, tick_result
from tradecast.graphs.streaming import GraphTap
from tradecast.logs import get_logger
from tradecast.market.closed_bars import parse_timeframe
from tradecast.risk.book_exposure import book_exposure
from tradecast.risk.exposure import Exposure
from tradecast.risk.gate import updated_limits
from tradecast.settings import RiskLimits

log = get_logger(__name__)
MAX_BACKOFF_S = 60.0
# how long a tick waits for another replica's tick of the same desk (embedded: ~10-30 s)
TICK_WAIT_S = 120.0
T = TypeVar("T")
INTERRUPTED = "interrupted: the desk stopped mid-tick; it resumes from its checkpoint"
PLACED = "ok: the order was approved and placed before the desk stopped"


class DeskService:
    """The running desk: loop, controls (``DeskControls``), journal and decisions."""

    def __init__(
        self,
        runtime: DeskRuntime,
        store: DeskStore,
        publisher: EventPublisher,
        *,
        metrics: Metrics | None = None,
        persona_name: str = "tradecast",
        lease: LoopLease | None = None,
        health: HealthMonitor | None = None,
    ) -> None:
        self.runtime = runtime
        self.health = health
        self.store = store
        self.publisher = publisher
        self.metrics = metrics
        self.persona_name = persona_name
        self.config = runtime.settings.desk
        self.symbol = self.config.symbol
        self.bar = parse_timeframe(runtime.settings.market.timeframe)
        self.timeline: Timeline = runtime.timelines(self.config)
        self.leadership = Leadership(
            lease or LocalLease(),
            health,
            poll=self._poll_store,
            promoted=self._promoted,
            on_change=self._notify,
            symbol=self.symbol,
        )
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._run_flag = RunFlag(store, self._notify)
        self._confirmations = Confirmations(store)
        self._pending = PendingApprovals(
            store, publisher, self.thread_state, self._notify, self._order_placed
        )
        self._loop = DeskLoop(runtime.runner, self.symbol, self.timeline, self._restore_cursor())
        self._next_due = 0.0
        self._ticks = store.decision_count()
        self._last_tick: dict[str, Any] | None = None
        self._error: str | None = None
        self._announced_finish = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._keeper: asyncio.Task[None] | None = None
        self._restore_limits()

    @property
    def lease(self) -> LoopLease:
        """The loop lease this replica holds or waits for."""
        return self.leadership.lease

    @property
    def leader(self) -> bool:
        """Whether this replica holds the loop lease (and so runs the loop)."""
        return self.leadership.leader

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, *, autostart: bool) -> None:
        """Start the loop (ticking at once when ``autostart``, else paused), after restoring
        the approvals that were pending when the desk last stopped."""
        await self._pending.restore()
        self._run_flag.start(autostart=autostart)
        await self.leadership.keep_once()  # on taking the lease: _promoted
        self._keeper = asyncio.create_task(self.leadership.keep(), name="desk-lease")
        self._task = asyncio.create_task(self._supervise(), name="desk-loop")
        log.info(
            "desk.loop_started",
            mode=self.timeline.mode,
            symbol=self.symbol,
            every=self.config.every,
            next_tick_at=self._loop.cursor.isoformat(),
            running=autostart,
            replica=self.lease.owner,
            leader=self.leader,
        )

    async def aclose(self) -> None:
        """Stop the loop and any tick still running (it resumes from its checkpoint later)."""
        self._closing = True
        tasks = [t for t in (self._task, self._keeper, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.leadership.release()

    @property
    def loop_alive(self) -> bool:
        """Whether the loop task is running (it only ends on close)."""
        return self._task is not None and not self._task.done()

    # --- DeskControls ---------------------------------------------------------------------

    async def pause(self, actor: str) -> dict[str, Any]:
        """Stop ticking (the loop keeps its place); a tick in progress finishes."""
        self._run_flag.record(running=False, actor=actor)
        self._notify()
        self.store.journal(actor, "pause", {}, "ok")
        await self._publish_status("paused by " + actor)
        return self.status()

    async def resume(self, actor: str) -> dict[str, Any]:
        """Start ticking again."""
        self._run_flag.record(running=True, actor=actor)
        self._notify()
        self.store.journal(actor, "resume", {}, "ok")
        await self._publish_status("resumed by " + actor)
        return self.status()

    def status(self) -> dict[str, Any]:
        """Running or paused, symbol, cadence, last tick, pending approvals, equity: a
        :class:`~tradecast.desk.status.DeskStatus` as JSON (the model checks every key)."""
        portfolio = self.runtime.executor.portfolio()
        timeline = self.timeline
        status = {
            "state": self.state,
            "ticking": self._lock.locked(),
            "mode": timeline.mode,
            "symbol": self.symbol,
            "symbols": list(self.config.desk_symbols),
            "every": self.config.every,
            "seconds_per_tick": self.config.seconds_per_tick,
            "next_tick_at": None if self.finished else self._loop.cursor.isoformat(),
            "replay": {"from": timeline.first.isoformat(), "until": timeline.last.isoformat()}
            if timeline.last
            else None,
            "ticks": self._ticks,
            "last_tick": self._last_tick,
            "pending_approvals": self._pending.ids(),
            "equity": str(portfolio.equity),
            "kill_switch": self.runtime.executor.limits.kill_switch,
            "persona": self.persona_name,
            "error": self._error,
            "replica": self.lease.owner,
            "leader": self.leader,
            "dependencies": self.health.problems() if self.health else {},
        }
        return DeskStatus.model_validate(status).model_dump(mode="json", by_alias=True)

    def limits(self) -> RiskLimits:
        """The risk limits in force."""
        return self.runtime.executor.limits

    async def set_limits(self, actor: str, **changes: Any) -> RiskLimits:
        """Change risk limits: validated (ValueError, nothing changed), journaled, kept across
        restarts (they override the settings' values of the same limits).

        Raises:
            ValueError: a limit is invalid.
            ConfirmationRequired: a change loosens a limit a lot; nothing changed until
                :meth:`confirm_limits` with the error's token.
        """
        detail = {k: str(v) for k, v in changes.items()}
        try:
            updated_limits(self.limits(), **changes)  # an invalid change is refused at once
            self._confirmations.check(actor, self.limits(), changes)
        except ValueError as exc:
            self.store.journal(actor, "set_limits", detail, f"refused: {exc}")
            raise
        except ConfirmationRequired:
            self.store.journal(actor, "set_limits", detail, "awaiting confirmation")
            raise
        return await self._apply_limits(actor, changes)

    async def confirm_limits(self, actor: str, token: str) -> RiskLimits:
        """Apply the change ``actor`` was asked to confirm under ``token``.

        Raises:
            NotFound: no change of this actor waits under that token (or it expired).
            ValueError: the change is no longer valid.
        """
        return await self._apply_limits(actor, self._confirmations.redeem(actor, token))

    async def _apply_limits(self, actor: str, changes: dict[str, Any]) -> RiskLimits:
        detail = {k: str(v) for k, v in changes.items()}
        try:
            limits = self.runtime.executor.update_limits(**changes)
        except ValueError as exc:
            self.store.journal(actor, "set_limits", detail, f"refused: {exc}")
            raise
        overrides = {**(self.store.get_state("risk_overrides") or {}), **detail}
        self.store.set_state("risk_overrides", overrides)
        self.store.journal(actor, "set_limits", detail, "ok")
        await self.publisher.publish(
            StreamEvent(
                channel="desk",
                event="status",
                data={
                    **self.status(),
                    "reason": f"risk limits changed by {actor}",
                    "limits": limits.model_dump(mode="json"),
                },
            )
        )
        return limits

    async def decide_approval(
        self,
        actor: str,
        decision_id: str,
        approved: bool,
        observer: EventObserver | None = None,
        *,
        quantity: Decimal | None = None,
        note: str | None = None,
        tap: GraphTap | None = None,
    ) -> TickResult:
        """Approve or reject the order waiting under ``decision_id``; an approval may cut its
        ``quantity`` (never raise it); ``note`` is the human's reason, journaled; ``tap``
        gets the graph's chunks of the resumed tick.

        Raises:
            NotFound: no order waits under that id.
            DeskConflict: a shared service is down, or another replica holds the tick.
        """
        action = "approve" if approved else "reject"
        async with self._lock:
            self._check_dependencies()
            if decision_id not in self._pending:
                await self._restore_approvals()
            self._catch_up()
            pending = self._pending.get(decision_id)
            if pending is None:
                self.store.journal(
                    actor,
                    action,
                    {"decision_id": decision_id},
                    "refused: nothing pending under that id",
                )
                waiting = ", ".join(self._pending.ids()) or "none"
                raise NotFound(
                    f"no order waits for approval under {decision_id!r} (waiting: {waiting})"
                )
            thread, moment = pending
            answer = ReviewAnswer(approved, quantity, note)
            result = await self._watched(
                observer, self.runtime.runner.resume(thread, answer, moment), tap
            )
            await self._after_tick(result, moment)
        params = {"decision_id": decision_id} | {
            k: str(v) for k, v in (("quantity", quantity), ("note", note)) if v is not None
        }
        self.store.journal(actor, action, params, _approval_outcome(result))
        self._notify()
        return result

    async def force_tick(
        self, actor: str, observer: EventObserver | None = None, *, tap: GraphTap | None = None
    ) -> TickResult:
        """Run one tick now: the next replayed instant, or the latest closed bar live;
        ``tap`` gets the graph's chunks of that tick."""
        try:
            result = await self._tick(observer, tap=tap)
            assert result is not None  # only the loop's ticks are skipped
        except Exception as exc:
            self.store.journal(actor, "tick", {}, f"failed: {exc}")
            raise
        self.store.journal(
            actor,
            "tick",
            {"decision_id": result.decision.id if result.decision else None},
            result.status,
        )
        return result

    def schedule_tick(self, actor: str) -> None:
        """Start :meth:`force_tick` in the background (the API's ``wait=false``)."""
        if self.finished:
            raise DeskConflict(self._finished_message())
        task = asyncio.create_task(self._logged(self.force_tick(actor)), name="forced-tick")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def recent_decisions(self, limit: int = 5) -> list[dict[str, Any]]:
        """The latest decisions, newest first, each with ``executed`` (it filled)."""
        items, _ = self.store.decisions(limit=limit)
        return [
            {**item["decision"], "executed": bool(item["fills"])}
            for item in items
            if item.get("decision")
        ]

    # --- reads for the API ----------------------------------------------------------------

    def current_broker(self) -> Broker:
        """The broker, caught up with what other replicas journaled (as it was, when the
        journal cannot be read: the read still answers)."""
        try:
            self.runtime.broker.refresh()
        except BrokerError as exc:
            log.warning("desk.broker_refresh_failed", reason=str(exc))
        return self.runtime.broker

    def seen_until(self) -> datetime | None:
        """The latest instant the desk has decided at while replaying (the instant before the
        replay's start until its first tick; a decision waiting for approval counts), so a
        chart shows no bar the desk has not seen; None live (now). The stored cursor counts
        too: on a replica that does not run the loop, its own lags."""
        if self.timeline.last is None:
            return None
        cursor = max(self._loop.cursor, self._restore_cursor(quiet=True))
        waiting = (self._pending.get(decision_id) for decision_id in self._pending.ids())
        return max([cursor - self.timeline.step, *(p[1] for p in waiting if p is not None)])

    async def exposure(self, book: Portfolio) -> Exposure | None:
        """The book's exposure and historical VaR from the bars the desk has seen (None when
        the bars cannot be read: an exchange error live)."""
        deps = self.runtime.deps
        bar = deps.bar if deps is not None else timedelta(hours=1)
        until = self.seen_until() or utc_now()
        try:
            return await book_exposure(self.runtime.market, bar, book, until, self.limits())
        except MarketDataError as exc:
            log.warning("desk.exposure_unavailable", reason=str(exc))
            return None

    @property
    def state(self) -> DeskState:
        """What the loop is doing."""
        if self._closing:
            return "stopped"
        if self.health is not None and not self.health.healthy:
            return "degraded"
        if not self.leader:
            return "standby"
        if not self._run_flag.is_set():
            return "paused"
        if self._pending:
            return "awaiting_approval"
        if self.finished:
            return "finished"
        return "running"

    @property
    def finished(self) -> bool:
        """Whether the replay has ended (nothing is left to tick)."""
        return self._loop.finished

    async def pending_reviews(self) -> list[dict[str, Any]]:
        """The review request of each order waiting for a human, oldest first."""
        reviews = []
        for decision_id in self._pending.ids():
            tick = self.store.tick(decision_id)
            state = await self.thread_state(tick.thread_id) if tick else None
            if state and state["interrupts"]:
                reviews.append(state["interrupts"][0]["value"])
        return reviews

    async def thread_state(self, thread_id: str) -> dict[str, Any] | None:
        """A tick thread's checkpointed state as a tick report (None: no such thread)."""
        graph = self.runtime.runner.graph
        snapshot = await graph.aget_state({"configurable": {"thread_id": thread_id}})
        if not snapshot.values:
            return None
        waiting = any(task.interrupts for task in snapshot.tasks)
        report = tick_result(thread_id, snapshot.values, 0.0, resumed=True, waiting=waiting)
        interrupts = [
            {"id": i.id, "value": i.value} for task in snapshot.tasks for i in task.interrupts
        ]
        return {
            "report": report.model_dump(mode="json"),
            "next": list(snapshot.next),
            "interrupts": interrupts,
            "created_at": snapshot.created_at,
        }

    # --- the loop -------------------------------------------------------------------------

    async def _supervise(self) -> None:
        """Step the desk loop while this replica leads, the desk runs, nothing waits for
        approval and the tick is due; back off after a failed tick."""
        backoff = 1.0
        while True:
            self._changed.clear()
            if not self._may_trade():
                await self._wait(1.0)  # the lease keeper and the health monitor poll too
                continue
            if not self._run_flag.is_set() or self._pending:
                await self._wait()
                continue
            if self.finished:
                await self._announce_finish()
                await self._wait()
                continue
            delay = self._seconds_until_due()
            if delay > 0:
                await self._wait(delay)
                continue
            try:
                await self._tick(None, from_loop=True)
            except MarketDataError as exc:
                self._skip_moment(exc)
            except Exception as exc:
                self._error = f"{type(exc).__name__}: {exc}"[:500]
                log.exception("desk.tick_failed", retry_in_s=backoff)
                if self.metrics is not None:
                    self.metrics.tick_errors.labels("retried").inc()
                await self._publish_status(f"tick failed, retrying in {backoff:.0f}s")
                await self._wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            backoff = 1.0

    async def _tick(
        self,
        observer: EventObserver | None,
        *,
        from_loop: bool = False,
        tap: GraphTap | None = None,
    ) -> TickResult | None:
        async with self._lock:
            self._check_dependencies()
            async with self._exclusive_tick():
                return await self._tick_next(observer, from_loop=from_loop, tap=tap)

    async def _tick_next(
        self, observer: EventObserver | None, *, from_loop: bool, tap: GraphTap | None = None
    ) -> TickResult | None:
        """The tick itself, inside the desk's tick lock."""
        self._catch_up()
        await self._restore_approvals()
        if from_loop and not (self.leader and self._run_flag.is_set() and not self._pending):
            return None  # paused, an approval opened, or the lease went elsewhere
        if self.finished:
            raise DeskConflict(self._finished_message())
        moment, result = await self._watched(observer, self._loop.tick_next(), tap)
        await self._after_tick(result, moment)
        return result

    @contextlib.asynccontextmanager
    async def _exclusive_tick(self) -> AsyncIterator[None]:
        # Any replica may be asked for a tick: they take turns on the desk's tick lock, and
        # the catch-up inside it moves past the bar the previous holder decided.
        try:
            async with self.lease.exclusive_tick(TICK_WAIT_S):
                yield
        except TickLockError as exc:
            raise DeskConflict(str(exc)) from None

    async def _watched(
        self, observer: EventObserver | None, work: Awaitable[T], tap: GraphTap | None = None
    ) -> T:
        """``work`` (inside the tick lock), with ``observer`` told of the events it publishes
        and ``tap`` given its graph chunks."""
        stop = self.publisher.watch(observer) if observer is not None else None
        runner = self.runtime.runner
        runner.tap = tap
        try:
            return await work
        finally:
            runner.tap = None
            if stop is not None:
                stop()

    async def _after_tick(self, result: TickResult, moment: datetime) -> None:
        # a portfolio tick is one report per symbol; the first (the headline) stands for it
        previous = None
        for i, report in enumerate(result.reports()):
            replaced = self.store.record_tick(report)
            if self.metrics is not None:
                self.metrics.observe_tick(report, replaced, whole_tick=i == 0)
            previous = replaced if i == 0 else previous
        if previous is None:
            self._ticks += 1
        decision_id = result.decision_id
        self._error = None
        self._last_tick = {
            "at": moment.isoformat(),
            "decision_id": decision_id,
            "status": result.status,
            "action": result.decision.action.value if result.decision else None,
            "thread_id": result.thread_id,
        }
        self._next_due = time.monotonic() + self.config.seconds_per_tick
        if result.status == "awaiting_approval":
            await self._pending.opened(result, moment)
        else:
            self._pending.closed(decision_id)
            if moment >= self._loop.cursor:
                self._advance(moment)
            if not result.fills and not result.resumed:
                await self._publish_pnl(result.thread_id)
        for report in result.reports():
            await self._publish_recorded(report)

    def _advance(self, moment: datetime) -> None:
        self._loop.advance(moment)
        if self.timeline.resumable:
            self.store.set_state(
                self._cursor_key,
                {
                    "cursor": self._loop.cursor.isoformat(),
                    "replay_from": _iso(self.config.replay_from),
                },
            )

    def _skip_moment(self, exc: Exception) -> None:
        cursor = self._loop.cursor
        log.warning("desk.tick_skipped", at=cursor.isoformat(), reason=str(exc))
        if self.metrics is not None:
            self.metrics.tick_errors.labels("skipped").inc()
        self._error = f"skipped {cursor.isoformat()}: {exc}"[:500]
        self._advance(cursor)

    def _seconds_until_due(self) -> float:
        paced = self._next_due - time.monotonic()
        return max(0.0, paced, self._loop.seconds_until_due())

    def _finished_message(self) -> str:
        return (
            f"the replay of {self.symbol} ended at "
            f"{self.timeline.last.isoformat() if self.timeline.last else '?'}; "
            "nothing is left to tick (set TRADECAST_DESK__REPLAY_FROM to replay again)"
        )

    async def _announce_finish(self) -> None:
        if not self._announced_finish:
            self._announced_finish = True
            log.info("desk.replay_finished", symbol=self.symbol, ticks=self._ticks)
            await self._publish_status("the replay has ended")

    async def _wait(self, timeout: float | None = None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    def _notify(self) -> None:
        self._changed.set()

    async def _publish_status(self, reason: str) -> None:
        await self.publisher.publish(
            StreamEvent(channel="desk", event="status", data={**self.status(), "reason": reason})
        )

    async def _publish_recorded(self, result: TickResult) -> None:
        """Say that a tick's report is stored (and the cursor moved), so a screen that reloads
        its views on this event finds the report, its markers and the new bar."""
        await self.publisher.publish(
            StreamEvent(
                channel="desk",
                event="recorded",
                run_id=result.thread_id,
                thread_id=result.thread_id,
                data={"decision_id": result.decision_id, "status": result.status},
            )
        )

    async def _publish_pnl(self, thread_id: str) -> None:
        portfolio = self.runtime.executor.portfolio()
        await self.publisher.publish(
            StreamEvent(
                channel="desk",
                event="pnl",
                run_id=thread_id,
                thread_id=thread_id,
                data={
                    "equity": str(portfolio.equity),
                    "cash": str(portfolio.cash),
                    "realized": str(portfolio.realized_pnl),
                    "unrealized": str(portfolio.unrealized_pnl),
                },
            )
        )

    @staticmethod
    async def _logged(work: Awaitable[Any]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("desk.background_failed")

    # --- restored state -------------------------------------------------------------------

    @property
    def _cursor_key(self) -> str:
        return f"cursor:{self.symbol}:{self.config.every}"

    def _restore_cursor(self, *, quiet: bool = False) -> datetime:
        if not self.timeline.resumable:
            return self.timeline.first
        stored = self.store.get_state(self._cursor_key)
        if stored and stored.get("replay_from") == _iso(self.config.replay_from):
            cursor = datetime.fromisoformat(stored["cursor"])
            if not quiet:
                log.info("desk.cursor_restored", next_tick_at=cursor.isoformat())
            return cursor
        return self.timeline.first

    def _restore_limits(self, *, quiet: bool = False) -> None:
        overrides: dict[str, Any] = self.store.get_state("risk_overrides") or {}
        for name, value in overrides.items():
            try:
                self.runtime.executor.update_limits(**{name: value})
            except ValueError as exc:
                log.warning("desk.limit_not_restored", limit=name, value=value, reason=str(exc))
        if overrides and not quiet:
            log.info("desk.limits_restored", **overrides)

    def _order_placed(self, request: dict[str, Any]) -> bool:
        client_order_id = (request.get("intent") or {}).get("client_order_id")
        if not isinstance(client_order_id, str) or not client_order_id:
            return False
        return self.runtime.broker.order(client_order_id) is not None

    async def _restore_approvals(self) -> None:
        """Restore the pending approvals (inside the tick lock), and finish the ticks that wait
        for one although the broker holds their order: it was approved and placed before the
        desk stopped, and the checkpoint of the answer was lost. Such a tick goes on as
        approved, so it reports the order the broker holds."""
        await self._pending.restore(announce=False)
        for decision_id, (thread, moment) in self._pending.take_placed().items():
            result = await self.runtime.runner.resume(thread, ReviewAnswer(True), moment)
            await self._after_tick(result, moment)
            self.store.journal("system", "approve", {"decision_id": decision_id}, PLACED)
            log.warning("desk.approval_settled", decision_id=decision_id)

    async def _journal_cut_tick(self) -> None:
        """Journal the tick a stopped process left half done (it resumes from its
        checkpoint on the next tick), so the journal shows every tick that was started."""
        if self.finished:
            return
        moment = self.timeline.moment(self._loop.cursor)
        steps = await self.runtime.runner.cut_short(self.symbol, moment)
        if steps is None:
            return
        detail = {"decision_id": decision_id_at(self.symbol, moment), "next_steps": steps}
        self.store.journal("system", "tick", detail, INTERRUPTED)
        log.warning("desk.tick_interrupted", **detail)

    # --- replicas -------------------------------------------------------------------------

    def _may_trade(self) -> bool:
        healthy = self.health is None or self.health.healthy
        return healthy and self.leader

    def _check_dependencies(self) -> None:
        if self.health is not None and not self.health.healthy:
            problems = "; ".join(f"{k}: {v}" for k, v in self.health.problems().items())
            raise DeskConflict(f"the desk does not trade while a service is down ({problems})")

    def _catch_up(self) -> None:
        """Apply what other replicas changed: fills, limits, the cursor, approvals."""
        self.runtime.broker.refresh()
        self._restore_limits(quiet=True)
        if self.timeline.resumable:
            self._loop.cursor = max(self._loop.cursor, self._restore_cursor(quiet=True))
        self._run_flag.follow()
        self._pending.catch_up()

    async def _poll_store(self, leading: bool) -> None:
        """Read what other replicas recorded, in a worker thread: the store's calls block, and
        while its database is unreachable they would hold up the event loop (and every
        request) for their timeout."""
        pending = self._pending.ids() if leading else []

        def read() -> tuple[Any, dict[str, TickResult | None]]:
            return self._run_flag.read(), {d: self.store.tick(d) for d in pending}

        try:
            flag, ticks = await asyncio.to_thread(read)
        except Exception as exc:  # the health monitor reports the outage; try again later
            log.warning("desk.store_poll_failed", reason=str(exc)[:300])
            return
        self._run_flag.apply(flag)
        self._pending.drop_decided(ticks)

    async def _promoted(self) -> None:
        """Now the loop is ours: start from where the last holder left everything."""
        try:
            self._catch_up()
            self._run_flag.apply(self._run_flag.read(), force=True)
            async with self._lock:
                await self._restore_approvals()
            await self._journal_cut_tick()
        except Exception:
            log.exception("desk.takeover_sync_failed")


def _approval_outcome(result: TickResult) -> str:
    """What an answered approval did, as the broker saw it: an approval the gate refused at
    execution is not journaled as done."""
    if result.risk.approval == "approved" and result.order is None:
        return "refused by the risk gate: " + ("; ".join(result.risk.reasons) or "no order")
    return "ok"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None

"""The desk service: runs the desk loop and is the one way operators act on the desk.

It owns the :class:`~tradecast.bootstrap.DeskRuntime` opened by the app, and implements
:class:`~tradecast.graphs.controls.DeskControls` for the API routes and the chat-control graph
alike. Every control action is journaled (who, what, when, outcome) and every tick's report is
kept for ``GET /v1/decisions``; both live in :class:`~tradecast.desk.store.DeskStore`.

The loop ticks one symbol at the ``desk.every`` cadence:

- **replay** (the bundled candles, the default): from ``desk.replay_from`` (default: the first
  instant with ``desk.candles`` bars of context) through the last bar, waiting
  ``desk.seconds_per_tick`` of wall time between ticks. Where it is up to is stored, so a
  restart goes on from there (and resumes a tick cut short, from its checkpoint).
- **live** (ccxt): each tick when a new ``every`` bar has closed.

Only one tick runs at a time (an asyncio lock), whether the loop, an operator or an approval
started it. While an order waits for approval the loop waits too: a human-in-the-loop desk
does not trade past an open question.

Scaled out, several replicas share the store, the journal and the checkpoints, and only the
holder of the loop lease (:mod:`tradecast.desk.lease`) runs the loop; the others stand by,
serve reads and controls, and take over when the holder's lease expires. The desk does not
tick while a shared service is down (:mod:`tradecast.desk.health`). Before each tick it
catches up with what other replicas wrote: the broker's journal, the replay cursor, the risk
limits and the approvals decided elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from tradecast.broker.paper import Broker
from tradecast.desk.health import HealthMonitor
from tradecast.desk.lease import LocalLease, LoopLease
from tradecast.desk.metrics import Metrics
from tradecast.desk.publisher import EventObserver, EventPublisher
from tradecast.desk.runtime import DeskRuntime
from tradecast.desk.store import DeskStore
from tradecast.domain import StreamEvent, utc_now
from tradecast.errors import BrokerError, DeskConflict, MarketDataError, TickLockError
from tradecast.graphs.runner import TickResult, tick_result
from tradecast.logs import get_logger
from tradecast.market.closed_bars import parse_timeframe
from tradecast.settings import DeskConfig, RiskLimits

log = get_logger(__name__)
LIVE_GRACE = timedelta(seconds=5)
"""How long after a bar's close a live tick waits for the exchange to publish it."""
MAX_BACKOFF_S = 60.0
# how long a tick waits for another replica's tick of the same desk (embedded: ~10-30 s)
TICK_WAIT_S = 120.0
RUN_FLAG_KEY = "desk_running"
DeskState = Literal[
    "running", "paused", "awaiting_approval", "finished", "stopped", "standby", "degraded"
]


@dataclass(frozen=True)
class Timeline:
    """When the desk ticks: a replay between two instants, or live from now on."""

    mode: Literal["replay", "live"]
    step: timedelta
    first: datetime
    last: datetime | None = None
    """Replay only: the close of the last bar (nothing can be decided after it)."""

    def finished(self, moment: datetime) -> bool:
        """Whether ``moment`` is past the end of the replay."""
        return self.last is not None and moment > self.last


def floor_instant(moment: datetime, step: timedelta) -> datetime:
    """``moment`` rounded down to a whole multiple of ``step`` since the epoch."""
    seconds = step.total_seconds()
    return datetime.fromtimestamp(moment.timestamp() // seconds * seconds, UTC)


def build_timeline(runtime: DeskRuntime, config: DeskConfig, bar: timedelta) -> Timeline:
    """The replay's span when the market is a replay, else a live timeline from now."""
    step = parse_timeframe(config.every)
    source = getattr(runtime.market, "market", runtime.market)
    span = getattr(source, "span", None)
    if span is None:
        return Timeline("live", step, floor_instant(utc_now(), step))
    first_open, last_open = span(config.symbol)
    last = last_open + bar
    earliest = first_open + bar * config.candles
    first = config.replay_from or floor_instant(earliest + step - timedelta(microseconds=1), step)
    if first > last:
        raise DeskConflict(
            f"TRADECAST_DESK__REPLAY_FROM {first.isoformat()} is after the replay of "
            f"{config.symbol} ends ({last.isoformat()})"
        )
    return Timeline("replay", step, first, last)


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
        self.lease = lease or LocalLease()
        self.health = health
        self.leader = False
        self.store = store
        self.publisher = publisher
        self.metrics = metrics
        self.persona_name = persona_name
        self.config = runtime.settings.desk
        self.symbol = self.config.symbol
        self.bar = parse_timeframe(runtime.settings.market.timeframe)
        self.timeline = build_timeline(runtime, self.config, self.bar)
        self._lock = asyncio.Lock()
        self._running = asyncio.Event()
        self._changed = asyncio.Event()
        self._cursor = self._restore_cursor()
        self._pending: dict[str, tuple[str, datetime]] = {}
        self._next_due = 0.0
        self._ticks = 0
        self._last_tick: dict[str, Any] | None = None
        self._error: str | None = None
        self._announced_finish = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._keeper: asyncio.Task[None] | None = None
        self._run_flag_seen: Any = store.get_state(RUN_FLAG_KEY)
        self._restore_limits()

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, *, autostart: bool) -> None:
        """Start the loop (ticking at once when ``autostart``, else paused), after restoring
        the approvals that were pending when the desk last stopped."""
        await self._restore_pending()
        stored = self._run_flag_seen
        # A pause or resume an operator recorded outlives restarts and failovers: a paused
        # desk must not start trading because a replica came up with autostart on.
        if stored["running"] if stored else autostart:
            self._running.set()
        await self._keep_lease_once()
        self._keeper = asyncio.create_task(self._keep_lease(), name="desk-lease")
        self._task = asyncio.create_task(self._loop(), name="desk-loop")
        log.info(
            "desk.loop_started",
            mode=self.timeline.mode,
            symbol=self.symbol,
            every=self.config.every,
            next_tick_at=self._cursor.isoformat(),
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
        if self.leader:
            await self.lease.release()
            self.leader = False

    @property
    def loop_alive(self) -> bool:
        """Whether the loop task is running (it only ends on close)."""
        return self._task is not None and not self._task.done()

    # --- DeskControls ---------------------------------------------------------------------

    async def pause(self, actor: str) -> dict[str, Any]:
        """Stop ticking (the loop keeps its place); a tick in progress finishes."""
        self._running.clear()
        self._share_run_flag(actor)
        self._notify()
        self.store.journal(actor, "pause", {}, "ok")
        await self._publish_status("paused by " + actor)
        return self.status()

    async def resume(self, actor: str) -> dict[str, Any]:
        """Start ticking again."""
        self._running.set()
        self._share_run_flag(actor)
        self._notify()
        self.store.journal(actor, "resume", {}, "ok")
        await self._publish_status("resumed by " + actor)
        return self.status()

    def status(self) -> dict[str, Any]:
        """Running or paused, symbol, cadence, last tick, pending approvals, equity."""
        portfolio = self.runtime.executor.portfolio()
        timeline = self.timeline
        return {
            "state": self.state,
            "ticking": self._lock.locked(),
            "mode": timeline.mode,
            "symbol": self.symbol,
            "every": self.config.every,
            "seconds_per_tick": self.config.seconds_per_tick,
            "next_tick_at": None if self._finished() else self._cursor.isoformat(),
            "replay": {"from": timeline.first.isoformat(), "until": timeline.last.isoformat()}
            if timeline.last
            else None,
            "ticks": self._ticks,
            "last_tick": self._last_tick,
            "pending_approvals": sorted(self._pending),
            "equity": str(portfolio.equity),
            "kill_switch": self.runtime.executor.limits.kill_switch,
            "persona": self.persona_name,
            "error": self._error,
            "replica": self.lease.owner,
            "leader": self.leader,
            "dependencies": self.health.problems() if self.health else {},
        }

    def limits(self) -> RiskLimits:
        """The risk limits in force."""
        return self.runtime.executor.limits

    async def set_limits(self, actor: str, **changes: Any) -> RiskLimits:
        """Change risk limits: validated (ValueError, nothing changed), journaled, kept across
        restarts (they override the settings' values of the same limits)."""
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
    ) -> TickResult:
        """Approve or reject the order waiting under ``decision_id`` (KeyError: none waits)."""
        action = "approve" if approved else "reject"
        async with self._lock:
            self._check_dependencies()
            if decision_id not in self._pending:
                await self._restore_pending(announce=False)
            self._catch_up()
            pending = self._pending.get(decision_id)
            if pending is None:
                self.store.journal(
                    actor,
                    action,
                    {"decision_id": decision_id},
                    "refused: nothing pending under that id",
                )
                waiting = ", ".join(sorted(self._pending)) or "none"
                raise KeyError(
                    f"no order waits for approval under {decision_id!r} (waiting: {waiting})"
                )
            thread, moment = pending
            result = await self._watched(
                observer, self.runtime.runner.resume(thread, approved, moment)
            )
            await self._after_tick(result, moment)
        self.store.journal(actor, action, {"decision_id": decision_id}, "ok")
        self._notify()
        return result

    async def force_tick(self, actor: str, observer: EventObserver | None = None) -> TickResult:
        """Run one tick now: the next replayed instant, or the latest closed bar live."""
        try:
            result = await self._tick(observer)
            assert result is not None  # only the loop's ticks are skipped
        except Exception as exc:
            self.store.journal(actor, "tick", {}, f"failed: {exc}")
            raise
        self.store.journal(
            actor, "tick", {"decision_id": (result.decision or {}).get("id")}, result.status
        )
        return result

    def schedule_tick(self, actor: str) -> None:
        """Start :meth:`force_tick` in the background (the API's ``wait=false``)."""
        if self._finished():
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

    @property
    def state(self) -> DeskState:
        """What the loop is doing."""
        if self._closing:
            return "stopped"
        if self.health is not None and not self.health.healthy:
            return "degraded"
        if not self.leader:
            return "standby"
        if not self._running.is_set():
            return "paused"
        if self._pending:
            return "awaiting_approval"
        if self._finished():
            return "finished"
        return "running"

    @property
    def finished(self) -> bool:
        """Whether the replay has ended (nothing is left to tick)."""
        return self._finished()

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

    async def _loop(self) -> None:
        backoff = 1.0
        while True:
            self._changed.clear()
            if not self._may_trade():
                await self._wait(1.0)  # the lease keeper and the health monitor poll too
                continue
            if not self._running.is_set() or self._pending:
                await self._wait()
                continue
            if self._finished():
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
        self, observer: EventObserver | None, *, from_loop: bool = False
    ) -> TickResult | None:
        async with self._lock:
            self._check_dependencies()
            async with self._exclusive_tick():
                return await self._tick_next(observer, from_loop=from_loop)

    async def _tick_next(
        self, observer: EventObserver | None, *, from_loop: bool
    ) -> TickResult | None:
        """The tick itself, inside the desk's tick lock."""
        self._catch_up()
        await self._restore_pending(announce=False)
        if from_loop and not (self.leader and self._running.is_set() and not self._pending):
            return None  # paused, an approval opened, or the lease went elsewhere
        if self._finished():
            raise DeskConflict(self._finished_message())
        moment = self._cursor
        if self.timeline.mode == "live":
            moment = min(moment, floor_instant(utc_now(), self.timeline.step))
        result = await self._watched(observer, self.runtime.runner.tick(self.symbol, moment))
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

    async def _watched(self, observer: EventObserver | None, work: Any) -> TickResult:
        stop = self.publisher.watch(observer) if observer is not None else None
        try:
            result: TickResult = await work
        finally:
            if stop is not None:
                stop()
        return result

    async def _after_tick(self, result: TickResult, moment: datetime) -> None:
        previous = self.store.record_tick(result)
        if self.metrics is not None:
            self.metrics.observe_tick(result, previous)
        if previous is None:
            self._ticks += 1
        decision = result.decision or {}
        decision_id = decision.get("id", result.thread_id)
        self._error = None
        self._last_tick = {
            "at": moment.isoformat(),
            "decision_id": decision_id,
            "status": result.status,
            "action": decision.get("action"),
            "thread_id": result.thread_id,
        }
        self._next_due = time.monotonic() + self.config.seconds_per_tick
        if result.status == "awaiting_approval":
            restored = decision_id not in self._pending and result.resumed
            self._pending[decision_id] = (result.thread_id, moment)
            if restored:
                await self.publisher.publish(
                    StreamEvent(
                        channel="desk",
                        event="approval_pending",
                        run_id=result.thread_id,
                        thread_id=result.thread_id,
                        data={"decision_id": decision_id, "restored": True},
                    )
                )
            return
        self._pending.pop(decision_id, None)
        if moment >= self._cursor:
            self._advance(moment)
        if not result.fills and not result.resumed:
            await self._publish_pnl(result.thread_id)

    def _advance(self, moment: datetime) -> None:
        self._cursor = moment + self.timeline.step
        if self.timeline.mode == "replay":
            self.store.set_state(
                self._cursor_key,
                {
                    "cursor": self._cursor.isoformat(),
                    "replay_from": _iso(self.config.replay_from),
                },
            )

    def _skip_moment(self, exc: Exception) -> None:
        log.warning("desk.tick_skipped", at=self._cursor.isoformat(), reason=str(exc))
        if self.metrics is not None:
            self.metrics.tick_errors.labels("skipped").inc()
        self._error = f"skipped {self._cursor.isoformat()}: {exc}"[:500]
        self._advance(self._cursor)

    def _seconds_until_due(self) -> float:
        wait = self._next_due - time.monotonic()
        if self.timeline.mode == "live":
            due = self._cursor + LIVE_GRACE
            wait = max(wait, (due - utc_now()).total_seconds())
        return max(0.0, wait)

    def _finished(self) -> bool:
        return self.timeline.finished(self._cursor)

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
    async def _logged(work: Any) -> None:
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
        if self.timeline.mode == "live":
            return self.timeline.first
        stored = self.store.get_state(self._cursor_key)
        if stored and stored.get("replay_from") == _iso(self.config.replay_from):
            cursor = datetime.fromisoformat(stored["cursor"])
            if not quiet:
                log.info("desk.cursor_restored", next_tick_at=cursor.isoformat())
            return cursor
        return self.timeline.first

    async def _restore_pending(self, *, announce: bool = True) -> None:
        for tick in self.store.awaiting_approval():
            state = await self.thread_state(tick.thread_id)
            decision = tick.decision or {}
            if state is None or not state["interrupts"] or "decided_at" not in decision:
                continue
            moment = datetime.fromisoformat(decision["decided_at"].replace("Z", "+00:00"))
            self._pending[decision["id"]] = (tick.thread_id, moment)
            if not announce:
                continue
            await self.publisher.publish(
                StreamEvent(
                    channel="desk",
                    event="approval_pending",
                    run_id=tick.thread_id,
                    thread_id=tick.thread_id,
                    data={**state["interrupts"][0]["value"], "restored": True},
                )
            )
        if self._pending:
            log.info("desk.approvals_restored", pending=sorted(self._pending))

    def _restore_limits(self, *, quiet: bool = False) -> None:
        overrides: dict[str, Any] = self.store.get_state("risk_overrides") or {}
        for name, value in overrides.items():
            try:
                self.runtime.executor.update_limits(**{name: value})
            except ValueError as exc:
                log.warning("desk.limit_not_restored", limit=name, value=value, reason=str(exc))
        if overrides and not quiet:
            log.info("desk.limits_restored", **overrides)

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
        if self.timeline.mode == "replay":
            self._cursor = max(self._cursor, self._restore_cursor(quiet=True))
        self._follow_run_flag()
        self._catch_up_approvals()

    async def _keep_lease(self) -> None:
        interval = min(self.lease.ttl_s / 3, 5.0)
        while True:
            await asyncio.sleep(interval)
            await self._keep_lease_once()

    async def _keep_lease_once(self) -> None:
        try:
            held = await self.lease.acquire()
        except Exception as exc:  # a lease we cannot renew is a lease we may have lost
            held = False
            log.warning("desk.lease_unreachable", reason=str(exc))
        if self.health is None or self.health.healthy:
            await self._poll_store(held and self.leader)
        if held and self.leader:
            return
        if held != self.leader:
            self.leader = held
            log.info(
                "desk.lease_acquired" if held else "desk.lease_lost",
                replica=self.lease.owner,
                symbol=self.symbol,
            )
            if held:
                await self._promoted()
            self._notify()

    def _share_run_flag(self, actor: str) -> None:
        """Record pause/resume in the store, so the replica running the loop follows it."""
        flag = {"running": self._running.is_set(), "by": actor, "at": utc_now().isoformat()}
        self.store.set_state(RUN_FLAG_KEY, flag)
        self._run_flag_seen = flag

    async def _poll_store(self, leading: bool) -> None:
        """Read what other replicas recorded, in a worker thread: the store's calls block, and
        while its database is unreachable they would hold up the event loop (and every
        request) for their timeout."""
        pending = list(self._pending) if leading else []

        def read() -> tuple[Any, dict[str, TickResult | None]]:
            return self.store.get_state(RUN_FLAG_KEY), {d: self.store.tick(d) for d in pending}

        try:
            flag, ticks = await asyncio.to_thread(read)
        except Exception as exc:  # the health monitor reports the outage; try again later
            log.warning("desk.store_poll_failed", reason=str(exc)[:300])
            return
        self._apply_run_flag(flag)
        self._drop_decided(ticks)

    def _follow_run_flag(self) -> None:
        """Apply a pause or resume another replica recorded since this one last looked (at
        start the settings' ``autostart`` decides, as without replicas)."""
        self._apply_run_flag(self.store.get_state(RUN_FLAG_KEY))

    def _apply_run_flag(self, flag: Any, *, force: bool = False) -> None:
        if flag is None or (flag == self._run_flag_seen and not force):
            return
        self._run_flag_seen = flag
        if flag["running"]:
            self._running.set()
        else:
            self._running.clear()
        log.info("desk.run_flag_followed", running=flag["running"], by=flag.get("by"))
        self._notify()

    def _catch_up_approvals(self) -> None:
        """Drop approvals another replica decided (so the loop does not wait for them)."""
        self._drop_decided({d: self.store.tick(d) for d in list(self._pending)})

    def _drop_decided(self, ticks: dict[str, TickResult | None]) -> None:
        before = len(self._pending)
        for decision_id, tick in ticks.items():
            if tick is not None and tick.status != "awaiting_approval":
                self._pending.pop(decision_id, None)
        if len(self._pending) != before:
            self._notify()

    async def _promoted(self) -> None:
        """Now the loop is ours: start from where the last holder left everything."""
        try:
            self._catch_up()
            self._apply_run_flag(self.store.get_state(RUN_FLAG_KEY), force=True)
            await self._restore_pending(announce=False)
        except Exception:
            log.exception("desk.takeover_sync_failed")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None

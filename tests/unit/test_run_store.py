"""One run at a time per thread, and what each multitask strategy does to the run in
flight; cancellation that keeps or undoes what a run wrote. Jobs here are scripted: they
wait on events the test sets, so nothing depends on timing."""

from __future__ import annotations

import asyncio

import pytest

from tradecast.api.runs import MAX_QUEUED, RunJob, RunRecord, RunStatus, RunStore, ThreadBusy


class Job:
    """A run that writes to a thread's log, then waits until released."""

    def __init__(self, log: list[str], name: str, undoable: bool = True) -> None:
        self.log, self.name = log, name
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.undone = False
        self.job = RunJob(self.execute, self.rollback if undoable else None)

    async def execute(self, run: RunRecord) -> RunStatus:
        self.log.append(self.name)
        self.started.set()
        await self.release.wait()
        run.append("values", {"log": list(self.log)})
        return "success"

    async def rollback(self, run: RunRecord) -> None:
        self.undone = True
        self.log.remove(self.name)


async def test_reject_refuses_a_second_run_while_one_is_in_flight() -> None:
    store, log = RunStore(), []
    first = Job(log, "first")
    run = store.start("t", "chat", first.job, strategy="reject")
    with pytest.raises(ThreadBusy, match="already running"):
        store.start("t", "chat", Job(log, "second").job, strategy="reject")
    store.start("other", "chat", Job(log, "elsewhere").job, strategy="reject")
    first.release.set()
    await run.wait()
    assert run.status == "success"
    await store.aclose()


async def test_enqueue_runs_in_turn() -> None:
    store, log = RunStore(), []
    first, second = Job(log, "first"), Job(log, "second")
    one = store.start("t", "chat", first.job, strategy="enqueue")
    two = store.start("t", "chat", second.job, strategy="enqueue")
    await first.started.wait()
    assert (one.status, two.status) == ("running", "pending") and log == ["first"]
    first.release.set()
    await second.started.wait()
    second.release.set()
    await two.wait()
    assert log == ["first", "second"] and two.values() == {"log": ["first", "second"]}
    await store.aclose()


async def test_interrupt_cancels_the_run_in_flight_and_keeps_what_it_wrote() -> None:
    store, log = RunStore(), []
    first, second = Job(log, "first"), Job(log, "second")
    one = store.start("t", "chat", first.job)
    await first.started.wait()
    two = store.start("t", "chat", second.job, strategy="interrupt")
    await one.wait()
    assert one.status == "interrupted" and one.error() is None and not first.undone
    second.release.set()
    await two.wait()
    assert log == ["first", "second"] and store.get(one.run_id) is one
    await store.aclose()


async def test_rollback_undoes_the_run_in_flight_and_forgets_it() -> None:
    store, log = RunStore(), []
    first, second = Job(log, "first"), Job(log, "second")
    one = store.start("t", "chat", first.job)
    await first.started.wait()
    two = store.start("t", "chat", second.job, strategy="rollback")
    second.release.set()
    await two.wait()
    assert first.undone and log == ["second"] and store.get(one.run_id) is None
    await store.aclose()


async def test_a_run_that_cannot_be_undone_refuses_rollback() -> None:
    store, log = RunStore(), []
    tick = Job(log, "tick", undoable=False)
    run = store.start("desk", "desk", tick.job)
    await tick.started.wait()
    with pytest.raises(ThreadBusy, match="cannot be rolled back"):
        store.start("desk", "desk", Job(log, "next").job, strategy="rollback")
    with pytest.raises(ThreadBusy, match="cannot be rolled back"):
        store.cancel(run, "rollback")
    store.cancel(run, "interrupt")
    await run.wait()
    assert run.status == "interrupted" and log == ["tick"]
    await store.aclose()


async def test_a_pending_run_can_be_cancelled_before_it_starts() -> None:
    store, log = RunStore(), []
    first, second = Job(log, "first"), Job(log, "second")
    one = store.start("t", "chat", first.job)
    two = store.start("t", "chat", second.job, strategy="enqueue")
    store.cancel(two)
    await two.wait()
    first.release.set()
    await one.wait()
    assert two.status == "interrupted" and log == ["first"]
    await store.aclose()


async def test_a_runaway_queue_is_refused_and_ended_runs_can_be_deleted() -> None:
    store, log = RunStore(), []
    jobs = [Job(log, f"r{n}") for n in range(MAX_QUEUED)]
    runs = [store.start("t", "chat", j.job, strategy="enqueue") for j in jobs]
    with pytest.raises(ThreadBusy, match="wait on thread"):
        store.start("t", "chat", Job(log, "one too many").job, strategy="enqueue")
    with pytest.raises(ThreadBusy, match="cancel it first"):
        store.delete(runs[0])
    for job in jobs:
        job.release.set()
    await runs[-1].wait()
    store.delete(runs[0])
    assert store.get(runs[0].run_id) is None
    await store.aclose()


async def test_a_stopping_server_ends_runs_with_an_error() -> None:
    store = RunStore()
    job = Job([], "slow")
    run = store.start("t", "chat", job.job)
    await job.started.wait()
    await store.aclose()
    assert run.status == "error" and run.error()["message"] == "the server is stopping"


async def test_a_second_cancel_during_a_rollback_still_ends_the_run() -> None:
    store, log = RunStore(), []
    undoing, undone = asyncio.Event(), asyncio.Event()

    async def slow_undo(run: RunRecord) -> None:
        undoing.set()
        await undone.wait()

    job = Job(log, "first")
    job.job.rollback = slow_undo
    run = store.start("t", "chat", job.job)
    await job.started.wait()
    store.cancel(run, "rollback")
    await undoing.wait()
    run._task.cancel()  # a second cancel (the server stopping) while the undo runs
    await run.wait()
    assert run.status == "interrupted" and store.get(run.run_id) is None
    undone.set()
    await store.aclose()


async def test_a_failed_undo_ends_the_run_and_says_so() -> None:
    store = RunStore()

    async def broken_undo(run: RunRecord) -> None:
        raise RuntimeError("disk full")

    job = Job([], "first")
    job.job.rollback = broken_undo
    run = store.start("t", "chat", job.job)
    await job.started.wait()
    store.cancel(run, "rollback")
    await run.wait()
    assert run.status == "interrupted" and run.error()["error"] == "RollbackFailed"
    assert store.get(run.run_id) is run, "kept: what it wrote is still there"
    await store.aclose()


async def test_old_runs_are_forgotten_past_one_still_in_flight() -> None:
    store = RunStore(keep=3)
    slow = Job([], "slow")
    in_flight = store.start("busy", "chat", slow.job)
    ended = []
    for n in range(10):
        quick = Job([], f"q{n}")
        quick.release.set()
        run = store.start(f"t{n}", "chat", quick.job)
        await run.wait()
        ended.append(run)
    assert store.get(in_flight.run_id) is in_flight
    assert [r for r in ended if store.get(r.run_id)] == ended[-2:]
    slow.release.set()
    await store.aclose()

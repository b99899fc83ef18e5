"""The speaking queue's rules, on an injected clock: order, no overlap, drop, priority."""

from __future__ import annotations

import asyncio

from tradecast.voice.queue import CHARS_PER_SECOND, Line, SpeakingQueue


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def words(seconds: float, tag: str = "") -> str:
    """Text a voice needs about ``seconds`` to say."""
    return (tag + " " + "x" * int(seconds * CHARS_PER_SECOND))[: int(seconds * CHARS_PER_SECOND)]


def test_lines_come_out_in_the_order_they_went_in() -> None:
    queue = SpeakingQueue(max_backlog_s=60, clock=Clock())
    for n in range(3):
        assert queue.put(Line(f"line {n}")) == []
    assert [queue.take().text for _ in range(3)] == ["line 0", "line 1", "line 2"]  # type: ignore[union-attr]
    assert queue.take() is None


def test_announced_lines_never_overlap() -> None:
    clock = Clock()
    queue = SpeakingQueue(max_backlog_s=60, clock=clock)
    queue.announced(Line("a"), 3.0)
    queue.announced(Line("b"), 2.0)  # starts when "a" ends
    assert queue.playing_for_s == 5.0
    clock.now += 4.0
    assert queue.playing_for_s == 1.0
    clock.now += 10.0
    queue.announced(Line("c"), 1.0)  # nothing playing: starts now
    assert queue.playing_for_s == 1.0


def test_small_talk_past_the_backlog_is_dropped_oldest_first() -> None:
    clock = Clock()
    queue = SpeakingQueue(max_backlog_s=10, clock=clock)
    queue.announced(Line("now playing"), 4.0)
    assert queue.put(Line(words(5, "first"))) == []
    assert queue.put(Line(words(4, "second"))) == []  # heard 4 + 5 = 9 s from now: fits
    dropped = queue.put(Line(words(2, "third")))  # 4 + 5 + 4 > 10: the oldest waiting goes
    assert [d.text.split()[0] for d in dropped] == ["first"]
    assert [line.text.split()[0] for line in (queue.take(), queue.take())] == ["second", "third"]  # type: ignore[union-attr]
    assert queue.take() is None
    clock.now += 4.0
    assert queue.put(Line(words(30, "long"))) == [], "a long line alone is always said"


def test_a_line_that_cannot_be_heard_in_time_is_dropped_itself() -> None:
    queue = SpeakingQueue(max_backlog_s=5, clock=Clock())
    queue.announced(Line("long"), 8.0)  # it would start 8 s from now
    late = Line(words(1, "late"))
    assert queue.put(late) == [late]
    assert len(queue) == 0


def test_a_risk_line_goes_first_is_never_dropped_and_interrupts_small_talk() -> None:
    clock = Clock()
    queue = SpeakingQueue(max_backlog_s=5, clock=clock)
    queue.announced(Line("small talk"), 8.0)
    queue.put(Line("waiting small talk"))
    stop = Line("Stop-loss hit.", priority="risk")
    assert queue.put(stop) == []
    assert queue.take() == stop
    assert queue.announced(stop, 1.5) is True, "it cuts the small talk short"
    assert queue.playing_for_s == 1.5
    clock.now += 2.0
    assert queue.announced(Line("after"), 1.0) is False


async def test_next_waits_for_a_line() -> None:
    queue = SpeakingQueue(max_backlog_s=60, clock=Clock())
    waiting = asyncio.create_task(queue.next())
    await asyncio.sleep(0)
    assert not waiting.done()
    queue.put(Line("hello"))
    assert (await asyncio.wait_for(waiting, 1)).text == "hello"

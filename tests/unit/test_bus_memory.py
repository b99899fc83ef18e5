"""What only the in-process bus promises (the shared contract is in tests/contract)."""

from __future__ import annotations

from tradecast.bus import InProcessEventBus, parse_event_id
from tradecast.domain import StreamEvent


def event(n: int) -> StreamEvent:
    return StreamEvent(channel="desk", event="decision", data={"n": n})


async def test_ids_keep_increasing_when_the_clock_steps_back():
    times = iter([1000, 1000, 1005, 1005, 990, 1010])
    bus = InProcessEventBus(clock_ms=lambda: next(times))
    ids = [(await bus.publish(event(i))).id for i in range(5)]
    assert ids == ["1000-1", "1005-0", "1005-1", "1005-2", "1010-0"]
    assert [parse_event_id(i) for i in ids] == sorted(parse_event_id(i) for i in ids)


async def test_ids_from_a_previous_run_are_older_than_a_new_bus():
    first = InProcessEventBus(clock_ms=lambda: 1000)
    old = await first.publish(event(0))
    second = InProcessEventBus(clock_ms=lambda: 2000)
    await second.publish(event(1))
    subscription = second.subscribe("desk", after=old.id)
    resync = await anext(subscription)
    assert "before the server started" in resync.reason
    assert (await anext(subscription)).data == {"n": 1}


async def test_stats_count_published_buffered_and_dropped():
    bus = InProcessEventBus(buffer_size=3, queue_size=1)
    bus.subscribe("desk")
    for i in range(5):
        await bus.publish(event(i))
    assert bus.stats()["desk"] == {"published": 5, "buffered": 3, "subscribers": 0, "dropped": 1}

"""The EventBus contract, run against every implementation.

Add an implementation by adding a factory to ``BUS_FACTORIES``: it gets the replay buffer size
and the per-subscriber queue size and returns a fresh, empty bus. Redis Streams runs on the
machine's Redis, on a fresh key prefix (``MAXLEN`` = buffer size), without an archive: with
one, ids the stream lost are answered from PostgreSQL instead of a resync (see
tests/scaleout/test_redis_bus.py).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from support.services import REDIS_URL
from tradecast.bus import (
    BEGINNING,
    EventBus,
    InProcessEventBus,
    Resync,
    SubscriberDropped,
    parse_event_id,
)
from tradecast.domain import StreamEvent

BusFactory = Callable[..., Awaitable[EventBus]]


async def _in_process(buffer_size: int = 100, queue_size: int = 50) -> EventBus:
    return InProcessEventBus(buffer_size=buffer_size, queue_size=queue_size)


async def _redis_streams(buffer_size: int = 100, queue_size: int = 50) -> EventBus:
    from redis.asyncio import Redis

    from tradecast.bus.redis_streams import RedisStreamBus

    if _redis.namespace is None:
        raise RuntimeError("the redis bus factory needs the namespace fixture")
    client = Redis.from_url(REDIS_URL)
    _redis.clients.append(client)
    return RedisStreamBus(
        client, namespace=_redis.namespace, maxlen=buffer_size, queue_size=queue_size
    )


@dataclass
class _RedisState:
    namespace: str | None = None
    clients: list = field(default_factory=list)


_redis = _RedisState()
BUS_FACTORIES: dict[str, BusFactory] = {
    "in-process": _in_process,
    "redis-streams": _redis_streams,
}


@pytest.fixture(params=sorted(BUS_FACTORIES))
async def make_bus(request: pytest.FixtureRequest) -> AsyncIterator[BusFactory]:
    made: list[EventBus] = []
    if request.param == "redis-streams":
        request.applymarker(pytest.mark.scaleout)
        _redis.namespace = request.getfixturevalue("namespace")

    async def factory(**sizes: int) -> EventBus:
        bus = await BUS_FACTORIES[request.param](**sizes)
        made.append(bus)
        return bus

    yield factory
    for bus in made:
        await bus.aclose()
    for client in _redis.clients:
        await client.aclose()
    _redis.clients.clear()
    _redis.namespace = None


def event(n: int, channel: str = "desk") -> StreamEvent:
    return StreamEvent(channel=channel, event="decision", data={"n": n})  # type: ignore[arg-type]


async def take(subscription, count: int, timeout: float = 2.0) -> list:
    items = []
    async with asyncio.timeout(timeout):
        async for item in subscription:
            items.append(item)
            if len(items) == count:
                break
    return items


def numbers(items: list) -> list[int]:
    return [item.data["n"] for item in items if isinstance(item, StreamEvent)]


async def test_ids_increase_per_channel_and_parse(make_bus):
    bus = await make_bus()
    desk = [await bus.publish(event(i)) for i in range(20)]
    persona = [await bus.publish(event(i, "persona")) for i in range(3)]
    ids = [parse_event_id(e.id) for e in desk]
    assert ids == sorted(ids) and len(set(ids)) == 20
    assert all(e.id for e in persona)
    assert await bus.last_id("desk") == desk[-1].id
    assert await bus.last_id("market") is None
    assert [e.data["n"] for e in await bus.latest("desk", 3)] == [17, 18, 19]


async def test_a_new_subscriber_gets_only_what_comes_next(make_bus):
    bus = await make_bus()
    await bus.publish(event(0))
    subscription = bus.subscribe("desk")
    await bus.publish(event(1))
    await bus.publish(event(2))
    assert numbers(await take(subscription, 2)) == [1, 2]
    await subscription.aclose()


async def test_resume_replays_what_was_missed_then_goes_live(make_bus):
    bus = await make_bus()
    published = [await bus.publish(event(i)) for i in range(10)]
    subscription = bus.subscribe("desk", after=published[3].id)
    await bus.publish(event(10))
    items = await take(subscription, 7)
    assert numbers(items) == list(range(4, 11))
    assert [i.id for i in items[:6]] == [e.id for e in published[4:]]
    await subscription.aclose()


async def test_beginning_means_everything_still_held(make_bus):
    bus = await make_bus()
    for i in range(5):
        await bus.publish(event(i))
    subscription = bus.subscribe("desk", after=BEGINNING)
    assert numbers(await take(subscription, 5)) == [0, 1, 2, 3, 4]
    await subscription.aclose()


async def test_an_id_older_than_the_buffer_says_resync_and_skips_nothing_held(make_bus):
    bus = await make_bus(buffer_size=100)
    published = [await bus.publish(event(i)) for i in range(150)]
    subscription = bus.subscribe("desk", after=published[10].id)
    items = await take(subscription, 101)
    resync = items[0]
    assert isinstance(resync, Resync)
    assert "older than the replay buffer" in resync.reason
    assert parse_event_id(resync.resume_id) < parse_event_id(published[50].id)
    assert parse_event_id(resync.resume_id) >= parse_event_id(published[49].id)
    assert numbers(items[1:]) == list(range(50, 150))
    await subscription.aclose()
    # resuming from the resync's id is continuous: no second resync
    again = bus.subscribe("desk", after=resync.resume_id)
    assert numbers(await take(again, 100)) == list(range(50, 150))
    await again.aclose()


async def test_an_id_from_before_the_bus_started_says_resync(make_bus):
    bus = await make_bus()
    await bus.publish(event(0))
    subscription = bus.subscribe("desk", after="1-0")
    items = await take(subscription, 2)
    assert isinstance(items[0], Resync) and numbers(items[1:]) == [0]
    await subscription.aclose()


async def test_an_id_ahead_of_the_stream_says_resync_then_goes_live(make_bus):
    bus = await make_bus()
    await bus.publish(event(0))
    subscription = bus.subscribe("desk", after="99999999999999-0")
    await bus.publish(event(1))
    items = await take(subscription, 2)
    assert isinstance(items[0], Resync) and "ahead" in items[0].reason
    assert numbers(items[1:]) == [1]
    await subscription.aclose()


@pytest.mark.parametrize("bad", ["abc", "12-x", "-1", "1-2-3", ""])
async def test_a_malformed_id_is_refused(make_bus, bad):
    bus = await make_bus()
    with pytest.raises(ValueError, match="milliseconds"):
        bus.subscribe("desk", after=bad)


async def test_a_slow_subscriber_is_dropped_and_never_slows_the_others(make_bus):
    bus = await make_bus(buffer_size=1000, queue_size=10)
    slow = bus.subscribe("desk")
    fast = bus.subscribe("desk")
    received: list[int] = []

    async def read_fast() -> None:
        async for item in fast:
            received.append(item.data["n"])
            if len(received) == 200:
                return

    reader = asyncio.create_task(read_fast())
    for i in range(200):
        await bus.publish(event(i))  # never blocks, whatever the slow one does
        await asyncio.sleep(0)
    await asyncio.wait_for(reader, 2)
    assert received == list(range(200))
    with pytest.raises(SubscriberDropped):
        async with asyncio.timeout(2):
            async for _ in slow:
                pass
    # the dropped subscriber resumes from the last id it processed, losing nothing
    resumed = bus.subscribe("desk", after=(await bus.latest("desk", 200))[4].id)
    assert numbers(await take(resumed, 195)) == list(range(5, 200))
    await resumed.aclose()
    await fast.aclose()


async def test_random_disconnects_and_resumes_lose_and_repeat_nothing(make_bus):
    bus = await make_bus(buffer_size=1000, queue_size=1000)
    rng = random.Random(7)
    total = 300
    seen: list[int] = []
    last_id: str | None = BEGINNING

    async def producer() -> None:
        for i in range(total):
            await bus.publish(event(i))
            if rng.random() < 0.3:
                await asyncio.sleep(0)

    task = asyncio.create_task(producer())
    while len(seen) < total:
        subscription = bus.subscribe("desk", after=last_id)
        budget = rng.randint(1, 20)
        async with asyncio.timeout(2):
            async for item in subscription:
                assert isinstance(item, StreamEvent)
                seen.append(item.data["n"])
                last_id = item.id
                budget -= 1
                if budget == 0 or len(seen) == total:
                    break
        await subscription.aclose()
    await task
    assert seen == list(range(total))


async def test_close_ends_every_subscription(make_bus):
    bus = await make_bus()
    subscription = bus.subscribe("persona")
    waiter = asyncio.create_task(take(subscription, 1))
    await asyncio.sleep(0.01)
    await bus.aclose()
    assert await asyncio.wait_for(waiter, 2) == []


async def test_an_unknown_channel_is_refused(make_bus):
    bus = await make_bus()
    with pytest.raises(ValueError, match="unknown channel"):
        bus.subscribe("gossip")  # type: ignore[arg-type]

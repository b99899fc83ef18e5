"""Redis Streams beyond the bus contract: a Redis restart (it keeps nothing on disk) and an
outage while the desk publishes. A private redis-server is restarted; PostgreSQL holds the
archive."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from support.services import PrivateRedis
from tradecast.bus import BEGINNING, Resync
from tradecast.bus.archive import PostgresEventArchive
from tradecast.bus.redis_streams import RedisStreamBus
from tradecast.domain import StreamEvent

pytestmark = pytest.mark.scaleout


def event(n: int) -> StreamEvent:
    return StreamEvent(channel="desk", event="decision", data={"n": n})


async def take(subscription, count: int, timeout: float = 5.0) -> list:
    items = []
    async with asyncio.timeout(timeout):
        async for item in subscription:
            items.append(item)
            if len(items) == count:
                break
    return items


def numbers(items: list) -> list[int]:
    return [i.data["n"] for i in items if isinstance(i, StreamEvent)]


async def restart(redis: PrivateRedis) -> None:
    await asyncio.to_thread(redis.stop)
    await asyncio.to_thread(redis.start)


async def test_a_redis_restart_loses_no_archived_event(private_redis, postgres_url):
    archive = await PostgresEventArchive(postgres_url).open()
    client = Redis.from_url(private_redis.url)
    bus = RedisStreamBus(client, namespace="t", archive=archive)
    try:
        published = [await bus.publish(event(i)) for i in range(40)]
        seen_by_viewer = published[9].id  # a viewer got ten events, then Redis restarted
        await restart(private_redis)
        after = [await bus.publish(event(i)) for i in range(40, 50)]
        assert all(e.id for e in after), "publishing resumes on the restarted Redis"
        resumed = bus.subscribe("desk", after=seen_by_viewer)
        items = await take(resumed, 40)
        assert not any(isinstance(i, Resync) for i in items)
        assert numbers(items) == list(range(10, 50)), "0 lost, 0 repeated, in order"
        assert [i.id for i in items] == [e.id for e in published[10:] + after]
        await bus.publish(event(50))
        assert numbers(await take(resumed, 1)) == [50], "then it goes live"
        await resumed.aclose()
    finally:
        await bus.aclose()
        await archive.aclose()
        await client.aclose()


async def test_without_an_archive_a_restart_is_a_resync_never_a_silent_gap(private_redis):
    client = Redis.from_url(private_redis.url)
    bus = RedisStreamBus(client, namespace="t")
    try:
        published = [await bus.publish(event(i)) for i in range(5)]
        await restart(private_redis)
        await bus.publish(event(5))
        items = await take(bus.subscribe("desk", after=published[1].id), 2)
        assert isinstance(items[0], Resync) and "Redis" in items[0].reason
        assert numbers(items[1:]) == [5]
    finally:
        await bus.aclose()
        await client.aclose()


async def test_events_published_while_redis_is_down_wait_and_arrive_in_order(private_redis):
    client = Redis.from_url(private_redis.url, socket_connect_timeout=0.5)
    bus = RedisStreamBus(client, namespace="t")
    try:
        await bus.publish(event(0))
        await asyncio.to_thread(private_redis.stop)
        held = [await bus.publish(event(i)) for i in range(1, 21)]
        assert all(e.id is None for e in held) and bus.outbox == 20
        assert not bus.healthy and bus.last_error
        await asyncio.to_thread(private_redis.start)
        async with asyncio.timeout(15):
            while bus.outbox:
                await asyncio.sleep(0.1)
        assert bus.healthy
        everything = await take(bus.subscribe("desk", after=BEGINNING), 20)
        assert numbers(everything) == list(range(1, 21)), "event 0 went with the old Redis"
    finally:
        await bus.aclose()
        await client.aclose()


async def test_viewers_on_two_replicas_see_the_same_ids(private_redis):
    clients = [Redis.from_url(private_redis.url) for _ in range(2)]
    a, b = (RedisStreamBus(c, namespace="shared") for c in clients)
    try:
        on_b = b.subscribe("desk", after=BEGINNING)
        sent = [await a.publish(event(i)) for i in range(30)]
        got = await take(on_b, 30)
        assert [g.id for g in got] == [s.id for s in sent]
        # a viewer that read 12 events on B resumes on A
        rest = await take(a.subscribe("desk", after=got[11].id), 18)
        assert numbers(rest) == list(range(12, 30))
    finally:
        for bus in (a, b):
            await bus.aclose()
        for client in clients:
            await client.aclose()

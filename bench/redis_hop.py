"""The Redis hop: what going through Redis Streams adds to an event's way to a viewer.

One run measures, for the same paced stream of events, the time from ``publish`` to the
subscriber receiving the event:

- ``in-process``: the embedded bus (publisher and subscriber on one bus);
- ``redis``: replica A publishes on Redis Streams, a subscriber on replica B's bus (its own
  Redis connection and reader task) receives it;
- ``redis+archive``: the same, with every event also archived in PostgreSQL (the scale-out
  deployment with ``TRADECAST_POSTGRES_URL`` set).

Both replicas live in this process (one event loop), on this machine's Redis and PostgreSQL
over loopback; a fresh key prefix and a fresh database are used and removed.

Run: .venv/bin/python bench/redis_hop.py [--events 3000] [--rate 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from tradecast.bus import EventBus, InProcessEventBus
from tradecast.bus.archive import PostgresEventArchive
from tradecast.bus.redis_streams import RedisStreamBus
from tradecast.domain import StreamEvent

REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES = "postgresql://postgres@127.0.0.1:5432"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


async def measure(publisher: EventBus, viewer: EventBus, events: int, rate: float) -> dict:
    """Publish ``events`` at ``rate``/s on ``publisher``; latencies seen on ``viewer``."""
    subscription = viewer.subscribe("persona", after=None)
    received: list[float] = []
    ids: list[str] = []

    async def read() -> None:
        async for item in subscription:
            assert isinstance(item, StreamEvent)
            received.append((time.perf_counter_ns() - item.data["t"]) / 1e6)
            ids.append(item.id or "")
            if len(received) == events:
                return

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.2)  # the viewer's reader is in place
    start = time.perf_counter()
    for n in range(events):
        due = start + n / rate
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        data = {"n": n, "text": "tok", "t": time.perf_counter_ns()}
        await publisher.publish(StreamEvent(channel="persona", event="token", data=data))
    await asyncio.wait_for(reader, 30)
    await subscription.aclose()
    return {
        "events": events,
        "received": len(received),
        "unique_ids": len(set(ids)),
        "p50_ms": round(statistics.median(received), 3),
        "p99_ms": round(percentile(received, 99), 3),
        "max_ms": round(max(received), 3),
    }


async def with_database(work: Callable[[str], Awaitable[dict]]) -> dict:
    import psycopg

    name = f"tcbench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        return await work(f"{POSTGRES}/{name}")
    finally:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def redis_pair(events: int, rate: float, archive_url: str | None) -> dict:
    namespace = f"tcbench-{uuid.uuid4().hex[:8]}"
    clients = [Redis.from_url(REDIS_URL) for _ in range(2)]
    archive = await PostgresEventArchive(archive_url).open() if archive_url else None
    a = RedisStreamBus(clients[0], namespace=namespace, maxlen=10_000, archive=archive)
    b = RedisStreamBus(clients[1], namespace=namespace, maxlen=10_000)
    try:
        return await measure(a, b, events, rate)
    finally:
        await a.aclose()
        await b.aclose()
        if archive is not None:
            await archive.aclose()
        keys = [k async for k in clients[0].scan_iter(f"{namespace}:*")]
        if keys:
            await clients[0].delete(*keys)
        for client in clients:
            await client.aclose()


async def main(events: int, rate: float) -> None:
    local = InProcessEventBus()
    results = {"in-process": await measure(local, local, events, rate)}
    await local.aclose()
    results["redis"] = await redis_pair(events, rate, None)
    results["redis+archive"] = await with_database(lambda url: redis_pair(events, rate, url))
    base = results["in-process"]["p99_ms"]
    for name in ("redis", "redis+archive"):
        results[name]["added_p99_ms"] = round(results[name]["p99_ms"] - base, 3)
    print(json.dumps({"events": events, "rate_per_s": rate, "results": results}, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=500.0, help="events per second")
    args = parser.parse_args()
    asyncio.run(main(args.events, args.rate))

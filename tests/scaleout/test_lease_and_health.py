"""The loop lease on the machine's Redis, and the health monitor on real outages (a proxy in
front of the real services is cut and restored)."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from support.net import free_port
from support.services import TcpProxy, url_via
from tradecast.bootstrap.scaled import postgres_probes
from tradecast.desk.health import HealthMonitor
from tradecast.desk.lease import RedisLease
from tradecast.errors import TickBusy, TickLockError
from tradecast.settings import load_settings

pytestmark = pytest.mark.scaleout


async def test_exactly_one_replica_holds_the_lease_and_another_takes_over(redis_url, namespace):
    client = Redis.from_url(redis_url)
    key = f"{namespace}:lease:desk:paper"
    a = RedisLease(client, key, ttl_s=1.0, owner="replica-a")
    b = RedisLease(client, key, ttl_s=1.0, owner="replica-b")
    try:
        assert await a.acquire() is True
        assert await b.acquire() is False
        assert await a.acquire() is True, "the holder renews"
        assert await b.holder() == "replica-a"
        await asyncio.sleep(0.6)
        assert await a.acquire() is True  # renewed before expiry: still A's
        await asyncio.sleep(0.6)
        assert await b.acquire() is False, "a renewed lease does not expire at the old time"
        # A dies (stops renewing): B gets it within one ttl
        async with asyncio.timeout(2.5):
            while not await b.acquire():
                await asyncio.sleep(0.1)
        assert await a.acquire() is False, "A, back from a pause, cannot take it back"
        await a.release()  # not A's to release
        assert await b.holder() == "replica-b"
        await b.release()
        assert await b.holder() is None
    finally:
        await client.aclose()


async def test_a_lease_whose_reply_was_lost_is_still_renewed_by_its_owner(redis_url, namespace):
    """Our SET landed but its reply was lost (a timeout): the key holds our name, so the next
    round renews it instead of leaving the loop unowned until it expires."""
    client = Redis.from_url(redis_url)
    key = f"{namespace}:lease:desk:paper"
    try:
        await client.set(key, "replica-a", px=60_000)
        lease = RedisLease(client, key, ttl_s=5.0, owner="replica-a")
        assert await lease.acquire() is True
        assert 0 < await client.pttl(key) <= 5_000, "renewed to the lease's own ttl"
        other = RedisLease(client, key, ttl_s=5.0, owner="replica-b")
        assert await other.acquire() is False
        await other.release()
        assert await lease.holder() == "replica-a", "releasing is owner-checked"
    finally:
        await client.aclose()


async def test_many_contenders_never_hold_the_lease_together(redis_url, namespace):
    client = Redis.from_url(redis_url)
    leases = [RedisLease(client, f"{namespace}:lease", ttl_s=0.5, owner=f"r{i}") for i in range(8)]
    try:
        for _ in range(30):
            held = await asyncio.gather(*(lease.acquire() for lease in leases))
            assert sum(held) == 1
            await asyncio.sleep(0.02)
    finally:
        await client.aclose()


async def test_replicas_take_turns_on_the_tick_lock(redis_url, namespace):
    client = Redis.from_url(redis_url)
    key = f"{namespace}:lease:desk"
    a = RedisLease(client, key, ttl_s=0.6, owner="replica-a")
    b = RedisLease(client, key, ttl_s=0.6, owner="replica-b")
    inside: list[str] = []
    overlaps = 0

    async def tick(lease: RedisLease, seconds: float) -> None:
        nonlocal overlaps
        async with lease.exclusive_tick(wait_s=10):
            overlaps += bool(inside)
            inside.append(lease.owner)
            await asyncio.sleep(seconds)  # longer than the ttl: the lock is renewed meanwhile
            inside.remove(lease.owner)

    try:
        await asyncio.gather(*(tick(lease, 0.9) for lease in (a, b, a, b)))
        assert overlaps == 0
        assert await client.get(f"{key}:tick") is None, "released after each tick"
        async with a.exclusive_tick(wait_s=1):
            with pytest.raises(TickBusy, match="replica-a"):
                async with b.exclusive_tick(wait_s=0.3):
                    pass
        # a holder that died (no renewal, no release) blocks the others for one ttl at most
        await client.set(f"{key}:tick", "dead-replica", px=600)
        async with asyncio.timeout(2):
            async with b.exclusive_tick(wait_s=2):
                assert (await client.get(f"{key}:tick")).startswith(b"replica-b")
    finally:
        await client.aclose()
    nowhere = Redis.from_url(f"redis://127.0.0.1:{free_port()}", socket_connect_timeout=1)
    with pytest.raises(TickLockError, match="out of reach"):
        async with RedisLease(nowhere, key, ttl_s=0.6).exclusive_tick(wait_s=1):
            pass
    await nowhere.aclose()


async def test_health_reports_an_outage_and_its_end_without_a_restart(redis_url, postgres_url):
    redis_proxy = TcpProxy(int(redis_url.rsplit(":", 1)[1].split("/")[0]))
    pg_proxy = TcpProxy(5432)
    redis_proxy.start()
    pg_proxy.start()
    client = Redis.from_url(url_via(redis_url, redis_proxy), socket_connect_timeout=0.5)

    async def redis_probe() -> None:
        await client.ping()

    settings = load_settings(postgres_url=url_via(postgres_url, pg_proxy))
    monitor = HealthMonitor({"redis": redis_probe, **postgres_probes(settings)})
    try:
        assert await monitor.check_now() is True
        pg_proxy.stop()
        assert await monitor.check_now() is False
        assert set(monitor.problems()) == {"postgres"}
        redis_proxy.stop()
        await monitor.check_now()
        assert set(monitor.problems()) == {"postgres", "redis"}
        assert "Connection" in monitor.problems()["redis"], monitor.problems()
        pg_proxy = _restart(pg_proxy)
        redis_proxy = _restart(redis_proxy)
        assert await monitor.check_now() is True, monitor.problems()
        assert monitor.report()["postgres"]["ok"] is True
    finally:
        redis_proxy.stop()
        pg_proxy.stop()
        await client.aclose()


def _restart(proxy: TcpProxy) -> TcpProxy:
    proxy.start()
    return proxy

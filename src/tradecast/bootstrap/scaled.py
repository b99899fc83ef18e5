"""Connections to the shared services of a scaled-out desk (Redis, PostgreSQL).

:mod:`tradecast.bootstrap` decides when they are used; this module only knows how to open
and close them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tradecast.bus import EventBus
from tradecast.desk.health import HealthMonitor, Probe
from tradecast.desk.lease import LoopLease, RedisLease
from tradecast.domain import Channel
from tradecast.graphs.checkpoints import desk_serializer
from tradecast.logs import get_logger
from tradecast.ratelimit import RateLimiter
from tradecast.ratelimit.shared import RedisRateLimiter
from tradecast.settings import Settings

if TYPE_CHECKING:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

log = get_logger(__name__)
CONNECT_TIMEOUT_S = 3


@dataclass
class SharedServices:
    """What replicas share: the event bus, the loop lease, the health of the services
    behind them (None when nothing is shared) and the control routes' rate limit."""

    bus: EventBus
    lease: LoopLease
    health: HealthMonitor | None
    limiter: RateLimiter
    """The control routes' per-key rate limit."""


def postgres_probes(settings: Settings) -> dict[str, Probe]:
    """A PostgreSQL health probe when ``postgres_url`` is set (a fresh connection and
    ``SELECT 1``: it fails while the server is down and passes as soon as it is back)."""
    url = settings.postgres_url
    if not url:
        return {}

    async def postgres() -> None:
        import psycopg

        async with await psycopg.AsyncConnection.connect(
            url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True
        ) as conn:
            await conn.execute("SELECT 1")

    return {"postgres": postgres}


@asynccontextmanager
async def open_redis_services(
    settings: Settings, *, account: str, on_drop: Callable[[Channel], None] | None
) -> AsyncIterator[SharedServices]:
    """Redis Streams bus (archived in PostgreSQL when configured), the loop lease of
    ``account``, the health monitor of both and the rate limit in Redis."""
    from redis.asyncio import Redis

    from tradecast.bus.archive import PostgresEventArchive
    from tradecast.bus.redis_streams import RedisStreamBus

    assert settings.redis_url
    cluster, api = settings.cluster, settings.api
    redis = Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=10,
        health_check_interval=10,
        retry_on_timeout=False,
    )
    archive = (
        await PostgresEventArchive(settings.postgres_url).open() if settings.postgres_url else None
    )
    bus = RedisStreamBus(
        redis,
        namespace=cluster.namespace,
        maxlen=api.stream_buffer,
        queue_size=api.sse_queue_size,
        archive=archive,
        on_drop=on_drop,
    )
    lease = RedisLease(
        redis, f"{cluster.namespace}:lease:desk:{account}", ttl_s=cluster.lease_ttl_s
    )

    limiter = RedisRateLimiter(
        redis, cluster.namespace, api.control_rate_per_minute, api.control_burst
    )

    async def redis_probe() -> None:
        await redis.ping()

    health = HealthMonitor(
        {"redis": redis_probe, **postgres_probes(settings)}, cluster.health_interval_s
    )
    try:
        yield SharedServices(bus, lease, health, limiter)
    finally:
        await bus.aclose()
        if archive is not None:
            await archive.aclose()
        await redis.aclose()


@asynccontextmanager
async def postgres_checkpointer(url: str) -> AsyncIterator[AsyncPostgresSaver]:
    """LangGraph's Postgres checkpointer on a connection pool (which reconnects after an
    outage), its tables created once even when replicas start together."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=8,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        check=AsyncConnectionPool.check_connection,
        open=False,
    )
    await pool.open(wait=True, timeout=10)
    try:
        saver = AsyncPostgresSaver(pool, serde=desk_serializer())  # type: ignore[arg-type]
        async with pool.connection() as conn:
            # Polled, not waited for: LangGraph's migrations build indexes CONCURRENTLY, which
            # wait for every open transaction, including a replica blocked on this lock.
            while not await _try_lock(conn, "tradecast.checkpoints"):
                await asyncio.sleep(0.2)
            try:
                await saver.setup()
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtext('tradecast.checkpoints'))")
        yield saver
    finally:
        await pool.close()


async def _try_lock(conn: Any, name: str) -> bool:
    cursor = await conn.execute("SELECT pg_try_advisory_lock(hashtext(%s)) AS locked", (name,))
    row = await cursor.fetchone()
    return bool(row["locked"])

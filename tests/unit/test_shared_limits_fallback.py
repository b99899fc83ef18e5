"""The shared rate limit and breaker when Redis is out of reach: each replica carries on with
its own state instead of refusing the kill switch or the model server."""

from __future__ import annotations

from redis import Redis as SyncRedis
from redis.asyncio import Redis

from support.net import free_port
from tradecast.errors import LLMError
from tradecast.llm.breaker import BreakerState, CircuitBreaker
from tradecast.llm.breaker_redis import RedisBreakerStore
from tradecast.ratelimit.shared import RedisRateLimiter


def dead_redis_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there


async def test_the_rate_limit_falls_back_to_this_replicas_bucket():
    client = Redis.from_url(dead_redis_url(), socket_connect_timeout=0.5)
    limiter = RedisRateLimiter(client, "ns", per_minute=0.01, burst=2)
    assert [await limiter.take("k") for _ in range(3)][:2] == [0.0, 0.0]
    assert await limiter.take("k") > 0, "still limited, by this replica alone"
    await client.aclose()


def test_the_breaker_falls_back_to_this_replicas_state():
    client = SyncRedis.from_url(dead_redis_url(), socket_connect_timeout=0.5)
    store = RedisBreakerStore(client, "ns:breaker:x", cooldown_s=30)
    breaker = CircuitBreaker("x", threshold=2, cooldown_s=30, store=store)
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure(LLMError("unreachable", "down"))
    assert breaker.state is BreakerState.OPEN
    client.close()

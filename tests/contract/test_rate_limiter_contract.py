"""The RateLimiter contract, run against every implementation on one fake clock.

A bucket per key: ``burst`` requests at once, refilled at ``per_minute`` a minute, never above
the burst, and the wait it answers is the time until the next token. The Redis limiter runs
its Lua script on the machine's Redis, on a fresh key prefix, with the test's clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from support.services import REDIS_URL
from tradecast.ratelimit import LocalRateLimiter, RateLimiter, retry_after
from tradecast.ratelimit.buckets import MAX_BUCKETS
from tradecast.ratelimit.shared import RedisRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


MakeLimiter = Callable[[float, int], RateLimiter]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["local", "redis"])
async def make_limiter(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[MakeLimiter]:
    if request.param == "local":
        yield lambda per_minute, burst: LocalRateLimiter(per_minute, burst, clock=clock)
        return
    from redis.asyncio import Redis

    request.applymarker(pytest.mark.scaleout)
    namespace = request.getfixturevalue("namespace")
    client = Redis.from_url(REDIS_URL)
    yield lambda per_minute, burst: RedisRateLimiter(
        client, namespace, per_minute, burst, clock=clock
    )
    await client.aclose()


async def takes(limiter: RateLimiter, key: str, n: int) -> list[float]:
    return [await limiter.take(key) for _ in range(n)]


async def test_a_burst_is_allowed_then_the_wait_is_until_the_next_token(make_limiter, clock):
    limiter = make_limiter(60, 3)
    assert await takes(limiter, "k", 3) == [0.0, 0.0, 0.0]
    wait = await limiter.take("k")
    assert wait == pytest.approx(1.0)
    assert retry_after(wait) == "1"
    clock.now += 0.25
    assert await limiter.take("k") == pytest.approx(0.75), "a refused request spends nothing"


async def test_buckets_are_per_key(make_limiter):
    limiter = make_limiter(60, 1)
    assert await limiter.take("alice") == 0.0
    assert await limiter.take("alice") > 0
    assert await limiter.take("bob") == 0.0


async def test_tokens_come_back_at_the_rate_and_never_above_the_burst(make_limiter, clock):
    limiter = make_limiter(60, 3)
    await takes(limiter, "k", 3)
    clock.now += 1.0
    assert await limiter.take("k") == 0.0
    assert await limiter.take("k") > 0
    clock.now += 100.0
    assert await takes(limiter, "k", 3) == [0.0, 0.0, 0.0]
    assert await limiter.take("k") > 0


async def test_a_slow_rate_is_kept_exactly(make_limiter, clock):
    limiter = make_limiter(0.5, 1)  # one request every two minutes
    assert await limiter.take("k") == 0.0
    assert await limiter.take("k") == pytest.approx(120.0)
    clock.now += 119.0
    assert await limiter.take("k") == pytest.approx(1.0)
    clock.now += 1.0
    assert await limiter.take("k") == 0.0


async def test_limiters_on_one_store_share_the_bucket(make_limiter):
    """Two replicas' limiters (two objects on one store: one process's for the local one)."""
    first, second = make_limiter(60, 4), make_limiter(60, 4)
    if isinstance(first, LocalRateLimiter):
        second = first
    allowed = [w == 0.0 for w in [*await takes(first, "k", 3), *await takes(second, "k", 3)]]
    assert allowed.count(True) == 4


@pytest.mark.parametrize(("per_minute", "burst"), [(0, 1), (-1, 5), (60, 0)])
def test_impossible_rates_are_refused(per_minute, burst):
    with pytest.raises(ValueError, match="per_minute must be positive"):
        LocalRateLimiter(per_minute, burst)


async def test_on_the_redis_servers_clock_the_wait_is_until_the_next_token(namespace):
    """Without a test clock, the script reads Redis's own TIME (what replicas use)."""
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    limiter = RedisRateLimiter(client, namespace, per_minute=60, burst=1)
    assert await limiter.take("k") == 0.0
    wait = await limiter.take("k")
    assert 0.5 < wait <= 1.0, "a second per token, less the moment between the two calls"
    await client.aclose()


async def test_the_local_limiter_forgets_full_buckets_but_not_spent_ones(clock: Clock):
    limiter = LocalRateLimiter(per_minute=60, burst=2, clock=clock)
    assert await limiter.take("spent") == 0.0 and await limiter.take("spent") == 0.0
    for n in range(MAX_BUCKETS):  # one request each: a token back within a second
        await limiter.take(f"client-{n}")
    clock.now += 1.0
    await limiter.take("one-more")  # past MAX_BUCKETS: the refilled buckets go
    assert len(limiter._buckets) < MAX_BUCKETS
    assert await limiter.take("spent") == 0.0 and await limiter.take("spent") > 0, "kept"

"""The shared limits' cost: a control request's token and a model call's breaker check, in
this process or in Redis.

One run measures, for the same sequence of ``take`` calls (keys in turn, three quarters
of them over their burst so both the allowed and the refused path are timed):

- ``in-process``: :class:`~tradecast.ratelimit.LocalRateLimiter` (the embedded default);
- ``redis``: :class:`~tradecast.ratelimit.shared.RedisRateLimiter`, one Lua script on this
  machine's Redis over loopback (what every replica pays per control request when
  ``TRADECAST_REDIS_URL`` is set).

and, for a model call, the circuit breaker's ``before_call`` plus ``record_success`` (two
scripts on Redis, while the breaker is closed): in-process vs
:class:`~tradecast.llm.breaker_redis.RedisBreakerStore`.

A fresh key prefix is used and removed. Figures are per call, in microseconds.

Run: .venv/bin/python bench/ratelimit.py [--calls 20000] [--keys 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

from redis import Redis as SyncRedis
from redis.asyncio import Redis

from tradecast.llm.breaker import CircuitBreaker
from tradecast.llm.breaker_redis import RedisBreakerStore
from tradecast.ratelimit import LocalRateLimiter, RateLimiter
from tradecast.ratelimit.shared import RedisRateLimiter

REDIS_URL = "redis://127.0.0.1:6379/0"
PER_MINUTE, BURST = 60.0, 100


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


async def measure(limiter: RateLimiter, calls: int, keys: int) -> dict[str, float]:
    """Time ``calls`` takes spread over ``keys`` keys (after a warm-up of one per key)."""
    names = [f"key-{i}" for i in range(keys)]
    for name in names:
        await limiter.take(name)
    micros, refused = [], 0
    for i in range(calls):
        started = time.perf_counter()
        wait = await limiter.take(names[i % keys])
        micros.append((time.perf_counter() - started) * 1e6)
        refused += wait > 0
    return {**summary(micros), "refused_share": round(refused / calls, 3)}


def summary(micros: list[float]) -> dict[str, float]:
    return {
        "p50_us": round(percentile(micros, 50), 1),
        "p99_us": round(percentile(micros, 99), 1),
        "max_us": round(max(micros), 1),
    }


def measure_breaker(breaker: CircuitBreaker, calls: int) -> dict[str, float]:
    """Time the breaker's part of ``calls`` successful model calls."""
    micros = []
    for _ in range(calls):
        started = time.perf_counter()
        breaker.before_call()
        breaker.record_success()
        micros.append((time.perf_counter() - started) * 1e6)
    return summary(micros)


def ratios(shared: dict[str, float], local: dict[str, float]) -> dict[str, float]:
    return {
        "p50_ratio": round(shared["p50_us"] / local["p50_us"], 1),
        "p99_ratio": round(shared["p99_us"] / local["p99_us"], 1),
    }


async def main(calls: int, keys: int) -> None:
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    redis, sync = Redis.from_url(REDIS_URL), SyncRedis.from_url(REDIS_URL)
    try:
        local = await measure(LocalRateLimiter(PER_MINUTE, BURST), calls, keys)
        shared = await measure(RedisRateLimiter(redis, namespace, PER_MINUTE, BURST), calls, keys)
        store = RedisBreakerStore(sync, f"{namespace}:breaker:bench", 30.0)
        breaker_local = measure_breaker(CircuitBreaker("bench"), calls)
        breaker_shared = measure_breaker(CircuitBreaker("bench", store=store), calls)
    finally:
        sync.close()
        stale = [key async for key in redis.scan_iter(f"{namespace}:*")]
        if stale:
            await redis.delete(*stale)
        await redis.aclose()
    print(
        json.dumps(
            {
                "calls": calls,
                "keys": keys,
                "rate_limit": {"in-process": local, "redis": shared, **ratios(shared, local)},
                "breaker": {
                    "in-process": breaker_local,
                    "redis": breaker_shared,
                    **ratios(breaker_shared, breaker_local),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.keys))

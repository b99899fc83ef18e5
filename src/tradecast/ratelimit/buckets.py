"""A token bucket per API key for the control routes (429 with Retry-After when empty).

Each key may make ``burst`` requests at once, refilled at ``per_minute`` a minute. The bucket
lives in this process (:class:`LocalRateLimiter`) or, scaled out, in Redis
(:mod:`tradecast.ratelimit.shared`), so that N replicas allow the rate once, not N times.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class RateLimiter(Protocol):
    """Spends the tokens of API keys."""

    per_minute: float
    burst: int

    async def take(self, key: str) -> float:
        """Spend one token of ``key``.

        Args:
            key: who is asking (the key's name).

        Returns:
            0.0 when allowed, else the seconds until a token is back.
        """
        ...


MAX_BUCKETS = 10_000
"""Buckets kept before full ones are forgotten (a forgotten bucket is a full one: nothing is
lost). Sign-ins are limited per client address, so the keys are not only the configured ones."""


@dataclass
class _Bucket:
    tokens: float
    updated: float


def check_rate(per_minute: float, burst: int) -> None:
    """Refuse a rate no bucket can have.

    Raises:
        ValueError: ``per_minute`` not positive or ``burst`` below 1.
    """
    if per_minute <= 0 or burst < 1:
        raise ValueError("per_minute must be positive and burst at least 1")


class LocalRateLimiter:
    """Buckets in this process: ``burst`` at once, refilled at ``per_minute`` a minute."""

    def __init__(
        self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        check_rate(per_minute, burst)
        self.per_minute = per_minute
        self.burst = burst
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    async def take(self, key: str) -> float:
        """Spend one token of ``key``: 0.0 when allowed, else the seconds until one is back."""
        return self.take_now(key)

    def take_now(self, key: str) -> float:
        """:meth:`take` without awaiting (what the Redis limiter falls back on)."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(self.burst, bucket.tokens + elapsed * self._rate)
        bucket.updated = max(bucket.updated, now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self._rate

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled (they would start full again anyway)."""
        full = [
            key
            for key, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.updated) * self._rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]


def retry_after(seconds: float) -> str:
    """A Retry-After header value (whole seconds, at least 1)."""
    return str(max(1, math.ceil(seconds)))

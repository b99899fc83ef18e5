"""The control routes' token buckets in Redis, shared by every replica.

Why a script rather than the ``limits`` library: its windows are whole seconds and count a
fixed number of hits per window, so ``control_rate_per_minute`` with ``control_burst`` (a
burst now, then a steady refill) would have to be rounded into another limit. One Lua script
keeps the very bucket of :class:`~tradecast.ratelimit.buckets.LocalRateLimiter`: one hash per key
(tokens, last refill), one round trip, atomic across replicas, on the Redis server's clock.

If Redis fails or takes longer than :data:`SHARED_TIMEOUT_S`, each replica limits on its own
bucket (logged once per outage) and leaves Redis alone for :data:`OUTAGE_BACKOFF_S`: the
control routes include the kill switch, which must be neither refused nor held up because the
limiter's store is down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tradecast.logs import get_logger
from tradecast.outages import OutageBackoff
from tradecast.ratelimit.buckets import LocalRateLimiter, check_rate

log = get_logger(__name__)

SHARED_TIMEOUT_S = 0.5
"""A token from Redis takes about 0.2 ms; past this (room for a busy event loop) the
replica's own bucket answers."""
OUTAGE_BACKOFF_S = 5.0
"""After a failure, the replica's own bucket answers alone for this long."""
MAX_KEY_TTL_MS = 10**12
"""A bucket is kept until it would be full again, at most this long (31 years: only a rate
slower than one request in decades reaches it; it keeps the number an integer for Redis)."""

TAKE_SCRIPT = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local rate, burst = tonumber(ARGV[2]), tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(h[1]) or burst
local updated = tonumber(h[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(math.max(updated, now)))
local full_in_ms = math.ceil((burst - tokens) / rate * 1000) + 1000
redis.call('PEXPIRE', KEYS[1], math.min(full_in_ms, tonumber(ARGV[4])))
return tostring(wait)
"""


class RedisRateLimiter:
    """Buckets under ``<namespace>:ratelimit:<key>`` (see the module docstring)."""

    def __init__(
        self,
        redis: Redis,
        namespace: str,
        per_minute: float,
        burst: int,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        check_rate(per_minute, burst)
        self.per_minute = per_minute
        self.burst = burst
        self.prefix = f"{namespace}:ratelimit:"
        self._rate = per_minute / 60.0
        self._clock = clock
        self._take = redis.register_script(TAKE_SCRIPT)
        self._fallback = LocalRateLimiter(per_minute, burst)
        self._outage = OutageBackoff(log, "api.ratelimit_shared", OUTAGE_BACKOFF_S)

    async def take(self, key: str) -> float:
        """Spend one token of ``key`` in Redis (or in this process while Redis is down)."""
        if self._outage.skipping():
            return self._fallback.take_now(key)
        now = "" if self._clock is None else repr(self._clock())
        args: list[str | int] = [now, repr(self._rate), self.burst, MAX_KEY_TTL_MS]
        try:
            async with asyncio.timeout(SHARED_TIMEOUT_S):
                wait = await self._take(keys=[self.prefix + key], args=args)
        except (RedisError, TimeoutError) as exc:
            self._outage.failed(exc)
            return self._fallback.take_now(key)
        self._outage.answered()
        return float(wait.decode() if isinstance(wait, bytes) else wait)

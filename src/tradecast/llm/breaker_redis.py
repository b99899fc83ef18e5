"""Circuit breakers whose state lives in Redis, shared by every replica of a deployment.

One hash per server (``<namespace>:breaker:<name>``) holds the state, the consecutive failures,
when it opened and when the half-open trial started. Each operation is one Lua script, so
replicas see one breaker: three failures spread over three replicas open it, an open breaker
refuses calls on every replica, and after the cool-down exactly one replica sends the trial.

Times are the Redis server's clock (``TIME``), so replicas' clocks need not agree; tests pass
their own clock instead. If Redis fails, a breaker falls back to its in-process state (logged
once per outage) rather than failing the call: Redis being down must not stop the desk
talking to a model server that is up.

The breaker is synchronous (model calls run in worker threads and on the event loop alike),
so each check is a blocking round trip: about 0.3 ms on a healthy Redis, bounded by
:data:`SOCKET_TIMEOUT_S` on a hung one, after which the store leaves Redis alone for
:data:`OUTAGE_BACKOFF_S` so an outage costs one timeout, not one per call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from tradecast.llm.breaker import (
    Admission,
    BreakerState,
    BreakerStore,
    FailureOutcome,
    LocalBreakerStore,
)
from tradecast.logs import get_logger
from tradecast.outages import OutageBackoff

log = get_logger(__name__)

SOCKET_TIMEOUT_S = 0.25
"""A breaker check sits before every model call; Redis must answer well within this."""
OUTAGE_BACKOFF_S = 5.0
"""After a failure, the in-process fallback answers alone for this long."""
MIN_KEY_TTL_MS = 600_000

# Every script reads "now" in milliseconds: the server's clock, or ARGV[1] when a test sets it.
_NOW = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""
ADMIT_SCRIPT = (
    _NOW
    + """
local h = redis.call('HMGET', KEYS[1], 'state', 'failures', 'opened_at', 'trial_at')
local state = h[1] or 'closed'
if state == 'closed' then return {1, 0, '0', 0, 0} end
local cooldown = tonumber(ARGV[2])
local failures = tonumber(h[2]) or 0
local opened_at = tonumber(h[3]) or 0
local half_opened = 0
if state == 'open' and now - opened_at >= cooldown then
  state = 'half_open'
  half_opened = 1
  redis.call('HSET', KEYS[1], 'state', state)
end
local trial_at = tonumber(h[4])
if state == 'half_open' and (half_opened == 1 or not trial_at or now - trial_at >= cooldown) then
  redis.call('HSET', KEYS[1], 'trial_at', now)
  return {1, failures, '0', half_opened, 1}
end
local since = trial_at or opened_at
return {0, failures, tostring(math.max(0, since + cooldown - now)), half_opened, 0}
"""
)
FAIL_SCRIPT = (
    _NOW
    + """
local threshold, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HDEL', KEYS[1], 'trial_at')
local opened = 0
if state == 'half_open' or failures >= threshold then
  if state ~= 'open' then opened = 1 end
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now)
elseif state == 'closed' then
  redis.call('HSET', KEYS[1], 'state', 'closed')
end
redis.call('PEXPIRE', KEYS[1], ttl)
return {opened, failures}
"""
)
SUCCEED_SCRIPT = """
local state = redis.call('HGET', KEYS[1], 'state')
redis.call('DEL', KEYS[1])
if state and state ~= 'closed' then return 1 end
return 0
"""
ABANDON_SCRIPT = "return redis.call('HDEL', KEYS[1], 'trial_at')"
STATE_SCRIPT = (
    _NOW
    + """
local h = redis.call('HMGET', KEYS[1], 'state', 'opened_at')
local state = h[1] or 'closed'
if state == 'open' and now - (tonumber(h[2]) or 0) >= tonumber(ARGV[2]) then
  return 'half_open'
end
return state
"""
)


class RedisBreakerStore:
    """One breaker's state in a Redis hash (see the module docstring)."""

    def __init__(
        self,
        redis: Redis,
        key: str,
        cooldown_s: float,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.key = key
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._cooldown_ms = max(1, round(cooldown_s * 1000))
        self._ttl_ms = max(MIN_KEY_TTL_MS, 10 * self._cooldown_ms)
        self._admit = redis.register_script(ADMIT_SCRIPT)
        self._fail = redis.register_script(FAIL_SCRIPT)
        self._succeed = redis.register_script(SUCCEED_SCRIPT)
        self._state = redis.register_script(STATE_SCRIPT)
        self._abandon = redis.register_script(ABANDON_SCRIPT)
        self._fallback = LocalBreakerStore(cooldown_s)
        self._outage = OutageBackoff(log, "llm.breaker_shared", OUTAGE_BACKOFF_S, key=key)

    def state(self) -> BreakerState:
        """The state now."""
        answer = self._run(self._state, self._cooldown_ms)
        if answer is None:
            return self._fallback.state()
        return BreakerState(_text(answer))

    def admit(self) -> Admission:
        """Admit or refuse a call."""
        answer = self._run(self._admit, self._cooldown_ms)
        if answer is None:
            return self._fallback.admit()
        allowed, failures, retry_in_ms, half_opened, trial = answer
        return Admission(
            bool(allowed),
            int(failures),
            float(_text(retry_in_ms)) / 1000,
            trial=bool(trial),
            half_opened=bool(half_opened),
        )

    def fail(self, threshold: int) -> FailureOutcome:
        """Count a fault."""
        answer = self._run(self._fail, threshold, self._ttl_ms)
        if answer is None:
            return self._fallback.fail(threshold)
        opened, failures = answer
        return FailureOutcome(bool(opened), int(failures))

    def succeed(self) -> bool:
        """Close the breaker (here and in the fallback)."""
        local = self._fallback.succeed()
        answer = self._run(self._succeed, with_now=False)
        return local if answer is None else bool(answer)

    def abandon(self) -> None:
        """Free the trial slot."""
        self._fallback.abandon()
        self._run(self._abandon, with_now=False)

    def _run(self, script: Any, *args: float, with_now: bool = True) -> Any:
        """Run ``script`` on the key (None while Redis is failing: the fallback answers)."""
        if self._outage.skipping():
            return None
        now = [self._now_ms()] if with_now else []
        try:
            answer = script(keys=[self.key], args=[*now, *args])
        except RedisError as exc:
            self._outage.failed(exc)
            return None
        self._outage.answered()
        return answer

    def _now_ms(self) -> float | str:
        return "" if self._clock is None else round(self._clock() * 1000)


class RedisBreakerBoard:
    """The Redis stores of one deployment's breakers (keys under ``<namespace>:breaker:``)."""

    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.namespace = namespace

    @classmethod
    def from_url(cls, url: str, namespace: str) -> RedisBreakerBoard:
        """A board on its own synchronous client (model calls run in worker threads too)."""
        client = Redis.from_url(
            url, socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=SOCKET_TIMEOUT_S
        )
        return cls(client, namespace)

    def store(self, name: str, cooldown_s: float) -> BreakerStore:
        """The shared store of the breaker called ``name``."""
        return RedisBreakerStore(self.redis, f"{self.namespace}:breaker:{name}", cooldown_s)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

"""Who runs a desk's loop: a lease that exactly one replica holds at a time.

Embedded, the one process always holds it (:class:`LocalLease`). Scaled out, a Redis key is
the lease (:class:`RedisLease`): taken with ``SET key owner NX PX ttl``, renewed well before
it expires, and given back on a clean stop. If the holder dies its key expires and another
replica takes it within one ``ttl``. Renewing and releasing check the owner in a script, so a
replica that lost its lease (paused past the ttl) cannot extend or delete another's.

The lease decides who runs the loop; a tick can still be forced through any replica. So every
tick, the loop's and a forced one, also holds the desk's tick lock (:meth:`exclusive_tick`):
replicas take turns, and the next one resumes from the cursor the previous one stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tradecast.errors import TickBusy, TickLockError
from tradecast.logs import get_logger

log = get_logger(__name__)

TICK_LOCK_POLL_S = 0.1
RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def replica_id() -> str:
    """This process's name in leases and logs: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@runtime_checkable
class LoopLease(Protocol):
    """The right to run one desk's loop."""

    owner: str
    ttl_s: float

    async def acquire(self) -> bool:
        """Take the lease if it is free or already ours (renewing it); whether we hold it."""
        ...

    async def release(self) -> None:
        """Give the lease back if we hold it."""
        ...

    async def holder(self) -> str | None:
        """Who holds the lease now (None: nobody)."""
        ...

    def exclusive_tick(self, wait_s: float) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold the desk's tick lock for the ``async with`` body, waiting up to ``wait_s`` for
        another replica's tick to end; raises :class:`TickBusy` if it does not, and
        :class:`TickLockError` if the lock cannot be reached."""
        ...


class LocalLease:
    """The embedded lease: one process, always the holder."""

    def __init__(self, owner: str | None = None) -> None:
        self.owner = owner or replica_id()
        self.ttl_s = float("inf")

    async def acquire(self) -> bool:
        """Always held."""
        return True

    async def release(self) -> None:
        """Nothing to give back."""

    async def holder(self) -> str | None:
        """This process."""
        return self.owner

    def exclusive_tick(self, wait_s: float) -> contextlib.AbstractAsyncContextManager[None]:
        """Nothing to share: the desk service serialises its own ticks."""
        return contextlib.nullcontext()


class RedisLease:
    """A lease on a Redis key with an expiry (see the module docstring)."""

    def __init__(
        self, redis: Redis, key: str, *, ttl_s: float = 10.0, owner: str | None = None
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("the lease ttl must be positive")
        self.redis = redis
        self.key = key
        self.ttl_s = ttl_s
        self.owner = owner or replica_id()
        self._renew = redis.register_script(RENEW_SCRIPT)
        self._release = redis.register_script(RELEASE_SCRIPT)

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(self.ttl_s * 1000))

    async def acquire(self) -> bool:
        """Renew the lease if we hold it, else take it if it is free. RedisError propagates
        (the caller must treat it as not holding the lease)."""
        renewed = await self._renew(keys=[self.key], args=[self.owner, self._ttl_ms])
        if renewed:
            return True
        taken = await self.redis.set(self.key, self.owner, nx=True, px=self._ttl_ms)
        return bool(taken)

    async def release(self) -> None:
        """Delete the key if it is still ours (a failure is logged: the key expires anyway)."""
        try:
            await self._release(keys=[self.key], args=[self.owner])
        except RedisError as exc:
            log.warning("lease.release_failed", key=self.key, reason=str(exc))

    async def holder(self) -> str | None:
        """The owner string stored in the key."""
        return await self._owner_of(self.key)

    async def _owner_of(self, key: str) -> str | None:
        value = await self.redis.get(key)
        return value.decode() if isinstance(value, bytes) else value

    @contextlib.asynccontextmanager
    async def exclusive_tick(self, wait_s: float) -> AsyncIterator[None]:
        """The tick lock: a second key taken like the lease, renewed while the tick runs (a
        tick may outlast the ttl) and expiring within one ttl if its holder dies."""
        key, token = f"{self.key}:tick", f"{self.owner}:{uuid.uuid4().hex[:8]}"
        try:
            await self._take_tick_lock(key, token, wait_s)
        except RedisError as exc:
            raise TickLockError(f"the tick lock is out of reach (Redis: {exc})") from exc
        keeper = asyncio.create_task(self._keep_tick_lock(key, token), name="tick-lock")
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            try:
                await self._release(keys=[key], args=[token])
            except RedisError as exc:
                log.warning("lease.tick_unlock_failed", key=key, reason=str(exc))

    async def _take_tick_lock(self, key: str, token: str, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        while not await self.redis.set(key, token, nx=True, px=self._ttl_ms):
            if time.monotonic() >= deadline:
                raise TickBusy(await self._owner_of(key), wait_s)
            await asyncio.sleep(TICK_LOCK_POLL_S)

    async def _keep_tick_lock(self, key: str, token: str) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                await self._renew(keys=[key], args=[token, self._ttl_ms])
            except RedisError as exc:  # the health monitor reports the outage
                log.warning("lease.tick_lock_renew_failed", key=key, reason=str(exc))

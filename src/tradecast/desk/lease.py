"""Who runs a desk's loop: a lease that exactly one replica holds at a time.

Embedded, the one process always holds it (:class:`LocalLease`). Scaled out, the lease is a
redis-py :class:`~redis.asyncio.lock.Lock` (:class:`RedisLease`): taken with
``SET key owner NX PX ttl``, renewed well before it expires (``reacquire``), and given back on
a clean stop; renewing and releasing check the owner's token in redis-py's scripts, so a
replica that lost its lease (paused past the ttl) cannot extend or delete another's. If the
holder dies its key expires and another replica takes it within one ``ttl``. The owner string
is the lock's token, so :meth:`RedisLease.holder` can say who holds it.

The lease decides who runs the loop; a tick can still be forced through any replica. So every
tick, the loop's and a forced one, also holds the desk's tick lock (:meth:`exclusive_tick`),
another redis-py lock: replicas take turns, and the next one resumes from the cursor the
previous one stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, LockNotOwnedError, RedisError

from tradecast.errors import TickBusy, TickLockError
from tradecast.logs import get_logger

log = get_logger(__name__)

TICK_LOCK_POLL_S = 0.1


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
    """A lease on a redis-py lock with an expiry (see the module docstring)."""

    def __init__(
        self, redis: Redis, key: str, *, ttl_s: float = 10.0, owner: str | None = None
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("the lease ttl must be positive")
        self.redis = redis
        self.key = key
        self.ttl_s = ttl_s
        self.owner = owner or replica_id()
        # One lock object per lease, used from any task: its token is not thread-local.
        self._lock = Lock(redis, key, timeout=ttl_s, blocking=False, thread_local=False)
        self._token = self.owner.encode()

    async def acquire(self) -> bool:
        """Renew the lease if we hold it, else take it if it is free. RedisError propagates
        (the caller must treat it as not holding the lease)."""
        # The token is always our name, so a key we set whose reply was lost is still ours to
        # renew (the lock only learns its token from a reply it saw).
        self._lock.local.token = self._token
        try:
            await self._lock.reacquire()
            return True
        except LockNotOwnedError:
            pass  # free, expired or another's
        return bool(await self._lock.acquire(token=self._token))

    async def release(self) -> None:
        """Delete the key if it is still ours (a failure is logged: the key expires anyway)."""
        self._lock.local.token = self._token
        try:
            await self._lock.release()
        except LockNotOwnedError:
            pass  # not ours (any more): nothing to give back
        except (LockError, RedisError) as exc:
            log.warning("lease.release_failed", key=self.key, reason=str(exc))

    async def holder(self) -> str | None:
        """The owner string stored in the key."""
        return await self._owner_of(self.key)

    async def _owner_of(self, key: str) -> str | None:
        value = await self.redis.get(key)
        return value.decode() if isinstance(value, bytes) else value

    @contextlib.asynccontextmanager
    async def exclusive_tick(self, wait_s: float) -> AsyncIterator[None]:
        """The tick lock: a second lock with the lease's ttl, renewed while the tick runs (a
        tick may outlast the ttl) and expiring within one ttl if its holder dies."""
        key, token = f"{self.key}:tick", f"{self.owner}:{uuid.uuid4().hex[:8]}"
        lock = Lock(
            self.redis,
            key,
            timeout=self.ttl_s,
            sleep=TICK_LOCK_POLL_S,
            blocking_timeout=wait_s,
            thread_local=False,
        )
        try:
            taken = await lock.acquire(token=token)
            holder = None if taken else await self._owner_of(key)
        except RedisError as exc:
            raise TickLockError(f"the tick lock is out of reach (Redis: {exc})") from exc
        if not taken:
            raise TickBusy(holder, wait_s)
        keeper = asyncio.create_task(self._keep_tick_lock(lock), name="tick-lock")
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            try:
                await lock.release()
            except (LockError, RedisError) as exc:
                log.warning("lease.tick_unlock_failed", key=key, reason=str(exc))

    async def _keep_tick_lock(self, lock: Lock) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                await lock.reacquire()
            except (LockError, RedisError) as exc:  # the health monitor reports an outage
                log.warning("lease.tick_lock_renew_failed", key=lock.name, reason=str(exc))

"""Which replica runs the desk loop: the holder of the loop lease (:mod:`tradecast.desk.lease`).

This replica keeps trying to take or renew the lease; on every round it also reads what the
other replicas recorded (while the shared services are healthy), and when it becomes the
holder it first catches up with where the last holder left everything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tradecast.desk.health import HealthMonitor
from tradecast.desk.lease import LoopLease
from tradecast.logs import get_logger

log = get_logger(__name__)


class Leadership:
    """This replica's hold on the loop lease."""

    def __init__(
        self,
        lease: LoopLease,
        health: HealthMonitor | None,
        *,
        poll: Callable[[bool], Awaitable[None]],
        promoted: Callable[[], Awaitable[None]],
        on_change: Callable[[], None],
        symbol: str,
    ) -> None:
        self.lease = lease
        self.leader = False
        self._health = health
        self._poll = poll
        self._promoted = promoted
        self._on_change = on_change
        self._symbol = symbol

    async def keep(self) -> None:
        """Renew or take the lease a few times per lease period, until cancelled."""
        interval = min(self.lease.ttl_s / 3, 5.0)
        while True:
            await asyncio.sleep(interval)
            await self.keep_once()

    async def keep_once(self) -> None:
        """One round: take or renew the lease, read the store, follow a change of holder."""
        try:
            held = await self.lease.acquire()
        except Exception as exc:  # a lease we cannot renew is a lease we may have lost
            held = False
            log.warning("desk.lease_unreachable", reason=str(exc))
        if self._health is None or self._health.healthy:
            await self._poll(held and self.leader)
        if held and self.leader:
            return
        if held != self.leader:
            self.leader = held
            log.info(
                "desk.lease_acquired" if held else "desk.lease_lost",
                replica=self.lease.owner,
                symbol=self._symbol,
            )
            if held:
                await self._promoted()
            self._on_change()

    async def release(self) -> None:
        """Give the lease up (on close), so a standby takes over at once."""
        if self.leader:
            await self.lease.release()
            self.leader = False

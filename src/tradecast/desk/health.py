"""The health of the services a scaled-out desk depends on (Redis, PostgreSQL).

A monitor checks each one every few seconds. ``/readyz`` reports the checks, and the desk
loop does not tick while one fails: a desk that cannot record what it does, or whose viewers
cannot see it, must not trade. Each outage is logged once when it starts (with the reason) and
once when it ends; nothing needs a restart to recover.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tradecast.logs import get_logger

log = get_logger(__name__)
Probe = Callable[[], Awaitable[object]]
PROBE_TIMEOUT_S = 3.0


@dataclass
class CheckState:
    """The last outcome of one dependency's check."""

    ok: bool = True
    error: str | None = None
    since: float = 0.0


class HealthMonitor:
    """Runs named probes on an interval; a probe fails by raising or timing out."""

    def __init__(self, probes: dict[str, Probe], interval_s: float = 2.0) -> None:
        self.probes = probes
        self.interval_s = interval_s
        self.states = {name: CheckState(since=time.time()) for name in probes}
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def healthy(self) -> bool:
        """Whether every dependency answered its last check."""
        return all(state.ok for state in self.states.values())

    def problems(self) -> dict[str, str]:
        """The failing dependencies and why."""
        return {n: s.error or "failing" for n, s in self.states.items() if not s.ok}

    def report(self) -> dict[str, dict[str, object]]:
        """Every check's state, for ``/readyz``."""
        return {n: {"ok": s.ok, "error": s.error, "since": s.since} for n, s in self.states.items()}

    async def check_now(self) -> bool:
        """Run every probe once; returns ``healthy``."""
        results = await asyncio.gather(*(self._probe(n, p) for n, p in self.probes.items()))
        for name, error in zip(self.probes, results, strict=True):
            self._record(name, error)
        return self.healthy

    def start(self) -> None:
        """Check in the background until :meth:`aclose`."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="health-monitor")

    async def aclose(self) -> None:
        """Stop checking."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self.check_now()
            await asyncio.sleep(self.interval_s)

    @staticmethod
    async def _probe(name: str, probe: Probe) -> str | None:
        try:
            await asyncio.wait_for(probe(), PROBE_TIMEOUT_S)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            return f"{name} did not answer within {PROBE_TIMEOUT_S:.0f}s"
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"[:300]
        return None

    def _record(self, name: str, error: str | None) -> None:
        state = self.states[name]
        if (error is None) == state.ok:
            state.error = error
            return
        state.ok, state.error, state.since = error is None, error, time.time()
        if error is None:
            log.info("health.dependency_recovered", dependency=name)
        else:
            log.error("health.dependency_down", dependency=name, reason=error)
        self.changed.set()

"""A circuit breaker for an LLM server: stop hammering a server that keeps failing.

States: **closed** (calls go through) -> **open** after ``threshold`` consecutive failures
(calls fail at once with :class:`CircuitOpenError`, which agents turn into an explained
abstention) -> **half-open** once ``cooldown_s`` has passed (one trial call goes through,
the others still fail fast) -> **closed** when the trial succeeds, or open again (for another
cool-down) when it fails.

Only failures that say the server is unwell count: unreachable, timed out, or a backend
error. A garbage or empty answer comes from a live server and is not the breaker's business.
One breaker is shared by every role that talks to the same server (:func:`breaker_for`).

Other servers reuse it (the voice's speech server): ``scope`` names the breaker's kind in its
log events and open errors, ``setting`` the cool-down setting the open error points at.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from tradecast.errors import LLMError
from tradecast.logs import get_logger

log = get_logger(__name__)

LLM_COOLDOWN_SETTING = "TRADECAST_LLM__BREAKER_COOLDOWN_S"

SERVER_FAULTS: frozenset[str] = frozenset({"unreachable", "timeout", "backend"})
"""``LLMError`` kinds that count as a failure of the server."""


class BreakerState(StrEnum):
    """Where a breaker is."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(LLMError):
    """The breaker is open: the call was not made (kind ``unreachable``); ``scope`` tells an
    LLM server's breaker (``"llm"``) from another's."""

    def __init__(
        self,
        name: str,
        failures: int,
        retry_in_s: float,
        *,
        setting: str = LLM_COOLDOWN_SETTING,
        scope: str = "llm",
    ) -> None:
        super().__init__(
            "unreachable",
            f"circuit open for {name} after {failures} consecutive failures; not calling it "
            f"for another {retry_in_s:.1f} s ({setting})",
        )
        self.retry_in_s = retry_in_s
        self.setting = setting
        self.scope = scope


@dataclass
class BreakerStats:
    """What a breaker has seen (for tests, logs and metrics)."""

    calls: int = 0
    failures: int = 0
    rejected: int = 0
    opened: int = 0
    closed: int = 0


class CircuitBreaker:
    """Thread-safe breaker: ``before_call()``, then ``record_success()`` or
    ``record_failure()`` (or wrap the call in :meth:`guard`)."""

    def __init__(
        self,
        name: str,
        threshold: int = 3,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        setting: str = LLM_COOLDOWN_SETTING,
        scope: str = "llm",
    ) -> None:
        if threshold < 1 or cooldown_s <= 0:
            raise ValueError("threshold must be at least 1 and cooldown_s positive")
        self.name = name
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.setting = setting
        self.scope = scope
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self.stats = BreakerStats()

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker past its cool-down reads as half-open)."""
        with self._lock:
            if self._state is BreakerState.OPEN and self._cooled_down():
                return BreakerState.HALF_OPEN
            return self._state

    def before_call(self) -> None:
        """Admit a call, or raise :class:`CircuitOpenError` without calling."""
        with self._lock:
            if self._state is BreakerState.OPEN and self._cooled_down():
                self._state = BreakerState.HALF_OPEN
                self._trial_in_flight = False
                log.info(f"{self.scope}.breaker_half_open", breaker=self.name)
            if self._state is BreakerState.CLOSED:
                self.stats.calls += 1
                return
            if self._state is BreakerState.HALF_OPEN and not self._trial_in_flight:
                self._trial_in_flight = True
                self.stats.calls += 1
                return
            self.stats.rejected += 1
            retry_in = max(0.0, self._opened_at + self.cooldown_s - self._clock())
            raise CircuitOpenError(
                self.name, self._consecutive, retry_in, setting=self.setting, scope=self.scope
            )

    def record_success(self) -> None:
        """The call worked: close the breaker."""
        with self._lock:
            self._consecutive = 0
            self._trial_in_flight = False
            if self._state is not BreakerState.CLOSED:
                self._state = BreakerState.CLOSED
                self.stats.closed += 1
                log.info(f"{self.scope}.breaker_closed", breaker=self.name)

    def record_failure(self, error: BaseException) -> None:
        """The call failed; a server fault counts towards opening the breaker."""
        if isinstance(error, CircuitOpenError):
            return
        if isinstance(error, LLMError) and error.kind not in SERVER_FAULTS:
            self.record_success()  # the server answered: it is alive
            return
        with self._lock:
            self.stats.failures += 1
            self._consecutive += 1
            self._trial_in_flight = False
            if self._state is BreakerState.HALF_OPEN or self._consecutive >= self.threshold:
                if self._state is not BreakerState.OPEN:
                    self.stats.opened += 1
                    log.warning(
                        f"{self.scope}.breaker_open",
                        breaker=self.name,
                        failures=self._consecutive,
                        cooldown_s=self.cooldown_s,
                        error=str(error)[:200],
                    )
                self._state = BreakerState.OPEN
                self._opened_at = self._clock()

    def record_abandoned(self) -> None:
        """The call was cancelled before it said anything: let another call be the trial."""
        with self._lock:
            self._trial_in_flight = False

    def _cooled_down(self) -> bool:
        return self._clock() - self._opened_at >= self.cooldown_s


_BREAKERS: dict[tuple[str, int, float], CircuitBreaker] = {}
_REGISTRY_LOCK = threading.Lock()


def breaker_for(name: str, threshold: int, cooldown_s: float) -> CircuitBreaker:
    """The process-wide breaker of one server (every role on it shares the breaker)."""
    key = (name, threshold, cooldown_s)
    with _REGISTRY_LOCK:
        breaker = _BREAKERS.get(key)
        if breaker is None:
            breaker = _BREAKERS[key] = CircuitBreaker(name, threshold, cooldown_s)
        return breaker

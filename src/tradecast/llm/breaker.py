"""A circuit breaker for an LLM server: stop hammering a server that keeps failing.

States: **closed** (calls go through) -> **open** after ``threshold`` consecutive failures
(calls fail at once with :class:`CircuitOpenError`, which agents turn into an explained
abstention) -> **half-open** once ``cooldown_s`` has passed (one trial call goes through,
the others still fail fast) -> **closed** when the trial succeeds, or open again (for another
cool-down) when it fails. A trial that says nothing for a whole cool-down (its caller hung or
died) lets another call be the trial.

Only failures that say the server is unwell count: unreachable, timed out, or a backend
error. A garbage or empty answer comes from a live server and is not the breaker's business.
One breaker is shared by every role that talks to the same server (:func:`breaker_for`).

Where the state lives is a :class:`BreakerStore`: in this process (:class:`LocalBreakerStore`)
or, scaled out, in Redis (:mod:`tradecast.llm.breaker_redis`), so that one replica's view of
a dead server protects the others.

Other servers reuse it (the voice's speech server): ``scope`` names the breaker's kind in its
log events and open errors, ``setting`` the cool-down setting the open error points at.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

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


@dataclass(frozen=True)
class Admission:
    """A store's answer to "may a call go through now?"."""

    allowed: bool
    failures: int = 0
    """Consecutive failures so far (what a refusal reports)."""
    retry_in_s: float = 0.0
    """Until the cool-down (or the running trial's time) ends, when refused."""
    trial: bool = False
    """The call is the half-open trial."""
    half_opened: bool = False
    """This admission ended the cool-down (and so is the trial)."""


@dataclass(frozen=True)
class FailureOutcome:
    """What recording a server fault did."""

    opened: bool
    """The breaker was closed or half-open and is open now."""
    failures: int


class BreakerStore(Protocol):
    """Where one breaker's state lives; every operation is atomic."""

    def state(self) -> BreakerState:
        """The state now (an open breaker past its cool-down reads as half-open).

        Raises:
            Nothing: a store that cannot reach its backend answers from a local fallback.
        """
        ...

    def admit(self) -> Admission:
        """Admit a call (closed, or the one half-open trial) or refuse it.

        Returns:
            The admission; a refusal says how long the cool-down still runs.
        """
        ...

    def fail(self, threshold: int) -> FailureOutcome:
        """Count a server fault: open after ``threshold`` in a row, or when the trial fails.

        Returns:
            Whether this fault opened the breaker, and the consecutive count.
        """
        ...

    def succeed(self) -> bool:
        """A call worked: close the breaker and reset the count.

        Returns:
            Whether the breaker was open or half-open before.
        """
        ...

    def abandon(self) -> None:
        """A call was cancelled before it said anything: free the trial slot."""
        ...


class LocalBreakerStore:
    """A breaker's state in this process, on ``clock`` (monotonic seconds)."""

    def __init__(self, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_at: float | None = None

    def state(self) -> BreakerState:
        """The state now."""
        with self._lock:
            if self._state is BreakerState.OPEN and self._cooled_down(self._opened_at):
                return BreakerState.HALF_OPEN
            return self._state

    def admit(self) -> Admission:
        """Admit or refuse a call."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return Admission(True)
            half_opened = self._state is BreakerState.OPEN and self._cooled_down(self._opened_at)
            if half_opened:
                self._state = BreakerState.HALF_OPEN
            trial_free = self._trial_at is None or self._cooled_down(self._trial_at)
            if self._state is BreakerState.HALF_OPEN and (half_opened or trial_free):
                self._trial_at = self._clock()
                return Admission(True, self._failures, trial=True, half_opened=half_opened)
            since = self._opened_at if self._trial_at is None else self._trial_at
            retry_in = max(0.0, since + self.cooldown_s - self._clock())
            return Admission(False, self._failures, retry_in)

    def fail(self, threshold: int) -> FailureOutcome:
        """Count a fault."""
        with self._lock:
            self._failures += 1
            self._trial_at = None
            if self._state is not BreakerState.HALF_OPEN and self._failures < threshold:
                return FailureOutcome(False, self._failures)
            opened = self._state is not BreakerState.OPEN
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()
            return FailureOutcome(opened, self._failures)

    def succeed(self) -> bool:
        """Close the breaker."""
        with self._lock:
            was_closed = self._state is BreakerState.CLOSED
            self._state, self._failures, self._trial_at = BreakerState.CLOSED, 0, None
            return not was_closed

    def abandon(self) -> None:
        """Free the trial slot."""
        with self._lock:
            self._trial_at = None

    def _cooled_down(self, since: float) -> bool:
        return self._clock() - since >= self.cooldown_s


class BreakerBoard(Protocol):
    """Makes the stores of a deployment's breakers (one per server name)."""

    def store(self, name: str, cooldown_s: float) -> BreakerStore:
        """The store of the breaker called ``name``.

        Args:
            name: the server's breaker name (``ollama at http://...``).
            cooldown_s: how long an open breaker refuses calls.

        Returns:
            A store shared by every breaker of this board with that name.
        """
        ...


class LocalBreakerBoard:
    """Breakers whose state lives in this process (the embedded default)."""

    def store(self, name: str, cooldown_s: float) -> BreakerStore:
        """A new in-process store."""
        return LocalBreakerStore(cooldown_s)


LOCAL_BOARD = LocalBreakerBoard()


@dataclass
class BreakerStats:
    """What a breaker has seen in this process (for tests, logs and metrics)."""

    calls: int = 0
    failures: int = 0
    rejected: int = 0
    opened: int = 0
    closed: int = 0


class CircuitBreaker:
    """Thread-safe breaker: ``before_call()``, then ``record_success()`` or
    ``record_failure()``; its state lives in ``store`` (by default in this process, on
    ``clock``)."""

    def __init__(
        self,
        name: str,
        threshold: int = 3,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        setting: str = LLM_COOLDOWN_SETTING,
        scope: str = "llm",
        store: BreakerStore | None = None,
    ) -> None:
        if threshold < 1 or cooldown_s <= 0:
            raise ValueError("threshold must be at least 1 and cooldown_s positive")
        self.name = name
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.setting = setting
        self.scope = scope
        self.store: BreakerStore = store or LocalBreakerStore(cooldown_s, clock)
        self._stats_lock = threading.Lock()
        self.stats = BreakerStats()

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker past its cool-down reads as half-open)."""
        return self.store.state()

    def before_call(self) -> bool:
        """Admit a call, or raise :class:`CircuitOpenError` without calling; whether the call
        is the half-open trial (a trial cancelled before it says anything must be given back
        with :meth:`record_abandoned`)."""
        admission = self.store.admit()
        if admission.half_opened:
            log.info(f"{self.scope}.breaker_half_open", breaker=self.name)
        with self._stats_lock:
            if admission.allowed:
                self.stats.calls += 1
                return admission.trial
            self.stats.rejected += 1
        raise CircuitOpenError(
            self.name,
            admission.failures,
            admission.retry_in_s,
            setting=self.setting,
            scope=self.scope,
        )

    def record_success(self) -> None:
        """The call worked: close the breaker."""
        if self.store.succeed():
            with self._stats_lock:
                self.stats.closed += 1
            log.info(f"{self.scope}.breaker_closed", breaker=self.name)

    def record_failure(self, error: BaseException) -> None:
        """The call failed; a server fault counts towards opening the breaker."""
        if isinstance(error, CircuitOpenError):
            return
        if isinstance(error, LLMError) and error.kind not in SERVER_FAULTS:
            self.record_success()  # the server answered: it is alive
            return
        outcome = self.store.fail(self.threshold)
        with self._stats_lock:
            self.stats.failures += 1
            if outcome.opened:
                self.stats.opened += 1
        if outcome.opened:
            log.warning(
                f"{self.scope}.breaker_open",
                breaker=self.name,
                failures=outcome.failures,
                cooldown_s=self.cooldown_s,
                error=str(error)[:200],
            )

    def record_abandoned(self) -> None:
        """The trial call was cancelled before it said anything: let another call be the
        trial (call it only for the call :meth:`before_call` named the trial)."""
        self.store.abandon()


_BREAKERS: dict[tuple[str, int, float, int], CircuitBreaker] = {}
_REGISTRY_LOCK = threading.Lock()


def breaker_for(
    name: str, threshold: int, cooldown_s: float, board: BreakerBoard = LOCAL_BOARD
) -> CircuitBreaker:
    """The process-wide breaker of one server (every role on it shares the breaker), its
    state kept where ``board`` keeps it."""
    key = (name, threshold, cooldown_s, id(board))
    with _REGISTRY_LOCK:
        breaker = _BREAKERS.get(key)
        if breaker is None:
            breaker = _BREAKERS[key] = CircuitBreaker(
                name, threshold, cooldown_s, store=board.store(name, cooldown_s)
            )
        return breaker

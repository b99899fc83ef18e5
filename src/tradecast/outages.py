"""Leaving a failing shared store alone for a while: its users answer from their own state.

Scaled out, the rate limit and the model server's breaker keep their state in Redis. When Redis
fails, each call would otherwise wait out its own timeout; :class:`OutageBackoff` remembers the
failure so that callers skip the store for ``backoff_s`` and a hung Redis costs one timeout per
window, and says so once per outage (``<event>_failed``, then ``<event>_again``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import structlog


class OutageBackoff:
    """Whether to skip a shared store now, and the log lines of its outages (thread-safe)."""

    def __init__(
        self,
        log: structlog.typing.FilteringBoundLogger,
        event: str,
        backoff_s: float,
        **context: Any,
    ) -> None:
        self._log = log
        self._event = event
        self._backoff_s = backoff_s
        self._context = context
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._in_outage = False

    def skipping(self) -> bool:
        """The store failed less than ``backoff_s`` ago: do not ask it."""
        return time.monotonic() < self._down_until

    def failed(self, exc: BaseException) -> None:
        """The store failed: skip it for ``backoff_s`` (logged at an outage's first failure)."""
        with self._lock:
            self._down_until = time.monotonic() + self._backoff_s
            first, self._in_outage = not self._in_outage, True
        if first:
            self._log.warning(
                f"{self._event}_failed",
                error=type(exc).__name__,
                reason=str(exc)[:200],
                **self._context,
            )

    def answered(self) -> None:
        """The store answered (logged when it ends an outage)."""
        if not self._in_outage:
            return
        with self._lock:
            ended, self._in_outage = self._in_outage, False
        if ended:
            self._log.info(f"{self._event}_again", **self._context)

"""Failed authentication attempts, logged for the operator: the route, the client's address,
the status and why, and a short digest of the key that was tried (never the key).

Rate limited, so a flood of bad keys cannot flood the log: at most ``per_window`` lines per
window; the lines held back are counted in the next one that is written.
"""

from __future__ import annotations

import hashlib
import time

from fastapi import Request

from tradecast.logs import get_logger

log = get_logger(__name__)
DIGEST_PREFIX = 12
"""Hex digits of the tried key's SHA-256 that are logged: enough to tell attempts apart."""


def key_digest(key: str | None) -> str | None:
    """A short SHA-256 prefix of ``key`` (None when no key was sent)."""
    if not key:
        return None
    return hashlib.sha256(key.encode()).hexdigest()[:DIGEST_PREFIX]


class DeniedLog:
    """Writes ``api.auth_denied`` lines, at most ``per_window`` per ``window_s`` seconds."""

    def __init__(self, per_window: int = 30, window_s: float = 60.0) -> None:
        self.per_window = per_window
        self.window_s = window_s
        self._window_start = float("-inf")
        self._written = 0
        self._held_back = 0

    def denied(self, request: Request, status: int, reason: str, key: str | None) -> None:
        """Record one refused request (401 or 403)."""
        now = time.monotonic()
        if now - self._window_start >= self.window_s:
            self._window_start, self._written = now, 0
        if self._written >= self.per_window:
            self._held_back += 1
            return
        self._written += 1
        held_back, self._held_back = self._held_back, 0
        log.warning(
            "api.auth_denied",
            status=status,
            reason=reason,
            method=request.method,
            route=request.url.path,
            client=request.client.host if request.client else None,
            key_sha256_prefix=key_digest(key),
            held_back=held_back,
        )

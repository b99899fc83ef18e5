"""Limit changes that take much more risk wait for a confirmation before they apply.

A change that loosens a limit by more than :data:`LOOSEN_FACTOR` (a position cap from 5% to
50%, a cooldown from 60 to 10 minutes) is held under a one-time token; the same actor sends
``confirm <token>`` in chat, or ``PUT /v1/risk/limits?confirm=<token>``, within
:data:`CONFIRM_TTL_S` seconds to apply it. One path for chat and HTTP, so neither can skip it.
"""

from __future__ import annotations

import secrets
import time
from decimal import Decimal
from typing import Any, Protocol

from tradecast.errors import ConfirmationRequired, NotFound
from tradecast.settings import RiskLimits

LOOSEN_FACTOR = Decimal(2)
CONFIRM_TTL_S = 300.0
MAX_WAITING = 32
"""Unconfirmed changes kept at once (the oldest are dropped past it)."""


def loosens_a_lot(field: str, current: Any, proposed: Any) -> bool:
    """Whether ``field`` going from ``current`` to ``proposed`` takes more than
    :data:`LOOSEN_FACTOR` times the risk (a cooldown shrinking, any other cap growing)."""
    if field == "kill_switch":
        return False
    if field == "cooldown_minutes":
        return Decimal(proposed) * LOOSEN_FACTOR < Decimal(current)
    return Decimal(proposed) > Decimal(current) * LOOSEN_FACTOR


class HeldChanges(Protocol):
    """Where held changes wait (the desk store: shared by replicas when they share one)."""

    def hold_change(
        self, token: str, actor: str, changes: dict[str, Any], expires_at: float, keep: int
    ) -> None:
        """Keep ``changes`` under ``token`` until ``expires_at`` (epoch seconds), and only the
        newest ``keep`` changes."""
        ...

    def take_change(self, token: str, actor: str) -> dict[str, Any] | None:
        """Remove and return the unexpired changes ``actor`` holds under ``token`` (atomic)."""
        ...


class Confirmations:
    """Changes waiting for their actor's confirmation, by token. They are kept in the desk
    store, so a confirmation may reach any replica, and applies once."""

    def __init__(self, held: HeldChanges, ttl_s: float = CONFIRM_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._held = held

    def check(self, actor: str, current: RiskLimits, changes: dict[str, Any]) -> None:
        """Let ``changes`` through, or hold them and ask for a confirmation.

        Raises:
            ConfirmationRequired: a change loosens a limit by more than the factor; the
                error carries the token that applies it.
        """
        big = [f for f, v in changes.items() if loosens_a_lot(f, getattr(current, f), v)]
        if not big:
            return
        token = secrets.token_hex(4)
        self._held.hold_change(token, actor, dict(changes), time.time() + self.ttl_s, MAX_WAITING)
        described = ", ".join(f"{f} {getattr(current, f)} -> {changes[f]}" for f in big)
        raise ConfirmationRequired(
            token,
            f"{described} loosens a limit by more than {LOOSEN_FACTOR}x; to apply it, send "
            f"'confirm {token}' in chat or PUT /v1/risk/limits?confirm={token} within "
            f"{self.ttl_s / 60:.0f} minutes",
        )

    def redeem(self, actor: str, token: str) -> dict[str, Any]:
        """The changes held under ``token`` for ``actor`` (the token is used up).

        Raises:
            NotFound: no such token for this actor, or it expired.
        """
        changes = self._held.take_change(token, actor)
        if changes is None:
            raise NotFound(f"no limit change waits for confirmation under {token!r}")
        return changes

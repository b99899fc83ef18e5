"""What operators may do to a running desk: the interface the chat graph and the API share.

The API's desk service implements it; the chat-control graph only ever reaches the desk
through it, so a chat message can do nothing an API call with the same role could not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from decimal import Decimal
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from tradecast.graphs.runner import TickResult
from tradecast.settings import RiskLimits

T = TypeVar("T")

Role = Literal["viewer", "operator", "admin"]
ROLE_RANK: dict[Role, int] = {"viewer": 0, "operator": 1, "admin": 2}


def role_allows(role: Role, needed: Role) -> bool:
    """Whether ``role`` has at least the rights of ``needed``."""
    return ROLE_RANK[role] >= ROLE_RANK[needed]


@runtime_checkable
class DeskControls(Protocol):
    """Operator actions on one desk. Every call validates its input and journals what it did."""

    async def pause(self, actor: str) -> dict[str, Any]:
        """Stop ticking (the loop keeps its place); returns the new status."""
        ...

    async def resume(self, actor: str) -> dict[str, Any]:
        """Start ticking again; returns the new status."""
        ...

    def status(self) -> dict[str, Any]:
        """Running or paused, symbol, cadence, last tick, pending approvals, equity."""
        ...

    def limits(self) -> RiskLimits:
        """The risk limits in force."""
        ...

    async def set_limits(self, actor: str, **changes: Any) -> RiskLimits:
        """Change risk limits (validated as a whole; nothing changes when they are refused).

        Raises:
            ValueError: a limit is invalid (the message names it and the rule).
            ConfirmationRequired: a change loosens a limit by more than 2x; it waits for
                :meth:`confirm_limits` with the error's token.
        """
        ...

    async def confirm_limits(self, actor: str, token: str) -> RiskLimits:
        """Apply the limit change ``actor`` was asked to confirm under ``token``.

        Raises:
            NotFound: no change of this actor waits under that token.
        """
        ...

    async def decide_approval(
        self,
        actor: str,
        decision_id: str,
        approved: bool,
        *,
        quantity: Decimal | None = None,
        note: str | None = None,
    ) -> TickResult:
        """Approve or reject the order pending under ``decision_id``; an approval may cut the
        order to ``quantity`` (never raise it); ``note`` is the human's reason.

        Raises:
            NotFound: nothing is pending under that id.
            DeskConflict: the desk cannot act now (a shared service is down, or another
                replica holds the tick).
        """
        ...

    async def force_tick(self, actor: str) -> TickResult:
        """Run one tick now.

        Raises:
            DeskConflict: the replay has ended, a shared service is down, or another replica
                holds the tick.
        """
        ...

    async def pending_reviews(self) -> list[dict[str, Any]]:
        """The review request of each order waiting for a human (the interrupt values of
        :func:`tradecast.graphs.review.review_request`), oldest first."""
        ...

    def recent_decisions(self, limit: int = 5) -> list[dict[str, Any]]:
        """The latest decisions, newest first: ``TickResult.decision`` dicts plus ``executed``
        (whether an order filled for it)."""
        ...


_FINISHING: set[asyncio.Future[Any]] = set()


async def finished_anyway(work: Awaitable[T]) -> T:
    """Await ``work`` so that cancelling the caller does not cut it short: a control action
    that has started (a tick, an approval) finishes, fills and is journaled, and only the
    caller stops waiting. A trade half done is worse than one done."""
    task = asyncio.ensure_future(work)
    _FINISHING.add(task)
    task.add_done_callback(_FINISHING.discard)
    return await asyncio.shield(task)

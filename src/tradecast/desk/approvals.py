"""The orders waiting for an operator: which decision, on which tick thread, at which instant.

They are restored from the desk store and the tick checkpoints (a restart or another replica
finds them again) and dropped once any replica has decided them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from tradecast.desk.publisher import EventPublisher
from tradecast.desk.store import DeskStore
from tradecast.domain import StreamEvent
from tradecast.graphs.runner import TickResult
from tradecast.logs import get_logger

log = get_logger(__name__)
ThreadState = Callable[[str], Awaitable[dict[str, Any] | None]]
"""A tick thread's checkpointed state (None: no such thread)."""
OrderPlaced = Callable[[dict[str, Any]], bool]
"""Whether the broker holds the order an approval request asks about."""


class PendingApprovals:
    """Pending approvals by decision id: ``(thread id, decided-at instant)``."""

    def __init__(
        self,
        store: DeskStore,
        publisher: EventPublisher,
        thread_state: ThreadState,
        on_change: Callable[[], None],
        order_placed: OrderPlaced,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._thread_state = thread_state
        self._on_change = on_change
        self._order_placed = order_placed
        self._pending: dict[str, tuple[str, datetime]] = {}
        self._placed: dict[str, tuple[str, datetime]] = {}

    def __contains__(self, decision_id: object) -> bool:
        return decision_id in self._pending

    def __bool__(self) -> bool:
        return bool(self._pending)

    def ids(self) -> list[str]:
        """The decision ids waiting, sorted."""
        return sorted(self._pending)

    def get(self, decision_id: str) -> tuple[str, datetime] | None:
        """The thread and instant of the order waiting under ``decision_id``, if any."""
        return self._pending.get(decision_id)

    async def opened(self, result: TickResult, moment: datetime) -> None:
        """Record a tick that stopped for approval (announced again when it was restored
        from a checkpoint rather than opened just now)."""
        decision_id = result.decision_id
        restored = decision_id not in self._pending and result.resumed
        self._pending[decision_id] = (result.thread_id, moment)
        if restored:
            await self._announce_restored(result.thread_id, {"decision_id": decision_id})

    def closed(self, decision_id: str) -> None:
        """Forget ``decision_id``: its tick went on."""
        self._pending.pop(decision_id, None)

    async def restore(self, *, announce: bool = True) -> None:
        """Find the ticks the store says wait for approval and whose checkpoint still has the
        interrupt; announce each on the desk stream when ``announce``. A tick whose order the
        broker holds was approved before the desk stopped (the answer's checkpoint was lost):
        it is kept for :meth:`take_placed`, not offered for approval again."""
        for tick in self._store.awaiting_approval():
            state = await self._thread_state(tick.thread_id)
            decision = tick.decision
            if state is None or not state["interrupts"] or decision is None:
                continue
            request = state["interrupts"][0]["value"]
            if self._order_placed(request):
                self._pending.pop(decision.id, None)
                self._placed[decision.id] = (tick.thread_id, decision.decided_at)
                continue
            self._pending[decision.id] = (tick.thread_id, decision.decided_at)
            if announce:
                await self._announce_restored(tick.thread_id, request)
        if self._pending:
            log.info("desk.approvals_restored", pending=sorted(self._pending))

    def take_placed(self) -> dict[str, tuple[str, datetime]]:
        """The ticks found waiting although their order was placed (each handed out once)."""
        placed, self._placed = self._placed, {}
        return placed

    async def _announce_restored(self, thread_id: str, request: dict[str, Any]) -> None:
        await self._publisher.publish(
            StreamEvent(
                channel="desk",
                event="approval_pending",
                run_id=thread_id,
                thread_id=thread_id,
                data={**request, "restored": True},
            )
        )

    def catch_up(self) -> None:
        """Drop approvals another replica decided (so the loop does not wait for them)."""
        self.drop_decided({d: self._store.tick(d) for d in list(self._pending)})

    def drop_decided(self, ticks: dict[str, TickResult | None]) -> None:
        """Drop every decision whose stored tick no longer waits."""
        before = len(self._pending)
        for decision_id, tick in ticks.items():
            if tick is not None and tick.status != "awaiting_approval":
                self._pending.pop(decision_id, None)
        if len(self._pending) != before:
            self._on_change()

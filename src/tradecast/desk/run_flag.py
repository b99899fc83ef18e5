"""Whether the desk is running or paused, shared by every replica through the desk store.

A pause or resume an operator recorded outlives restarts and failovers: a paused desk must
not start trading because a replica came up with autostart on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tradecast.desk.store import DeskStore
from tradecast.domain import utc_now
from tradecast.logs import get_logger

log = get_logger(__name__)
RUN_FLAG_KEY = "desk_running"


class RunFlag:
    """The operator's run/pause choice, as this replica last saw it in the store."""

    def __init__(self, store: DeskStore, on_change: Callable[[], None]) -> None:
        self._store = store
        self._on_change = on_change
        self.running = asyncio.Event()
        self._seen: Any = store.get_state(RUN_FLAG_KEY)

    def start(self, *, autostart: bool) -> None:
        """Run when the stored flag says so, or (with none stored) when ``autostart``."""
        stored = self._seen
        if stored["running"] if stored else autostart:
            self.running.set()

    def is_set(self) -> bool:
        """Whether the desk should tick."""
        return self.running.is_set()

    def record(self, *, running: bool, actor: str) -> None:
        """Pause or resume, and record it in the store so the replica running the loop
        follows it."""
        if running:
            self.running.set()
        else:
            self.running.clear()
        flag = {"running": running, "by": actor, "at": utc_now().isoformat()}
        self._store.set_state(RUN_FLAG_KEY, flag)
        self._seen = flag

    def read(self) -> Any:
        """The flag stored now (blocking: the store's call)."""
        return self._store.get_state(RUN_FLAG_KEY)

    def follow(self) -> None:
        """Apply a pause or resume another replica recorded since this one last looked."""
        self.apply(self.read())

    def apply(self, flag: Any, *, force: bool = False) -> None:
        """Follow ``flag`` (as read from the store) when it is new, or always when ``force``."""
        if flag is None or (flag == self._seen and not force):
            return
        self._seen = flag
        if flag["running"]:
            self.running.set()
        else:
            self.running.clear()
        log.info("desk.run_flag_followed", running=flag["running"], by=flag.get("by"))
        self._on_change()

"""The broker's append-only journal: every order, fill, cancel, stop-out and price mark.

A restart replays an account's events in order and gets the portfolio back exactly. The
journal only stores events; what they mean belongs to the paper book
(:mod:`tradecast.broker.book`). One :meth:`Journal.append` call is one transaction: an
order and its fills are written together or not at all.

Embedded default: SQLite in the data dir (WAL). The Postgres journal
(:mod:`tradecast.broker.journal_postgres`, scale-out) implements the same Protocol and passes
the same contract tests.

Several brokers may share one account's journal (replicas of the API): an append names the
last sequence number its writer has applied (``after_seq``), and is refused with
:class:`JournalConflict` when another writer got there first, so the writer catches up and
plans again instead of acting on a stale book.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from tradecast.errors import BrokerError
from tradecast.logs import get_logger

log = get_logger(__name__)

JOURNAL_FILENAME = "journal.sqlite"


@dataclass(frozen=True, slots=True)
class JournalEvent:
    """One fact the broker recorded. ``data`` holds JSON values only (Decimals as strings)."""

    kind: str
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    seq: int | None = None
    """Position in the journal, assigned on append (None before)."""


class JournalConflict(BrokerError):
    """The account's journal moved on since the writer last read it (nothing was stored)."""


@runtime_checkable
class Journal(Protocol):
    """Durable, append-only event storage, partitioned by account."""

    def append(
        self, account: str, events: Sequence[JournalEvent], *, after_seq: int | None = None
    ) -> int:
        """Store ``events`` atomically (all or none), after the account's earlier events, and
        return the sequence number of the last one stored (0 when ``events`` is empty).

        With ``after_seq``, store them only if the account's latest event is still that one
        (0: the account has none); otherwise raise :class:`JournalConflict`.
        """
        ...

    def read(self, account: str, after_seq: int = 0) -> list[JournalEvent]:
        """The account's events with ``seq`` above ``after_seq``, oldest first."""
        ...

    def accounts(self) -> list[str]:
        """Accounts with at least one event, sorted."""
        ...

    def close(self) -> None:
        """Release the storage (idempotent)."""
        ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS broker_events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    kind    TEXT NOT NULL,
    at      TEXT NOT NULL,
    data    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS broker_events_account ON broker_events (account, seq);
"""

Synchronous = Literal["OFF", "NORMAL", "FULL"]


class SqliteJournal:
    """The journal in one SQLite file (``:memory:`` for a throw-away journal).

    WAL mode with ``synchronous=NORMAL`` by default: a committed transaction survives a crash
    of the process (kill -9); ``FULL`` also survives a power cut, at an fsync per append.
    """

    def __init__(self, path: str | Path, synchronous: Synchronous = "NORMAL") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={synchronous}")
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise BrokerError(f"cannot open the journal at {self.path}: {exc}") from None
        self._lock = threading.Lock()
        self._closed = False

    def append(
        self, account: str, events: Sequence[JournalEvent], *, after_seq: int | None = None
    ) -> int:
        """Store ``events`` in one transaction; on any error nothing is stored."""
        if not events:
            return 0
        with self._lock:
            self._check_open()
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                if after_seq is not None:
                    (latest,) = self._conn.execute(
                        "SELECT COALESCE(MAX(seq), 0) FROM broker_events WHERE account = ?",
                        (account,),
                    ).fetchone()
                    check_position(account, latest, after_seq)
                last = 0
                for event in events:
                    cursor = self._conn.execute(
                        "INSERT INTO broker_events (account, kind, at, data) VALUES (?, ?, ?, ?)",
                        (account, event.kind, event.at.isoformat(), encode_event(event)),
                    )
                    last = cursor.lastrowid or 0
                self._conn.execute("COMMIT")
                return last
            except JournalConflict:
                self._rollback()
                raise
            except (sqlite3.Error, TypeError, ValueError) as exc:
                self._rollback()
                raise BrokerError(
                    f"could not record {len(events)} broker event(s) in the journal at "
                    f"{self.path} (nothing was recorded): {exc}"
                ) from None

    def read(self, account: str, after_seq: int = 0) -> list[JournalEvent]:
        """The account's events after ``after_seq``, oldest first."""
        with self._lock:
            self._check_open()
            try:
                rows = self._conn.execute(
                    "SELECT seq, kind, at, data FROM broker_events "
                    "WHERE account = ? AND seq > ? ORDER BY seq",
                    (account, after_seq),
                ).fetchall()
            except sqlite3.Error as exc:
                raise BrokerError(f"cannot read the journal at {self.path}: {exc}") from None
        return [
            JournalEvent(kind=kind, at=datetime.fromisoformat(at), data=json.loads(data), seq=seq)
            for seq, kind, at, data in rows
        ]

    def accounts(self) -> list[str]:
        """Accounts with at least one event, sorted."""
        with self._lock:
            self._check_open()
            rows = self._conn.execute(
                "SELECT DISTINCT account FROM broker_events ORDER BY account"
            ).fetchall()
        return [account for (account,) in rows]

    def close(self) -> None:
        """Close the database file (idempotent)."""
        with self._lock:
            if not self._closed:
                self._conn.close()
                self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise BrokerError(f"the journal at {self.path} is closed")

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")


def check_position(account: str, latest: int, after_seq: int) -> None:
    """Raise :class:`JournalConflict` unless the account's latest event is ``after_seq``."""
    if latest != after_seq:
        raise JournalConflict(
            f"the journal of account {account!r} is at event {latest}, not {after_seq}: "
            "another writer appended first"
        )


def encode_event(event: JournalEvent) -> str:
    """The JSON text stored for ``event``'s data (ValueError on a naive time or a NaN)."""
    if event.at.tzinfo is None:
        raise ValueError(f"event {event.kind!r} has a naive time {event.at.isoformat()}")
    # allow_nan=False: a NaN must never reach the books, not even as JSON.
    return json.dumps(event.data, allow_nan=False, separators=(",", ":"), sort_keys=True)

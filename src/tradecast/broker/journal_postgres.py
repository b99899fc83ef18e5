"""The broker journal in PostgreSQL, for replicas that share one account (scale-out).

Appends to one account are serialised by a transaction-scoped advisory lock, so sequence
numbers are committed in order (a reader resuming after ``seq`` never skips an event committed
later with a smaller number) and ``after_seq`` checks are exact. Event data is stored as the
same JSON text as in SQLite, so both journals read back identical events.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from tradecast.broker.journal import (
    JournalConflict,
    JournalEvent,
    check_position,
    encode_event,
)
from tradecast.errors import BrokerError
from tradecast.logs import get_logger
from tradecast.postgres import open_pool_with_schema

log = get_logger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS broker_events (
    seq     BIGSERIAL PRIMARY KEY,
    account TEXT NOT NULL,
    kind    TEXT NOT NULL,
    at      TIMESTAMPTZ NOT NULL,
    data    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS broker_events_account ON broker_events (account, seq);
"""


class PostgresJournal:
    """:class:`~tradecast.broker.journal.Journal` on a PostgreSQL database (a small pool)."""

    def __init__(self, url: str, *, pool_size: int = 4, connect_timeout_s: float = 2.0) -> None:
        import psycopg

        self.url = url
        self._errors: tuple[type[Exception], ...] = (psycopg.Error,)
        try:
            self._pool = open_pool_with_schema(
                url, SCHEMA, autocommit=False, pool_size=pool_size, timeout_s=connect_timeout_s
            )
        except Exception as exc:
            raise BrokerError(f"cannot open the journal in PostgreSQL: {exc}") from None
        self._closed = False

    def append(
        self, account: str, events: Sequence[JournalEvent], *, after_seq: int | None = None
    ) -> int:
        """Store ``events`` in one transaction; on any error nothing is stored."""
        if not events:
            return 0
        self._check_open()
        # Named and typed: mypy cannot type a starred tuple written in the except clause.
        errors: tuple[type[Exception], ...] = (*self._errors, TypeError, ValueError)
        try:
            rows = [(account, e.kind, e.at, encode_event(e)) for e in events]
            with self._pool.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (account,))
                if after_seq is not None:
                    row = conn.execute(
                        "SELECT COALESCE(MAX(seq), 0) FROM broker_events WHERE account = %s",
                        (account,),
                    ).fetchone()
                    check_position(account, int(row[0]) if row else 0, after_seq)
                last = 0
                for row_values in rows:
                    stored = conn.execute(
                        "INSERT INTO broker_events (account, kind, at, data) "
                        "VALUES (%s, %s, %s, %s) RETURNING seq",
                        row_values,
                    ).fetchone()
                    last = int(stored[0]) if stored else last
                return last
        except JournalConflict:
            raise
        except errors as exc:
            raise BrokerError(
                f"could not record {len(events)} broker event(s) in PostgreSQL "
                f"(nothing was recorded): {exc}"
            ) from None

    def read(self, account: str, after_seq: int = 0) -> list[JournalEvent]:
        """The account's events after ``after_seq``, oldest first."""
        self._check_open()
        try:
            with self._pool.connection() as conn:
                rows = conn.execute(
                    "SELECT seq, kind, at, data FROM broker_events "
                    "WHERE account = %s AND seq > %s ORDER BY seq",
                    (account, after_seq),
                ).fetchall()
        except self._errors as exc:
            raise BrokerError(f"cannot read the journal in PostgreSQL: {exc}") from None
        return [
            JournalEvent(kind=kind, at=_utc(at), data=json.loads(data), seq=int(seq))
            for seq, kind, at, data in rows
        ]

    def accounts(self) -> list[str]:
        """Accounts with at least one event, sorted."""
        self._check_open()
        try:
            with self._pool.connection() as conn:
                rows = conn.execute(
                    "SELECT DISTINCT account FROM broker_events ORDER BY account"
                ).fetchall()
        except self._errors as exc:
            raise BrokerError(f"cannot read the journal in PostgreSQL: {exc}") from None
        return [account for (account,) in rows]

    def close(self) -> None:
        """Close the pool (idempotent)."""
        if not self._closed:
            self._closed = True
            self._pool.close()

    def _check_open(self) -> None:
        if self._closed:
            raise BrokerError("the PostgreSQL journal is closed")


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)

"""The SQL connection under the desk store: SQLite in the data dir, or PostgreSQL when the
replicas share state (scale-out).

Queries are written once, in the SQL both engines understand (``ON CONFLICT``, ``RETURNING``),
with ``?`` placeholders; the PostgreSQL side rewrites them to ``%s``. Only the schema's id
column differs.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from tradecast.errors import StoreUnavailable
from tradecast.postgres import open_pool_with_schema

Rows = list[tuple[Any, ...]]

TABLES = """
CREATE TABLE IF NOT EXISTS control_journal (
    seq {serial},
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_by_time ON decisions (decided_at DESC, decision_id DESC);
CREATE TABLE IF NOT EXISTS desk_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS confirmations (
    token TEXT PRIMARY KEY,
    actor TEXT NOT NULL,
    changes TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_digest TEXT PRIMARY KEY,
    key_name TEXT NOT NULL,
    key_proof TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS threads (
    thread_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    metadata TEXT NOT NULL
);
"""


class StoreDb(Protocol):
    """One SQL statement at a time, each committed on its own."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> tuple[Rows, int]:
        """Run ``sql`` (``?`` placeholders); returns the rows it produced and the row count."""
        ...

    def close(self) -> None:
        """Release the connection(s)."""
        ...


class SqliteStoreDb:
    """The store in one SQLite file (WAL), shared by the threads of one process."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(TABLES.format(serial="INTEGER PRIMARY KEY AUTOINCREMENT"))
        self._lock = threading.Lock()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> tuple[Rows, int]:
        """Run one statement (autocommit)."""
        with self._lock:
            cursor = self._db.execute(sql, tuple(params))
            return cursor.fetchall(), cursor.rowcount

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()


class PostgresStoreDb:
    """The store in PostgreSQL, through a small connection pool (reconnects after an outage)."""

    def __init__(self, url: str, *, pool_size: int = 4, timeout_s: float = 2.0) -> None:
        import psycopg

        self._errors: tuple[type[Exception], ...] = (psycopg.Error,)
        try:
            self._pool = open_pool_with_schema(
                url,
                TABLES.format(serial="BIGSERIAL PRIMARY KEY"),
                autocommit=True,
                pool_size=pool_size,
                timeout_s=timeout_s,
            )
        except Exception as exc:
            raise StoreUnavailable(f"cannot open the desk store in PostgreSQL: {exc}") from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> tuple[Rows, int]:
        """Run one statement (autocommit)."""
        try:
            with self._pool.connection() as conn:
                cursor = conn.execute(sql.replace("?", "%s"), tuple(params))
                rows = cursor.fetchall() if cursor.description else []
                return rows, cursor.rowcount
        except self._errors as exc:
            raise StoreUnavailable(f"the desk store in PostgreSQL failed: {exc}") from None

    def close(self) -> None:
        """Close the pool."""
        self._pool.close()

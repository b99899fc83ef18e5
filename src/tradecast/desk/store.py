"""What the desk service keeps across restarts, in SQLite in the data dir (``control.sqlite``)
or, when replicas share it, in PostgreSQL (:mod:`tradecast.desk.store_db`):

- the control journal: every operator action, who did it, when, and what came of it;
- the decisions: each tick's report, newest first, for ``GET /v1/decisions``;
- desk state: the replay cursor and the risk-limit changes made at run time;
- limit changes waiting for their actor's confirmation;
- chat threads created through the threads API;
- console sessions: the digest of each session cookie, its key's digest and CSRF token.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tradecast.desk.store_db import SqliteStoreDb, StoreDb
from tradecast.errors import NotFound
from tradecast.graphs.runner import TickResult

STORE_FILENAME = "control.sqlite"
MAX_THREADS = 10_000
"""Chat threads a search looks through at most."""


MAX_SESSIONS_PER_KEY = 100
"""Console sessions kept per API key (its oldest go first), so the holders of one key
cannot push out the sessions of another."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class StoredSession:
    """A console session as stored: digests only, so a copy of the table signs nobody in and
    gives nothing to guess a key from (its key is known by a digest salted with the cookie,
    which the table does not hold)."""

    token_digest: str
    key_name: str
    """The key's public name (``operator:3f2a9c1d``), as the journal records it."""
    key_proof: str
    csrf_token: str
    expires_at: float


class DeskStore:
    """The desk service's tables, on SQLite or PostgreSQL (small, blocking calls: on
    PostgreSQL one waits up to the pool's timeout while the server is unreachable)."""

    def __init__(self, db: StoreDb) -> None:
        self._db = db

    @classmethod
    def sqlite(cls, path: Path) -> DeskStore:
        """The store in a SQLite file (the embedded default)."""
        return cls(SqliteStoreDb(path))

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    # --- control journal ----------------------------------------------------------------

    def journal(
        self, actor: str, action: str, detail: dict[str, Any], outcome: str
    ) -> dict[str, Any]:
        """Record one control action and return the entry."""
        entry = {
            "at": _now(),
            "actor": actor,
            "action": action,
            "detail": detail,
            "outcome": outcome,
        }
        rows, _ = self._db.execute(
            "INSERT INTO control_journal (at, actor, action, detail, outcome) "
            "VALUES (?, ?, ?, ?, ?) RETURNING seq",
            (entry["at"], actor, action, json.dumps(detail, default=str), outcome),
        )
        return {"seq": rows[0][0], **entry}

    def journal_entries(self, limit: int = 50, before: int | None = None) -> list[dict[str, Any]]:
        """Control actions, newest first (``before``: only entries older than that seq)."""
        query = "SELECT seq, at, actor, action, detail, outcome FROM control_journal"
        params: list[Any] = []
        if before is not None:
            query += " WHERE seq < ?"
            params.append(before)
        query += " ORDER BY seq DESC LIMIT ?"
        rows, _ = self._db.execute(query, [*params, limit])
        return [
            {
                "seq": seq,
                "at": at,
                "actor": actor,
                "action": action,
                "detail": json.loads(detail),
                "outcome": outcome,
            }
            for seq, at, actor, action, detail, outcome in rows
        ]

    # --- decisions ----------------------------------------------------------------------

    def record_tick(self, result: TickResult) -> TickResult | None:
        """Store (or update) the report of a tick; returns the report it replaces, if any."""
        decision = result.decision
        if decision is None:
            return None
        previous = self.tick(decision.id)
        self._db.execute(
            "INSERT INTO decisions (decision_id, thread_id, symbol, decided_at, action, "
            "status, result, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(decision_id) DO UPDATE SET status = excluded.status, "
            "result = excluded.result, recorded_at = excluded.recorded_at",
            (
                decision.id,
                result.thread_id,
                decision.symbol,
                _sortable(decision.decided_at.isoformat()),
                decision.action.value,
                result.status,
                result.model_dump_json(),
                _now(),
            ),
        )
        return previous

    def tick(self, decision_id: str) -> TickResult | None:
        """The latest report of one decision's tick."""
        rows, _ = self._db.execute(
            "SELECT result FROM decisions WHERE decision_id = ?", (decision_id,)
        )
        return TickResult.model_validate_json(rows[0][0]) if rows else None

    def decision_count(self) -> int:
        """How many ticks have a stored report (what ``status.ticks`` counts, across restarts):
        a portfolio tick's symbols share one thread, so threads are counted."""
        rows, _ = self._db.execute("SELECT COUNT(DISTINCT thread_id) FROM decisions", ())
        return int(rows[0][0])

    def awaiting_approval(self) -> list[TickResult]:
        """The ticks last recorded as waiting for a human, oldest first."""
        rows, _ = self._db.execute(
            "SELECT result FROM decisions WHERE status = 'awaiting_approval' "
            "ORDER BY decided_at, decision_id"
        )
        return [TickResult.model_validate_json(row[0]) for row in rows]

    def decisions(
        self,
        limit: int = 20,
        before: str | None = None,
        symbol: str | None = None,
        action: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Tick reports newest first, and the cursor of the next page (None: no more).

        ``before`` is a decision id from an earlier page.

        Raises:
            NotFound: ``before`` is not a decision the store knows.
        """
        clauses, params = [], []
        if before is not None:
            anchors, _ = self._db.execute(
                "SELECT decided_at FROM decisions WHERE decision_id = ?", (before,)
            )
            if not anchors:
                raise NotFound(f"no decision {before!r} to page from")
            anchor = anchors[0]
            clauses.append("(decided_at < ? OR (decided_at = ? AND decision_id < ?))")
            params += [anchor[0], anchor[0], before]
        if symbol is not None:
            clauses.append("symbol = ?")
            params.append(symbol)
        if action is not None:
            clauses.append("action = ?")
            params.append(action)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows, _ = self._db.execute(
            "SELECT decision_id, result, recorded_at FROM decisions"
            + where
            + " ORDER BY decided_at DESC, decision_id DESC LIMIT ?",
            [*params, limit + 1],
        )
        items = [
            {"id": decision_id, **json.loads(result), "recorded_at": recorded_at}
            for decision_id, result, recorded_at in rows[:limit]
        ]
        return items, (items[-1]["id"] if len(rows) > limit else None)

    def decision_reports(
        self, limit: int, symbol: str, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """The latest ``limit`` tick reports (JSON) on ``symbol`` decided at or before
        ``until``, oldest first, with their ``id``."""
        clauses, params = self._on_symbol_until(symbol, until)
        rows, _ = self._db.execute(
            f"SELECT decision_id, result FROM decisions WHERE {clauses} "
            "ORDER BY decided_at DESC, decision_id DESC LIMIT ?",
            [*params, limit],
        )
        return [{"id": decision_id, **json.loads(result)} for decision_id, result in rows[::-1]]

    def first_decided_at(self, symbol: str, until: datetime | None = None) -> datetime | None:
        """When the first decision on ``symbol`` (at or before ``until``) was made (None:
        none)."""
        clauses, params = self._on_symbol_until(symbol, until)
        rows, _ = self._db.execute(f"SELECT MIN(decided_at) FROM decisions WHERE {clauses}", params)
        return datetime.fromisoformat(rows[0][0]) if rows and rows[0][0] else None

    @staticmethod
    def _on_symbol_until(symbol: str, until: datetime | None) -> tuple[str, list[Any]]:
        if until is None:
            return "symbol = ?", [symbol]
        return "symbol = ? AND decided_at <= ?", [symbol, _sortable(until.isoformat())]

    # --- desk state and threads ---------------------------------------------------------

    def get_state(self, key: str) -> Any | None:
        """A stored desk-state value (JSON), or None."""
        rows, _ = self._db.execute("SELECT value FROM desk_state WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else None

    def set_state(self, key: str, value: Any) -> None:
        """Store a desk-state value (JSON-able; Decimals and datetimes as strings)."""
        self._db.execute(
            "INSERT INTO desk_state (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value, default=str)),
        )

    # --- limit changes waiting for a confirmation -----------------------------------------

    def hold_change(
        self, token: str, actor: str, changes: dict[str, Any], expires_at: float, keep: int
    ) -> None:
        """Keep ``changes`` under ``token`` until ``expires_at`` (epoch seconds), dropping
        expired ones and all but the newest ``keep``."""
        self._db.execute("DELETE FROM confirmations WHERE expires_at <= ?", (time.time(),))
        self._db.execute(
            "INSERT INTO confirmations (token, actor, changes, expires_at) VALUES (?, ?, ?, ?)",
            (token, actor, json.dumps(changes, default=str), expires_at),
        )
        self._db.execute(
            "DELETE FROM confirmations WHERE token NOT IN "
            "(SELECT token FROM confirmations ORDER BY expires_at DESC LIMIT ?)",
            (keep,),
        )

    def take_change(self, token: str, actor: str) -> dict[str, Any] | None:
        """The unexpired changes ``actor`` holds under ``token``, removed in the same statement
        (so one confirmation applies once, whichever replica gets it); None if there are none."""
        rows, _ = self._db.execute(
            "DELETE FROM confirmations WHERE token = ? AND actor = ? AND expires_at > ? "
            "RETURNING changes",
            (token, actor, time.time()),
        )
        return json.loads(rows[0][0]) if rows else None

    # --- console sessions ---------------------------------------------------------------

    def open_session(self, session: StoredSession) -> None:
        """Keep ``session``, dropping expired ones and all but the newest
        MAX_SESSIONS_PER_KEY of its key."""
        self._db.execute("DELETE FROM sessions WHERE expires_at <= ?", (time.time(),))
        self._db.execute(
            "INSERT INTO sessions (token_digest, key_name, key_proof, csrf_token, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                session.token_digest,
                session.key_name,
                session.key_proof,
                session.csrf_token,
                session.expires_at,
            ),
        )
        self._db.execute(
            "DELETE FROM sessions WHERE key_name = ? AND token_digest NOT IN "
            "(SELECT token_digest FROM sessions WHERE key_name = ? "
            "ORDER BY expires_at DESC LIMIT ?)",
            (session.key_name, session.key_name, MAX_SESSIONS_PER_KEY),
        )

    def session(self, token_digest: str) -> StoredSession | None:
        """The unexpired session whose cookie has this digest, or None."""
        rows, _ = self._db.execute(
            "SELECT token_digest, key_name, key_proof, csrf_token, expires_at FROM sessions "
            "WHERE token_digest = ? AND expires_at > ?",
            (token_digest, time.time()),
        )
        return StoredSession(*rows[0]) if rows else None

    def close_session(self, token_digest: str) -> bool:
        """End a session (sign-out); False when there was none."""
        _, count = self._db.execute("DELETE FROM sessions WHERE token_digest = ?", (token_digest,))
        return count > 0

    def create_thread(self, thread_id: str, metadata: dict[str, Any]) -> dict[str, Any] | None:
        """Create a chat thread; None when it exists already."""
        created = _now()
        _, count = self._db.execute(
            "INSERT INTO threads (thread_id, created_at, metadata) VALUES (?, ?, ?) "
            "ON CONFLICT (thread_id) DO NOTHING",
            (thread_id, created, json.dumps(metadata, default=str)),
        )
        if count == 0:
            return None
        return {"thread_id": thread_id, "created_at": created, "metadata": metadata}

    def thread(self, thread_id: str) -> dict[str, Any] | None:
        """A chat thread created through the threads API."""
        rows, _ = self._db.execute(
            "SELECT created_at, metadata FROM threads WHERE thread_id = ?", (thread_id,)
        )
        if not rows:
            return None
        row = rows[0]
        return {"thread_id": thread_id, "created_at": row[0], "metadata": json.loads(row[1])}

    def threads(self, limit: int = MAX_THREADS) -> list[dict[str, Any]]:
        """The chat threads, newest first (at most ``limit``)."""
        rows, _ = self._db.execute(
            "SELECT thread_id, created_at, metadata FROM threads "
            "ORDER BY created_at DESC, thread_id DESC LIMIT ?",
            (limit,),
        )
        return [
            {"thread_id": row[0], "created_at": row[1], "metadata": json.loads(row[2])}
            for row in rows
        ]

    def update_thread(self, thread_id: str, metadata: dict[str, Any]) -> dict[str, Any] | None:
        """Merge ``metadata`` into a chat thread's; None when there is no such thread."""
        stored = self.thread(thread_id)
        if stored is None:
            return None
        merged = stored["metadata"] | metadata
        self._db.execute(
            "UPDATE threads SET metadata = ? WHERE thread_id = ?",
            (json.dumps(merged, default=str), thread_id),
        )
        return stored | {"metadata": merged}

    def delete_thread(self, thread_id: str) -> bool:
        """Forget a chat thread; False when there was none."""
        _, count = self._db.execute("DELETE FROM threads WHERE thread_id = ?", (thread_id,))
        return count > 0


def _sortable(instant: str) -> str:
    """ISO instants in one zone and format, so text order is time order."""
    return datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(UTC).isoformat()

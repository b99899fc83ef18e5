"""SQLite files several processes open at once (the eval's answer and embedding caches)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

OPEN_TIMEOUT_S = 30.0


def connect_shared(path: Path, schema: str) -> sqlite3.Connection:
    """A connection to ``path`` in WAL mode with ``schema`` created, waiting up to 30 s for
    other processes.

    Switching a new file to WAL can fail with "database is locked" at once, without the busy
    timeout's wait, while another process does the same (seen with three eval workers opening
    one cache), so that step is retried until the timeout.

    Raises:
        sqlite3.Error: the file cannot be opened within the timeout.
    """
    db = sqlite3.connect(str(path), check_same_thread=False, timeout=OPEN_TIMEOUT_S)
    deadline = time.monotonic() + OPEN_TIMEOUT_S
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(schema)
            db.commit()
            return db
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                db.close()
                raise
            time.sleep(0.05)

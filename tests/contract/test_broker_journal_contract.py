"""The broker Journal contract, run against every implementation.

Implementations: SQLite in a file (the embedded default) and SQLite in memory (evaluations).
A Postgres journal (scale-out, issue 8) joins by adding a factory to ``JOURNALS``; a factory
gets ``tmp_path`` and returns ``(open_journal, reopen)`` where ``reopen`` opens the same store
again (None when the store does not outlive its object).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tradecast.errors import BrokerError
from tradecast.tools.journal import Journal, JournalEvent, SqliteJournal

Reopen = Callable[[], Journal] | None
Factory = Callable[[Path], tuple[Journal, Reopen]]
T0 = datetime(2021, 3, 1, tzinfo=UTC)


def _sqlite_file(tmp_path: Path) -> tuple[Journal, Reopen]:
    path = tmp_path / "nested" / "journal.sqlite"
    return SqliteJournal(path), lambda: SqliteJournal(path)


def _sqlite_memory(tmp_path: Path) -> tuple[Journal, Reopen]:
    return SqliteJournal(":memory:"), None


JOURNALS: dict[str, Factory] = {"sqlite-file": _sqlite_file, "sqlite-memory": _sqlite_memory}


@pytest.fixture(params=sorted(JOURNALS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Journal, Reopen]]:
    journal, reopen = JOURNALS[request.param](tmp_path)
    yield journal, reopen
    journal.close()


def event(n: int, kind: str = "mark", **data: object) -> JournalEvent:
    payload = {"symbol": "BTC/USDT", "price": str(Decimal(50000 + n)), **data}
    return JournalEvent(kind, T0 + timedelta(minutes=n), payload)


def test_broker_journal_is_a_journal(store: tuple[Journal, Reopen]) -> None:
    assert isinstance(store[0], Journal)


def test_broker_journal_round_trips_events_in_order(store: tuple[Journal, Reopen]) -> None:
    journal, _ = store
    journal.append("paper", [event(1), event(2, "order", order={"id": "PB-1", "n": [1, 2]})])
    journal.append("paper", [event(3)])
    read = journal.read("paper")
    assert [(e.kind, e.at, e.data) for e in read] == [
        (e.kind, e.at, e.data)
        for e in (event(1), event(2, "order", order={"id": "PB-1", "n": [1, 2]}), event(3))
    ]
    seqs = [e.seq for e in read]
    assert all(isinstance(s, int) for s in seqs)
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert all(e.at.tzinfo is not None for e in read)


def test_broker_journal_reads_after_a_sequence_number(store: tuple[Journal, Reopen]) -> None:
    journal, _ = store
    journal.append("paper", [event(n) for n in range(5)])
    read = journal.read("paper")
    later = journal.read("paper", after_seq=read[1].seq or 0)
    assert [e.data for e in later] == [e.data for e in read[2:]]


def test_broker_journal_keeps_accounts_apart(store: tuple[Journal, Reopen]) -> None:
    journal, _ = store
    journal.append("desk-b", [event(1)])
    journal.append("desk-a", [event(2), event(3)])
    assert journal.accounts() == ["desk-a", "desk-b"]
    assert [e.data["price"] for e in journal.read("desk-a")] == ["50002", "50003"]
    assert journal.read("nobody") == []


def test_broker_journal_append_is_all_or_nothing(store: tuple[Journal, Reopen]) -> None:
    journal, _ = store
    journal.append("paper", [event(1)])
    not_json = JournalEvent("fill", T0, {"price": Decimal("1")})  # a Decimal is not JSON
    with pytest.raises(BrokerError, match=r"could not record 3 broker event\(s\).*nothing"):
        journal.append("paper", [event(2), not_json, event(3)])
    nan = JournalEvent("mark", T0, {"price": float("nan")})
    with pytest.raises(BrokerError, match=r"nothing was recorded"):
        journal.append("paper", [event(4), nan])
    naive = JournalEvent("mark", datetime(2021, 1, 1), {"price": "1"})
    with pytest.raises(BrokerError, match=r"naive time"):
        journal.append("paper", [event(5), naive])
    assert [e.data["price"] for e in journal.read("paper")] == ["50001"]


def test_broker_journal_empty_append_is_a_no_op(store: tuple[Journal, Reopen]) -> None:
    journal, _ = store
    journal.append("paper", [])
    assert journal.accounts() == []


def test_broker_journal_survives_reopening(store: tuple[Journal, Reopen]) -> None:
    journal, reopen = store
    if reopen is None:
        pytest.skip("this journal does not outlive its object")
    journal.append("paper", [event(1), event(2)])
    journal.close()
    again = reopen()
    try:
        assert [e.data["price"] for e in again.read("paper")] == ["50001", "50002"]
        again.append("paper", [event(3)])
        assert len(again.read("paper")) == 3
    finally:
        again.close()


def test_broker_journal_refuses_use_after_close(store: tuple[Journal, Reopen]) -> None:
    journal, _ = store
    journal.close()
    journal.close()  # idempotent
    with pytest.raises(BrokerError, match=r"closed"):
        journal.append("paper", [event(1)])
    with pytest.raises(BrokerError, match=r"closed"):
        journal.read("paper")


def test_broker_sqlite_journal_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    SqliteJournal(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_broker_sqlite_journal_explains_an_unusable_path(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder.sqlite"
    folder.mkdir()
    with pytest.raises(BrokerError, match=r"cannot open the journal"):
        SqliteJournal(folder)

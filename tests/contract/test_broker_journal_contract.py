"""The broker Journal contract, run against every implementation.

Implementations: SQLite in a file (the embedded default), SQLite in memory (evaluations) and
PostgreSQL (scale-out, on the machine's server, in a fresh database). A factory gets a
location (a tmp path, or the database URL) and returns ``(open_journal, reopen)`` where
``reopen`` opens the same store again (None when the store does not outlive its object).

Two paper brokers on one journal stand for two replicas sharing an account.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tradecast.broker.journal import Journal, JournalConflict, JournalEvent, SqliteJournal
from tradecast.broker.paper import PaperBroker
from tradecast.domain import OrderIntent, Side
from tradecast.errors import BrokerError

Reopen = Callable[[], Journal] | None
Factory = Callable[[Path], tuple[Journal, Reopen]]
T0 = datetime(2021, 3, 1, tzinfo=UTC)


def _postgres(url: str) -> tuple[Journal, Reopen]:
    from tradecast.broker.journal_postgres import PostgresJournal

    return PostgresJournal(url), lambda: PostgresJournal(url)


def _sqlite_file(tmp_path: Path) -> tuple[Journal, Reopen]:
    path = tmp_path / "nested" / "journal.sqlite"
    return SqliteJournal(path), lambda: SqliteJournal(path)


def _sqlite_memory(tmp_path: Path) -> tuple[Journal, Reopen]:
    return SqliteJournal(":memory:"), None


JOURNALS: dict[str, Factory] = {
    "sqlite-file": _sqlite_file,
    "sqlite-memory": _sqlite_memory,
    "postgres": _postgres,
}


@pytest.fixture(params=sorted(JOURNALS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Journal, Reopen]]:
    location = tmp_path
    if request.param == "postgres":
        request.applymarker(pytest.mark.scaleout)
        location = request.getfixturevalue("postgres_url")
    journal, reopen = JOURNALS[request.param](location)
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


def test_broker_journal_append_returns_the_last_sequence_number(
    store: tuple[Journal, Reopen],
) -> None:
    journal, _ = store
    assert journal.append("paper", []) == 0
    last = journal.append("paper", [event(1), event(2)])
    assert last == journal.read("paper")[-1].seq


def test_broker_journal_refuses_a_writer_that_is_behind(store: tuple[Journal, Reopen]) -> None:
    journal, _ = store
    first = journal.append("paper", [event(1)], after_seq=0)
    with pytest.raises(JournalConflict, match="another writer"):
        journal.append("paper", [event(2)], after_seq=0)  # it has not seen event 1
    journal.append("other", [event(3)])  # other accounts do not move this one
    second = journal.append("paper", [event(4)], after_seq=first)
    assert [e.seq for e in journal.read("paper")] == [first, second]
    with pytest.raises(JournalConflict):
        journal.append("paper", [event(5)], after_seq=first)


def _intent(client_id: str, quantity: str = "0.01") -> OrderIntent:
    return OrderIntent(
        symbol="BTC/USDT", side=Side.BUY, quantity=Decimal(quantity), client_order_id=client_id
    )


async def test_broker_replicas_on_one_journal_never_fill_an_order_twice(
    store: tuple[Journal, Reopen],
) -> None:
    journal, _ = store
    a = PaperBroker(journal, clock=lambda: T0)
    b = PaperBroker(journal, clock=lambda: T0)  # opened together: one account, not two
    await a.on_price("BTC/USDT", "50000", T0)
    first = await a.submit(_intent("decision-1"))
    again = await b.submit(_intent("decision-1"))  # b has not seen a's order yet
    assert again.duplicate and again.order.id == first.order.id
    other = await b.submit(_intent("decision-2", "0.02"))
    assert other.order.id != first.order.id
    assert a.refresh() > 0 and b.refresh() == 0
    assert a.portfolio() == b.portfolio()
    assert len(a.fills()) == len(b.fills()) == 2
    assert [e.kind for e in journal.read("paper")].count("opened") == 1
    assert a.portfolio().positions[0].quantity == Decimal("0.03")


class _RacingJournal:
    """Lets another writer append just before this writer's first append (after its
    catch-up read), as a replica racing on the same account would."""

    def __init__(self, journal: Journal, race: JournalEvent) -> None:
        self.journal, self.race, self.raced = journal, race, False

    def append(self, account, events, *, after_seq=None):  # type: ignore[no-untyped-def]
        if not self.raced and after_seq is not None and events[0].kind == "order":
            self.raced = True
            self.journal.append(account, [self.race])
        return self.journal.append(account, events, after_seq=after_seq)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.journal, name)


async def test_broker_a_writer_that_lost_a_race_plans_again_on_the_fresher_book(
    store: tuple[Journal, Reopen],
) -> None:
    journal, _ = store
    PaperBroker(journal, clock=lambda: T0)  # opens the account
    moved = JournalEvent("mark", T0, {"symbol": "BTC/USDT", "price": "40000"})
    racing = _RacingJournal(journal, moved)
    broker = PaperBroker(racing, clock=lambda: T0)  # type: ignore[arg-type]
    await broker.on_price("BTC/USDT", "50000", T0)
    execution = await broker.submit(_intent("decision-1"))
    assert racing.raced
    # planned at 50,000, refused by the journal, planned again after the other writer's mark
    assert execution.fills[0].price < Decimal("41000")
    kinds = [e.kind for e in journal.read("paper")]
    assert kinds == ["opened", "mark", "mark", "order", "fill"]
    assert broker.portfolio() == PaperBroker(journal, clock=lambda: T0).portfolio()


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


async def test_broker_journal_keeps_a_time_stop_for_a_rebuilt_broker(
    store: tuple[Journal, Reopen],
) -> None:
    journal, _ = store
    deadline = T0 + timedelta(hours=2)
    a = PaperBroker(journal, clock=lambda: T0)
    await a.on_price("BTC/USDT", "50000", T0)
    intent = _intent("decision-1").model_copy(update={"time_stop_at": deadline})
    await a.submit(intent)

    b = PaperBroker(journal, clock=lambda: T0)  # a restart, or another replica
    position = b.portfolio().position("BTC/USDT")
    assert position is not None and position.time_stop_at == deadline
    assert b.portfolio() == a.portfolio()
    (fill,) = await b.on_price("BTC/USDT", "50100", deadline)
    assert await a.on_price("BTC/USDT", "50100", deadline) == ()  # a catches up: sold already
    exits = [e for e in journal.read("paper") if e.kind == "fill" and e.data["trigger"] != "market"]
    assert [(e.data["trigger"], e.data["fill"]["order_id"]) for e in exits] == [
        ("time_stop", fill.order_id)
    ]
    assert a.portfolio() == b.portfolio() == PaperBroker(journal, clock=lambda: T0).portfolio()
    assert a.portfolio().positions == ()

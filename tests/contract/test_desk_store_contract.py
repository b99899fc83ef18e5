"""The desk store (control journal, decisions, desk state, limit changes waiting for a
confirmation, threads) on SQLite and on PostgreSQL: the same answers from both."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.ticks import tick_report
from tradecast.desk.store import MAX_SESSIONS_PER_KEY, DeskStore, StoredSession
from tradecast.desk.store_db import PostgresStoreDb
from tradecast.errors import NotFound, StoreUnavailable
from tradecast.graphs.runner import TickResult, TickStatus


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeskStore]:
    if request.param == "postgres":
        request.applymarker(pytest.mark.scaleout)
        made = DeskStore(PostgresStoreDb(request.getfixturevalue("postgres_url")))
    else:
        made = DeskStore.sqlite(tmp_path / "control.sqlite")
    yield made
    made.close()


def tick(n: int, status: TickStatus = "completed", action: str = "HOLD") -> TickResult:
    moment = datetime(2021, 1, 1, n % 24, tzinfo=UTC)
    return tick_report(f"d-{n:03d}", moment, action=action, status=status)


def test_desk_store_journals_control_actions_newest_first(store: DeskStore) -> None:
    first = store.journal("operator", "pause", {"why": "lunch"}, "ok")
    second = store.journal("admin", "set_limits", {"max_open_positions": "2"}, "ok")
    assert second["seq"] > first["seq"]
    entries = store.journal_entries()
    assert [e["action"] for e in entries] == ["set_limits", "pause"]
    assert entries[1]["detail"] == {"why": "lunch"}
    assert [e["action"] for e in store.journal_entries(before=second["seq"])] == ["pause"]


def test_desk_store_keeps_one_report_per_decision_and_pages(store: DeskStore) -> None:
    for n in range(5):
        assert store.record_tick(tick(n, action="BUY" if n % 2 else "HOLD")) is None
    previous = store.record_tick(tick(4, status="awaiting_approval"))
    assert previous is not None and previous.status == "completed"
    assert [t.decision_id for t in store.awaiting_approval()] == ["d-004"]
    page, cursor = store.decisions(limit=2)
    assert [item["id"] for item in page] == ["d-004", "d-003"] and cursor == "d-003"
    rest, end = store.decisions(limit=5, before=cursor)
    assert [item["id"] for item in rest] == ["d-002", "d-001", "d-000"] and end is None
    buys, _ = store.decisions(action="BUY")
    assert [item["id"] for item in buys] == ["d-003", "d-001"]
    with pytest.raises(NotFound, match="no decision"):
        store.decisions(before="nope")


def test_desk_store_counts_a_portfolio_ticks_symbols_as_one_tick(store: DeskStore) -> None:
    store.record_tick(tick(1))
    for n in (2, 3):  # two symbols of one portfolio tick: one thread
        store.record_tick(tick(n).model_copy(update={"thread_id": "tick:portfolio-1"}))
    assert store.decision_count() == 2
    assert len(store.decisions(limit=10)[0]) == 3


def test_desk_store_state_and_threads(store: DeskStore) -> None:
    assert store.get_state("cursor") is None
    store.set_state("cursor", {"at": "2021-01-01T00:00:00+00:00"})
    store.set_state("cursor", {"at": "2021-01-02T00:00:00+00:00"})
    assert store.get_state("cursor") == {"at": "2021-01-02T00:00:00+00:00"}
    created = store.create_thread("t-1", {"user": "ops"})
    assert created is not None and created["metadata"] == {"user": "ops"}
    assert store.create_thread("t-1", {}) is None, "a thread id is created once"
    assert store.thread("t-1")["metadata"] == {"user": "ops"}
    assert store.thread("t-2") is None


def test_desk_store_lists_updates_and_deletes_threads(store: DeskStore) -> None:
    for name in ("t-1", "t-2", "t-3"):
        store.create_thread(name, {"n": name})
        time.sleep(0.002)  # distinct creation instants, so the order is defined
    assert [t["thread_id"] for t in store.threads()] == ["t-3", "t-2", "t-1"]
    assert [t["thread_id"] for t in store.threads(limit=1)] == ["t-3"]
    updated = store.update_thread("t-2", {"graph_id": "chat"})
    assert updated is not None and updated["metadata"] == {"n": "t-2", "graph_id": "chat"}
    assert store.thread("t-2")["metadata"] == {"n": "t-2", "graph_id": "chat"}
    assert store.update_thread("nope", {"x": 1}) is None
    assert store.delete_thread("t-2") is True
    assert store.delete_thread("t-2") is False
    assert [t["thread_id"] for t in store.threads()] == ["t-3", "t-1"]


@pytest.mark.scaleout
def test_desk_store_explains_an_unreachable_postgres() -> None:
    with pytest.raises(StoreUnavailable, match="cannot open the desk store"):
        PostgresStoreDb("postgresql://postgres@127.0.0.1:1/none", timeout_s=1)


def test_desk_store_holds_a_limit_change_for_one_confirmation(store: DeskStore) -> None:
    actor = f"admin-{uuid.uuid4().hex[:8]}"  # PostgreSQL's table is shared by test runs
    later = time.time() + 60
    store.hold_change("aa11", actor, {"max_position_pct": "0.5", "kill_switch": False}, later, 32)
    assert store.take_change("aa11", "someone-else") is None
    assert store.take_change("aa11", actor) == {"max_position_pct": "0.5", "kill_switch": False}
    assert store.take_change("aa11", actor) is None, "a confirmation applies once"
    store.hold_change("bb22", actor, {"cooldown_minutes": 1}, time.time() - 1, 32)
    assert store.take_change("bb22", actor) is None, "expired"
    for n in range(3):
        store.hold_change(f"cc{n}", actor, {"n": n}, later + n, 2)
    assert store.take_change("cc0", actor) is None, "only the newest are kept"
    assert store.take_change("cc2", actor) == {"n": 2}


def test_desk_store_keeps_console_sessions_until_they_expire_or_close(store: DeskStore) -> None:
    token = uuid.uuid4().hex
    live = StoredSession(token, "operator:1234abcd", "proof", "csrf-1", time.time() + 60)
    store.open_session(live)
    assert store.session(token) == live
    old = StoredSession(token + "-old", "operator:1234abcd", "proof", "csrf-2", time.time() - 1)
    store.open_session(old)
    assert store.session(token + "-old") is None, "an expired session signs nobody in"
    assert store.session("unknown") is None
    assert store.close_session(token) is True
    assert store.session(token) is None
    assert store.close_session(token) is False


def test_desk_store_reads_reports_oldest_first_and_the_first_decision(store: DeskStore) -> None:
    assert store.first_decided_at("BTC/USDT") is None
    for n in range(4):
        store.record_tick(tick(n, action="BUY" if n % 2 else "HOLD"))
    reports = store.decision_reports(3, "BTC/USDT")
    assert [r["id"] for r in reports] == ["d-001", "d-002", "d-003"]
    assert reports[0]["decision"]["action"] == "BUY"
    assert store.decision_reports(10, "ETH/USDT") == []
    until = datetime(2021, 1, 1, 2, tzinfo=UTC)
    assert [r["id"] for r in store.decision_reports(10, "BTC/USDT", until)] == [
        "d-000",
        "d-001",
        "d-002",
    ]
    assert store.first_decided_at("BTC/USDT") == datetime(2021, 1, 1, 0, tzinfo=UTC)
    assert store.first_decided_at("BTC/USDT", until - timedelta(hours=3)) is None


def test_desk_store_caps_sessions_per_key_not_across_keys(store: DeskStore) -> None:
    now = time.time()
    admin = StoredSession("admin-session", "admin:0000aaaa", "p", "c", now + 60)
    store.open_session(admin)
    for n in range(MAX_SESSIONS_PER_KEY + 1):
        store.open_session(StoredSession(f"v-{n}", "viewer:1111bbbb", "p", "c", now + 100 + n))
    assert store.session("v-0") is None, "the key's oldest session went"
    assert store.session(f"v-{MAX_SESSIONS_PER_KEY}") is not None
    assert store.session("admin-session") == admin, "another key's sessions stay"

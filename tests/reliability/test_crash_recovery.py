"""Crashes: a real `tradecast serve` killed with SIGKILL while an order waits for approval, at
each point between the risk gate, the fill and the tick's checkpoints, and in the middle of a
persona stream, then started again on the same data dir. After each restart the portfolio,
the journal and the streams are intact and nothing filled twice. The kill points are hooks in
the server process (``support/crash_points.py``), so each test cuts the tick where it says.

The LLM is a fake Ollama server speaking Ollama's wire format (the desk's models are made by
the real factory inside the server process)."""

from __future__ import annotations

import json
import signal
import sqlite3
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_ollama import FakeOllama
from langgraph.checkpoint.sqlite import SqliteSaver

import support
from support.reliability import OPERATOR, VIEWER, Serve, record
from tradecast.graphs.checkpoints import desk_serializer

pytestmark = [pytest.mark.reliability, pytest.mark.slow]
STARTING_CASH = Decimal("10000")
CRASH_SCRIPT = Path(support.__file__).parent / "crash_points.py"


def _journal(data_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """The broker's journal as it is on disk (read by another process, after the kill)."""
    with sqlite3.connect(data_dir / "journal.sqlite") as db:
        rows = db.execute("SELECT kind, data FROM broker_events ORDER BY seq").fetchall()
    return [(kind, json.loads(data)) for kind, data in rows]


BOOK_CHECKS = Counter()


def _check_books(client: httpx.Client) -> dict[str, Any]:
    """Nothing filled twice, and the portfolio is exactly what the fills say."""
    BOOK_CHECKS["checks"] += 1
    orders = client.get("/v1/orders", params={"limit": 1000}).json()["items"]
    fills = client.get("/v1/fills", params={"limit": 1000}).json()["items"]
    by_client = Counter(o["client_order_id"] for o in orders)
    assert max(by_client.values(), default=1) == 1, by_client
    by_order = Counter(f["order_id"] for f in fills)
    assert max(by_order.values(), default=1) == 1, by_order
    cash = STARTING_CASH
    for fill in fills:
        notional = Decimal(fill["quantity"]) * Decimal(fill["price"])
        fee = Decimal(fill["fee"])
        cash += -notional - fee if fill["side"] == "BUY" else notional - fee
    portfolio = client.get("/v1/portfolio").json()
    assert Decimal(portfolio["cash"]) == cash, (portfolio["cash"], cash)
    return {"orders": len(orders), "fills": len(fills), "portfolio": portfolio}


def _check_books_paused(client: httpx.Client) -> dict[str, Any]:
    """``_check_books`` with the desk loop paused (so no fill lands between the reads)."""
    assert client.post("/v1/desk/stop").status_code == 200
    while client.get("/v1/desk/status").json()["ticking"]:
        time.sleep(0.05)
    books = _check_books(client)
    assert client.post("/v1/desk/start").status_code == 200
    return books


def _sse_events(client: httpx.Client, channel: str, stop, last_id: str | None = None):
    """Read a channel's SSE events until ``stop(event, data)`` says so; returns them all."""
    headers = {"Last-Event-ID": last_id} if last_id else {}
    seen: list[tuple[str, str | None, dict]] = []
    with client.stream(
        "GET", f"/v1/streams/{channel}", params={"key": VIEWER}, headers=headers
    ) as stream:
        name, event_id = "message", None
        for line in stream.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("id:"):
                event_id = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data = json.loads(line.split(":", 1)[1])
                seen.append((name, event_id, data))
                if stop(name, data):
                    break
    return seen


def test_kill9_while_an_order_waits_for_approval_loses_nothing(fake_ollama, tmp_path):
    """Decision made and journaled, not filled: kill -9, restart, approve: it fills once."""
    server = Serve.configure(
        tmp_path, fake_ollama.url, DESK__AUTOSTART="false", DESK__REQUIRE_APPROVAL="true"
    )
    server.start()
    try:
        with server.client(OPERATOR) as ops:
            report = ops.post("/v1/desk/tick", params={"wait": "true"}).json()
            assert report["status"] == "awaiting_approval", report
            decision_id = report["decision"]["id"]
            before = _check_books(ops)
            assert before["fills"] == 0
            journal_before = ops.get("/v1/desk/journal").json()["items"]
        server.kill9()
        server.start()
        with server.client(OPERATOR) as ops:
            waiting = ops.get("/v1/approvals").json()
            assert [a["decision_id"] for a in waiting["items"]] == [decision_id], waiting
            assert _check_books(ops)["portfolio"] == before["portfolio"]
            assert ops.get("/v1/desk/journal").json()["items"][: len(journal_before)] == (
                journal_before
            )
            approved = ops.post(f"/v1/approvals/{decision_id}", json={"approved": True})
            assert approved.status_code == 200, approved.text
            assert len(approved.json()["fills"]) == 1
            again = ops.post(f"/v1/approvals/{decision_id}", json={"approved": True})
            assert again.status_code == 404
            after_fill = _check_books(ops)
            assert after_fill["fills"] == 1
        server.kill9()
        server.start()
        with server.client(OPERATOR) as ops:
            assert _check_books(ops) == after_fill
            decision = ops.get(f"/v1/decisions/{decision_id}").json()
            assert len(decision["fills"]) == 1
            actions = [j["action"] for j in ops.get("/v1/desk/journal").json()["items"]]
            assert "approve" in actions and "tick" in actions
    finally:
        server.stop()
    record(
        "crashes",
        "kill9_awaiting_approval",
        kills=2,
        restarts=2,
        approvals_restored=1,
        fills=after_fill["fills"],
        book_checks_passed=BOOK_CHECKS["checks"],
    )


KILL_POINTS = ["before_submit", "after_fill", "after_fill_gate_unsaved", "after_execute_saved"]


def _crashing_server(tmp_path: Path, fake_ollama: FakeOllama, point: str) -> Serve:
    """A paused server that kills itself at ``point`` of its first trade (once)."""
    server = Serve.configure(tmp_path, fake_ollama.url, DESK__AUTOSTART="false")
    server.command = (sys.executable, str(CRASH_SCRIPT), point, str(tmp_path / "crashed.json"))
    return server


def _tick_until_killed(server: Serve) -> dict[str, Any]:
    """Ask for a tick; the server dies at its kill point. Returns what the marker says."""
    with server.client(OPERATOR) as ops, pytest.raises(httpx.TransportError):
        ops.post("/v1/desk/tick", params={"wait": "true"})
    assert server.proc is not None
    server.proc.wait(timeout=60)
    assert server.proc.returncode == -signal.SIGKILL, server.tail()
    return json.loads((server.data_dir.parent / "crashed.json").read_text())


def _saved_channels(data_dir: Path) -> set[str]:
    """The channels of the newest tick's state on disk: its latest checkpoint's values and
    the writes saved after it (read by another process, after the kill)."""
    with sqlite3.connect(data_dir / "checkpoints.sqlite") as db:
        saver = SqliteSaver(db, serde=desk_serializer())
        [thread] = {t for (t,) in db.execute("SELECT thread_id FROM checkpoints")}
        saved = saver.get_tuple({"configurable": {"thread_id": thread}})
        assert saved is not None
        return set(saved.checkpoint["channel_values"]) | {w[1] for w in saved.pending_writes or []}


def _interrupted_ticks(ops: httpx.Client) -> list[dict[str, Any]]:
    journal = ops.get("/v1/desk/journal").json()["items"]
    return [j for j in journal if j["action"] == "tick" and j["outcome"].startswith("interrupted")]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_kill9_at_each_point_between_gate_fill_and_checkpoint(
    fake_ollama: FakeOllama, tmp_path: Path, point: str
):
    """A BUY tick is killed at ``point`` (by a hook in the server, not by a race), and the
    server comes back with the kill switch on, so a gate asked again would refuse. After the
    restart the journal says the tick was interrupted, the tick resumes from its checkpoint,
    and its report is what the broker did: the one order it holds, filled once, approved; or,
    when the broker was never asked, no order and the kill switch as the reason."""
    server = _crashing_server(tmp_path, fake_ollama, point)
    server.start()
    try:
        assert _tick_until_killed(server)["point"] == point
        placed = point != "before_submit"
        orders_on_disk = [d["order"] for kind, d in _journal(server.data_dir) if kind == "order"]
        assert len(orders_on_disk) == placed
        saved = _saved_channels(server.data_dir)
        assert ("verdict" in saved) == (point != "after_fill_gate_unsaved"), saved
        assert ("execution" in saved) == (point == "after_execute_saved"), saved
        server.env["TRADECAST_RISK__KILL_SWITCH"] = "true"
        server.start()
        with server.client(OPERATOR) as ops:
            [cut] = _interrupted_ticks(ops)
            decision_id = cut["detail"]["decision_id"]
            report = ops.post("/v1/desk/tick", params={"wait": "true"}).json()
            assert report["decision"]["id"] == decision_id and report["resumed"], report
            assert ops.get(f"/v1/decisions/{decision_id}").json()["fills"] == report["fills"]
            books = _check_books(ops)
            assert (books["orders"], books["fills"]) == (placed, placed)
            assert report["persona"]["text"]
        if placed:
            assert report["risk"]["approved"], report["risk"]
            assert report["order"]["client_order_id"] == f"tc-{decision_id}"
            assert len(report["fills"]) == 1
        else:
            assert not report["risk"]["approved"] and report["order"] is None, report
            assert "kill switch is on" in " ".join(report["risk"]["reasons"])
    finally:
        server.stop()
    record("crashes", f"kill9_{point}", orders=books["orders"], fills=books["fills"])


def test_kill9_after_an_approved_fill_whose_answer_was_unsaved(
    fake_ollama: FakeOllama, tmp_path: Path
):
    """An operator approves a waiting BUY; the broker fills it; the process dies before the
    answer reached the checkpoint, so on disk the tick still waits for approval. After the
    restart it is not offered for approval again (its order exists): the desk finishes it as
    approved and reports the order the broker holds."""
    server = _crashing_server(tmp_path, fake_ollama, "after_approved_fill")
    server.env["TRADECAST_DESK__REQUIRE_APPROVAL"] = "true"
    server.start()
    try:
        with server.client(OPERATOR) as ops:
            waiting = ops.post("/v1/desk/tick", params={"wait": "true"}).json()
            decision_id = waiting["decision"]["id"]
            with pytest.raises(httpx.TransportError):
                ops.post(f"/v1/approvals/{decision_id}", json={"approved": True})
        server.proc.wait(timeout=60)
        assert server.proc.returncode == -signal.SIGKILL, server.tail()
        assert [k for k, _ in _journal(server.data_dir) if k == "order"] == ["order"]
        server.start()
        with server.client(OPERATOR) as ops:
            assert ops.get("/v1/approvals").json()["items"] == []
            report = ops.get(f"/v1/decisions/{decision_id}").json()
            assert report["status"] == "completed", report
            assert report["risk"]["approved"] and report["risk"]["approval"] == "approved"
            assert report["order"]["client_order_id"] == f"tc-{decision_id}"
            assert len(report["fills"]) == 1
            assert _check_books(ops)["fills"] == 1
            journal = ops.get("/v1/desk/journal").json()["items"]
            settled = [j for j in journal if j["actor"] == "system" and j["action"] == "approve"]
            assert [j["detail"]["decision_id"] for j in settled] == [decision_id]
    finally:
        server.stop()
    record("crashes", "kill9_after_approved_fill", orders=1, fills=1, approvals_asked_again=0)


def test_kill9_mid_persona_stream_resumes_and_tells_clients_to_resync(
    fake_ollama: FakeOllama, tmp_path: Path
):
    """Killed right after the persona's first token was published: the restarted tick
    finishes (its order filled once, before the persona spoke), and a client resuming the
    persona stream from that token's id is told to resync, never given a silent gap."""
    server = _crashing_server(tmp_path, fake_ollama, "mid_persona")
    server.start()
    try:
        marker = _tick_until_killed(server)
        last_id = marker["event_id"]
        server.start()
        with server.client(OPERATOR) as ops:
            [cut] = _interrupted_ticks(ops)
            report = ops.post("/v1/desk/tick", params={"wait": "true"}).json()
            assert report["decision"]["id"] == cut["detail"]["decision_id"], report
            assert report["persona"]["text"] and len(report["fills"]) == 1
            books = _check_books(ops)
            assert books["fills"] == 1
            resumed = _sse_events(ops, "persona", lambda name, data: True, last_id=last_id)
            assert resumed[0][0] == "resync", resumed[0]
            latest = ops.get("/v1/streams/persona/latest").json()["last_id"]
            assert _id(latest) > _id(last_id)
    finally:
        server.stop()
    record(
        "crashes",
        "kill9_mid_persona",
        kills=1,
        cut_ticks_completed_after_restart=1,
        fills=books["fills"],
        book_checks_passed=BOOK_CHECKS["checks"],
    )


def _id(value: str) -> tuple[int, int]:
    millis, _, seq = value.partition("-")
    return int(millis), int(seq or 0)

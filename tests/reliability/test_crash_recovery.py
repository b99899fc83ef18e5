"""Crashes: a real `tradecast serve` killed with SIGKILL between a decision and its fill, and
in the middle of a persona stream, then started again on the same data dir. After each
restart the portfolio, the journal and the streams are intact and nothing filled twice.

The LLM is a fake Ollama server speaking Ollama's wire format (the desk's models are made by
the real factory inside the server process)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_ollama import FakeOllama, good_answer

from support.reliability import OPERATOR, VIEWER, Serve, record

pytestmark = [pytest.mark.reliability, pytest.mark.slow]
STARTING_CASH = Decimal("10000")


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


def test_kill9_right_after_decisions_and_mid_persona_never_doubles_or_loses(
    fake_ollama: FakeOllama, tmp_path
):
    """The desk ticks on its own; each time a trade decision shows on the desk stream the
    server is killed at once (racing the fill); later, during a persona stream. Every restart
    resumes the cut tick from its checkpoint."""
    fake_ollama.chunk_delay_s = 0.0
    flip = {"n": 0}

    def answer(role):
        if role in ("analyst", "trader"):
            flip["n"] += 1
            return good_answer(role, "BUY" if (flip["n"] // 2) % 3 else "SELL")
        return good_answer(role)

    fake_ollama.answer = answer
    server = Serve.configure(
        tmp_path,
        fake_ollama.url,
        DESK__SECONDS_PER_TICK="0.3",
        RISK__COOLDOWN_MINUTES="0",
    )
    kills_after_decision = 4
    on_disk_at_kill: dict[str, bool] = {}
    cut_ticks: list[str] = []
    last_ids: dict[str, str] = {}
    server.start()
    try:
        with httpx.Client(base_url=server.base, timeout=60) as client:
            for _ in range(kills_after_decision):
                seen = _sse_events(
                    client,
                    "desk",
                    lambda name, data: name == "decision" and data["data"]["action"] != "HOLD",
                )
                server.kill9()
                decision = seen[-1][2]["data"]
                last_ids["desk"] = seen[-1][1]
                cut_ticks.append(decision["id"])
                client_id = f"tc-{decision['id']}"
                on_disk = [
                    d
                    for kind, d in _journal(server.data_dir)
                    if kind == "order" and d["order"]["client_order_id"] == client_id
                ]
                on_disk_at_kill[decision["id"]] = bool(on_disk)
                server.start()
                with server.client(OPERATOR) as ops:
                    _check_books_paused(ops)
            # now cut a persona stream halfway
            fake_ollama.chunk_delay_s = 0.25
            seen = _sse_events(client, "persona", lambda name, data: name == "token")
            server.kill9()
            persona_tick = seen[-1][2]["data"]["decision_id"]
            last_ids["persona"] = seen[-1][1]
            fake_ollama.chunk_delay_s = 0.0
            server.start()
            with server.client(OPERATOR) as ops:
                # every cut tick finished after the restart, its order filled exactly once
                deadline = time.monotonic() + 60
                reports: dict[str, dict] = {}
                while missing := [t for t in [*cut_ticks, persona_tick] if t not in reports]:
                    for tick in missing:
                        found = ops.get(f"/v1/decisions/{tick}")
                        if found.status_code == 200:
                            reports[tick] = found.json()
                    assert time.monotonic() < deadline, (missing, server.tail())
                    time.sleep(0.3)
                assert ops.post("/v1/desk/stop").status_code == 200
                while ops.get("/v1/desk/status").json()["ticking"]:
                    time.sleep(0.1)
                books = _check_books(ops)
                orders = ops.get("/v1/orders", params={"limit": 1000}).json()["items"]
                by_client = {o["client_order_id"]: o for o in orders}
                landed = Counter()
                for tick in cut_ticks:
                    report = reports[tick]
                    if not report["risk"]["approved"]:
                        landed["rejected_by_risk_gate"] += 1
                        assert f"tc-{tick}" not in by_client
                        continue
                    landed["after_fill" if on_disk_at_kill[tick] else "before_fill"] += 1
                    assert f"tc-{tick}" in by_client  # lost nothing
                    assert len(report["fills"]) == 1  # doubled nothing
                assert reports[persona_tick]["persona"]["text"]
                # streams: ids go on increasing across the restarts, and a client resuming
                # from before the crash is told to resync (never a silent gap)
                for channel, last in last_ids.items():
                    resumed = _sse_events(client, channel, lambda name, data: True, last_id=last)
                    name, _first_id, _data = resumed[0]
                    assert name == "resync", resumed[0]
                    latest = ops.get(f"/v1/streams/{channel}/latest").json()["last_id"]
                    assert _id(latest) > _id(last)
                snapshot = ops.get("/v1/snapshot").json()
                assert snapshot["portfolio"]["cash"] == books["portfolio"]["cash"]
                assert snapshot["decision"]["status"] == "completed"
    finally:
        server.stop()
    record(
        "crashes",
        "kill9_after_decision_and_mid_persona",
        kills=kills_after_decision + 1,
        restarts=server.starts - 1,
        kills_landed_before_fill=landed["before_fill"],
        kills_landed_after_fill=landed["after_fill"],
        kills_on_risk_rejected_decisions=landed["rejected_by_risk_gate"],
        kills_mid_persona_stream=1,
        cut_ticks_completed_after_restart=len(cut_ticks) + 1,
        orders=books["orders"],
        fills=books["fills"],
        book_checks_passed=BOOK_CHECKS["checks"],
    )


def _id(value: str) -> tuple[int, int]:
    millis, _, seq = value.partition("-")
    return int(millis), int(seq or 0)

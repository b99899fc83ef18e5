"""Every HTTP route over HTTP (ASGI): auth (401/403), validation (422), and what each does,
on a real desk (replay, paper broker, journal, checkpoints, Chroma memory with the real
embedder) with scripted chat models."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from support.api import (
    ADMIN,
    OPERATOR,
    VIEWER,
    api_settings,
    auth,
    context,
    running_app,
)
from tradecast.graphs.controls import ROLE_RANK, DeskControls

CHAT = {"message": "status", "thread_id": "ops-1"}
DESK_RUN = {"assistant_id": "desk", "stream_mode": ["values"]}
# (method, path, least role, body): every route that needs a key
ROUTES: list[tuple[str, str, str, Any]] = [
    ("GET", "/metrics", "viewer", None),
    ("GET", "/v1/desk/status", "viewer", None),
    ("POST", "/v1/desk/start", "operator", None),
    ("POST", "/v1/desk/stop", "operator", None),
    ("POST", "/v1/desk/tick", "operator", None),
    ("GET", "/v1/desk/journal", "operator", None),
    ("GET", "/v1/approvals", "viewer", None),
    ("POST", "/v1/approvals/{decision_id}", "operator", {"approved": True}),
    ("GET", "/v1/risk/limits", "viewer", None),
    ("PUT", "/v1/risk/limits", "admin", {"max_position_pct": "0.05"}),
    ("POST", "/v1/risk/kill-switch", "admin", {"on": False}),
    ("GET", "/v1/portfolio", "viewer", None),
    ("GET", "/v1/positions", "viewer", None),
    ("GET", "/v1/orders", "viewer", None),
    ("GET", "/v1/fills", "viewer", None),
    ("GET", "/v1/decisions", "viewer", None),
    ("GET", "/v1/decisions/{decision_id}", "viewer", None),
    ("GET", "/v1/decisions/markers", "viewer", None),
    ("GET", "/v1/market/candles", "viewer", None),
    ("GET", "/v1/portfolio/history", "viewer", None),
    ("GET", "/v1/streams/{channel}", "viewer", None),
    ("GET", "/v1/streams/{channel}/latest", "viewer", None),
    ("GET", "/v1/snapshot", "viewer", None),
    ("GET", "/v1/persona", "viewer", None),
    ("GET", "/v1/persona/sprites/{file}", "viewer", None),
    ("GET", "/v1/speech/{speech_id}", "viewer", None),
    ("POST", "/v1/viewers/chat", "operator", {"display_name": "Ana", "text": "hi"}),
    ("GET", "/v1/viewers", "operator", None),
    ("POST", "/v1/chat", "operator", CHAT),
]
# the LangGraph protocol, served under /v1 and at the root
PROTOCOL: list[tuple[str, str, str, Any]] = [
    ("POST", "/assistants/search", "viewer", {}),
    ("GET", "/assistants/{assistant}", "viewer", None),
    ("GET", "/assistants/{assistant}/graph", "viewer", None),
    ("GET", "/assistants/{assistant}/schemas", "viewer", None),
    ("GET", "/assistants/{assistant}/subgraphs", "viewer", None),
    ("POST", "/threads", "operator", {}),
    ("POST", "/threads/search", "operator", {}),
    ("GET", "/threads/{thread_id}", "operator", None),
    ("PATCH", "/threads/{thread_id}", "operator", {"metadata": {}}),
    ("DELETE", "/threads/{thread_id}", "operator", None),
    ("GET", "/threads/{thread_id}/state", "operator", None),
    ("GET", "/threads/{thread_id}/state/{checkpoint_id}", "operator", None),
    ("POST", "/threads/{thread_id}/state/checkpoint", "operator", {}),
    ("POST", "/threads/{thread_id}/history", "operator", {}),
    ("GET", "/threads/{thread_id}/history", "operator", None),
    ("GET", "/threads/{thread_id}/runs", "operator", None),
    ("POST", "/threads/{thread_id}/runs", "operator", DESK_RUN),
    ("POST", "/threads/{thread_id}/runs/stream", "operator", DESK_RUN),
    ("POST", "/threads/{thread_id}/runs/wait", "operator", DESK_RUN),
    ("POST", "/runs", "operator", DESK_RUN),
    ("POST", "/runs/stream", "operator", DESK_RUN),
    ("POST", "/runs/wait", "operator", DESK_RUN),
    ("GET", "/threads/{thread_id}/runs/{run_id}", "operator", None),
    ("DELETE", "/threads/{thread_id}/runs/{run_id}", "operator", None),
    ("GET", "/threads/{thread_id}/runs/{run_id}/join", "operator", None),
    ("GET", "/threads/{thread_id}/runs/{run_id}/stream", "operator", None),
    ("POST", "/threads/{thread_id}/runs/{run_id}/cancel", "operator", None),
]
ROUTES += [
    (m, prefix + path, role, body) for prefix in ("/v1", "") for m, path, role, body in PROTOCOL
]
OPEN_ROUTES = {("GET", "/healthz"), ("GET", "/readyz")} | {
    ("GET", prefix + path) for prefix in ("/v1", "") for path in ("/info", "/ok")
}
PATH_VALUES = {
    "decision_id": "BTCUSDT-20210105T1200",
    "channel": "desk",
    "thread_id": "desk",
    "run_id": "no-such-run",
    "assistant": "desk",
    "checkpoint_id": "no-such-checkpoint",
    "file": "idle.png",
    "speech_id": "sp-0000000000000-0000",
}
# console sign-in takes a key in its body (tests/integration/test_api_console.py)
SESSION_ROUTES = {("POST", "/v1/session"), ("GET", "/v1/session"), ("DELETE", "/v1/session")}
BELOW = {"operator": VIEWER, "admin": OPERATOR}


def concrete(path: str) -> str:
    return path.format(**PATH_VALUES)


@pytest.fixture
async def api(tmp_path: Path, embedder):
    async with running_app(api_settings(tmp_path / "data"), embedder) as (app, client):
        yield app, client


async def call(
    client,
    method: str,
    path: str,
    body: Any = None,
    headers: dict | None = None,
    params: dict | None = None,
):
    return await client.request(method, path, json=body, headers=headers or {}, params=params)


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if code:
        assert error["code"] == code
    return error


# --- auth -------------------------------------------------------------------------------


async def test_every_route_is_in_the_auth_table(api):
    app, _ = api
    routes = {
        (method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item
    }
    covered = {(m, p) for m, p, _, _ in ROUTES} | OPEN_ROUTES | SESSION_ROUTES
    assert routes == covered


async def test_every_route_but_liveness_and_readiness_needs_a_key(api):
    _, client = api
    for method, path, _, body in ROUTES:
        response = await call(client, method, concrete(path), body)
        error = assert_error(response, 401, "unauthorized")
        assert "Bearer" in error["message"]
        assert response.headers["WWW-Authenticate"] == "Bearer"
        response = await call(client, method, concrete(path), body, auth("not-a-key-at-all"))
        assert_error(response, 401, "unauthorized")
    for method, path in OPEN_ROUTES:
        assert (await call(client, method, path)).status_code == 200


async def test_a_key_below_the_routes_role_gets_403(api):
    _, client = api
    for method, path, role, body in ROUTES:
        if role == "viewer":
            continue
        response = await call(client, method, concrete(path), body, auth(BELOW[role]))
        error = assert_error(response, 403, "forbidden")
        assert role in error["message"]


async def test_higher_roles_may_do_what_lower_roles_may(api):
    _, client = api
    for key in (VIEWER, OPERATOR, ADMIN):
        assert (await client.get("/v1/portfolio", headers=auth(key))).status_code == 200
    assert ROLE_RANK["admin"] > ROLE_RANK["operator"]
    assert (await client.post("/v1/desk/stop", headers=auth(ADMIN))).status_code == 200


async def test_key_by_header_or_query(api):
    _, client = api
    assert (await client.get("/v1/portfolio", headers={"X-Api-Key": VIEWER})).status_code == 200
    assert (await client.get("/v1/portfolio", params={"key": VIEWER})).status_code == 200
    # ?key= is only for viewer reads: never for control
    response = await client.post("/v1/desk/stop", params={"key": OPERATOR})
    assert "only for reads" in assert_error(response, 401)["message"]
    response = await client.get("/v1/desk/journal", params={"key": OPERATOR})
    assert_error(response, 401)


async def test_control_routes_are_rate_limited_per_key(tmp_path: Path, embedder):
    settings = api_settings(
        tmp_path / "data", api={"control_burst": 2, "control_rate_per_minute": 1}
    )
    async with running_app(settings, embedder) as (_, client):
        for _ in range(2):
            assert (await client.post("/v1/desk/stop", headers=auth(OPERATOR))).status_code == 200
        response = await client.post("/v1/desk/stop", headers=auth(OPERATOR))
        assert_error(response, 429, "rate_limited")
        assert int(response.headers["Retry-After"]) >= 1
        # another key has its own bucket; reads are never limited
        assert (await client.post("/v1/desk/stop", headers=auth(ADMIN))).status_code == 200
        for _ in range(5):
            assert (await client.get("/v1/desk/status", headers=auth(OPERATOR))).status_code == 200


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "params", "field"),
    [
        ("POST", "/v1/chat", {"message": "", "thread_id": "t"}, None, "body.message"),
        ("POST", "/v1/chat", {"message": "x" * 2001, "thread_id": "t"}, None, "body.message"),
        ("POST", "/v1/chat", {"message": "hi", "thread_id": "bad id!"}, None, "body.thread_id"),
        ("POST", "/v1/chat", {"message": "hi"}, None, "body.thread_id"),
        ("PUT", "/v1/risk/limits", {"max_position_pct": "1.5"}, None, "body.max_position_pct"),
        ("PUT", "/v1/risk/limits", {"max_order_notional": "lots"}, None, "body.max_order_notional"),
        ("PUT", "/v1/risk/limits", {"leverage": 100}, None, "body.leverage"),
        ("POST", "/v1/risk/kill-switch", {}, None, "body.on"),
        ("POST", "/v1/approvals/X", {"approved": "perhaps"}, None, "body.approved"),
        ("GET", "/v1/decisions", None, {"limit": 0}, "query.limit"),
        ("GET", "/v1/decisions", None, {"action": "YOLO"}, "query.action"),
        ("GET", "/v1/orders", None, {"status": "bogus"}, "query.status"),
        ("GET", "/v1/streams/gossip", None, None, "path.channel"),
        ("POST", "/v1/runs/stream", {"assistant_id": ""}, None, "body.assistant_id"),
        (
            "POST",
            "/runs/stream",
            {"assistant_id": "desk", "stream_mode": "x"},
            None,
            "body.stream_mode",
        ),
        (
            "POST",
            "/runs/wait",
            {"assistant_id": "desk", "stream_subgraphs": "yes"},
            None,
            "body.stream_subgraphs",
        ),
        ("POST", "/threads/search", {"limit": 1001}, None, "body.limit"),
        ("POST", "/runs", {"assistant_id": "desk", "webhook": "http://x"}, None, "body.webhook"),
    ],
)
async def test_invalid_input_is_a_422_naming_the_field(api, method, path, body, params, field):
    _, client = api
    response = await call(client, method, path, body, auth(ADMIN), params)
    error = assert_error(response, 422, "validation_error")
    assert field in [f["field"] for f in error["fields"]], error
    assert field in error["message"]


async def test_other_422s_say_what_is_wrong(api):
    _, client = api
    response = await client.put("/v1/risk/limits", json={}, headers=auth(ADMIN))
    assert "no limits given" in assert_error(response, 422)["message"]
    response = await client.get("/v1/decisions", params={"before": "nope"}, headers=auth(VIEWER))
    assert "before" in assert_error(response, 422)["message"]
    response = await client.get(
        "/v1/streams/desk", headers={**auth(VIEWER), "Last-Event-ID": "yesterday"}
    )
    assert "milliseconds" in assert_error(response, 422)["message"]
    response = await client.post(
        "/v1/runs/stream", headers=auth(OPERATOR), json={"assistant_id": "oracle"}
    )
    assert "the assistants are desk, chat" in assert_error(response, 404)["message"]
    response = await client.post(
        "/runs/wait",
        headers=auth(OPERATOR),
        json={"assistant_id": "chat", "input": {"messages": [{"type": "ai", "content": "x"}]}},
    )
    assert "must be the operator's" in assert_error(response, 422)["message"]
    response = await client.post(
        "/v1/desk/stop",
        content=b"{not json",
        headers={**auth(OPERATOR), "Content-Type": "application/json"},
    )
    assert response.status_code == 200  # no body expected: ignored
    response = await client.post(
        "/v1/chat",
        content=b"{not json",
        headers={**auth(OPERATOR), "Content-Type": "application/json"},
    )
    assert_error(response, 422, "validation_error")


async def test_a_body_over_the_limit_is_a_413_and_changes_nothing(tmp_path: Path, embedder):
    settings = api_settings(tmp_path / "data", api={"max_body_bytes": 4096})
    async with running_app(settings, embedder) as (_, client):
        before = (await client.get("/v1/risk/limits", headers=auth(VIEWER))).json()
        padded = {"max_position_pct": "0.01", "note": "x" * 8192}
        response = await client.put("/v1/risk/limits", json=padded, headers=auth(ADMIN))
        assert "4096 bytes" in assert_error(response, 413, "content_too_large")["message"]

        async def chunks():  # no Content-Length: the limit counts what arrives
            for _ in range(8):
                yield b" " * 1024

        response = await client.post(
            "/v1/chat",
            content=chunks(),
            headers={**auth(OPERATOR), "Content-Type": "application/json"},
        )
        assert_error(response, 413, "content_too_large")
        after = (await client.get("/v1/risk/limits", headers=auth(VIEWER))).json()
        assert after == before
        small = await client.put(
            "/v1/risk/limits", json={"max_position_pct": "0.05"}, headers=auth(ADMIN)
        )
        assert small.status_code == 200, small.text


async def test_an_unexpected_error_is_a_500_that_leaks_nothing(api, monkeypatch):
    app, client = api

    def broken() -> dict:
        raise RuntimeError("secret internals at 0xdeadbeef")

    monkeypatch.setattr(context(app).desk, "status", broken)
    response = await client.get("/v1/desk/status", headers=auth(VIEWER))
    error = assert_error(response, 500, "internal_error")
    assert "secret" not in response.text and "request id" in error["message"]
    assert_error(await client.get("/v1/nowhere", headers=auth(VIEWER)), 404, "not_found")


# --- what the routes do -----------------------------------------------------------------


async def test_tick_reports_and_every_read_shows_the_trade(api):
    _, client = api
    response = await client.post("/v1/desk/tick", headers=auth(OPERATOR))
    assert response.status_code == 200, response.text
    report = response.json()
    decision_id = report["decision"]["id"]
    assert decision_id == "BTCUSDT-20210105T1200"
    assert report["decision"]["action"] == "BUY" and report["fills"]
    viewer = auth(VIEWER)
    decisions = (await client.get("/v1/decisions", headers=viewer)).json()
    assert [d["id"] for d in decisions["items"]] == [decision_id] and decisions["next"] is None
    one = (await client.get(f"/v1/decisions/{decision_id}", headers=viewer)).json()
    assert one["fills"] == report["fills"]
    assert_error(await client.get("/v1/decisions/NOPE", headers=viewer), 404, "not_found")
    portfolio = (await client.get("/v1/portfolio", headers=viewer)).json()
    assert float(portfolio["equity"]) > 0 and portfolio["open_positions"] == 1
    positions = (await client.get("/v1/positions", headers=viewer)).json()["items"]
    assert positions[0]["symbol"] == "BTC/USDT" and float(positions[0]["market_value"]) > 0
    orders = (await client.get("/v1/orders", headers=viewer)).json()["items"]
    assert orders[0]["client_order_id"] == f"tc-{decision_id}"
    filled = (await client.get("/v1/orders", params={"status": "filled"}, headers=viewer)).json()
    assert len(filled["items"]) == 1
    fills = (await client.get("/v1/fills", headers=viewer)).json()["items"]
    assert fills[0]["order_id"] == orders[0]["id"]
    status = (await client.get("/v1/desk/status", headers=viewer)).json()
    assert status["next_tick_at"] == "2021-01-05T13:00:00+00:00"
    assert status["last_tick"]["decision_id"] == decision_id


async def test_decisions_page_newest_first(api):
    _, client = api
    for _ in range(3):
        assert (await client.post("/v1/desk/tick", headers=auth(OPERATOR))).status_code == 200
    first = (await client.get("/v1/decisions", params={"limit": 2}, headers=auth(VIEWER))).json()
    assert [d["id"][-4:] for d in first["items"]] == ["1400", "1300"]
    second = (
        await client.get(
            "/v1/decisions", params={"limit": 2, "before": first["next"]}, headers=auth(VIEWER)
        )
    ).json()
    assert [d["id"][-4:] for d in second["items"]] == ["1200"] and second["next"] is None
    buys = (
        await client.get("/v1/decisions", params={"action": "SELL"}, headers=auth(VIEWER))
    ).json()
    assert buys["items"] == []


async def test_tick_without_waiting_is_accepted_and_runs(api):
    _, client = api
    response = await client.post("/v1/desk/tick", params={"wait": "false"}, headers=auth(OPERATOR))
    assert response.status_code == 202 and response.json()["accepted"] is True
    async with asyncio.timeout(10):
        while not (await client.get("/v1/decisions", headers=auth(VIEWER))).json()["items"]:
            await asyncio.sleep(0.05)


async def test_start_stop_and_the_journal_records_who(api):
    _, client = api
    started = (await client.post("/v1/desk/start", headers=auth(OPERATOR))).json()
    assert started["state"] in ("running", "awaiting_approval")
    stopped = (await client.post("/v1/desk/stop", headers=auth(ADMIN))).json()
    assert stopped["state"] == "paused"
    journal = (await client.get("/v1/desk/journal", headers=auth(OPERATOR))).json()["items"]
    actions = [(e["action"], e["actor"].split(":")[0], e["outcome"]) for e in journal[:2]]
    assert actions == [("pause", "admin", "ok"), ("resume", "operator", "ok")]


async def test_the_loop_ticks_by_itself_until_stopped(tmp_path: Path, embedder):
    settings = api_settings(tmp_path / "data", autostart=True)
    async with running_app(settings, embedder) as (_, client):
        async with asyncio.timeout(20):
            while (
                len((await client.get("/v1/decisions", headers=auth(VIEWER))).json()["items"]) < 3
            ):
                await asyncio.sleep(0.05)
        await client.post("/v1/desk/stop", headers=auth(OPERATOR))
        async with asyncio.timeout(20):  # a tick in progress finishes
            while (await client.get("/v1/desk/status", headers=auth(VIEWER))).json()["ticking"]:
                await asyncio.sleep(0.05)
        count = len(
            (await client.get("/v1/decisions", params={"limit": 200}, headers=auth(VIEWER))).json()[
                "items"
            ]
        )
        await asyncio.sleep(0.5)
        again = (
            await client.get("/v1/decisions", params={"limit": 200}, headers=auth(VIEWER))
        ).json()["items"]
        assert len(again) == count


async def test_limits_change_are_journaled_and_survive_a_restart(tmp_path: Path, embedder):
    settings = api_settings(tmp_path / "data")
    async with running_app(settings, embedder) as (_, client):
        response = await client.put(
            "/v1/risk/limits",
            headers=auth(ADMIN),
            json={"max_position_pct": "0.05", "cooldown_minutes": 30},
        )
        assert response.status_code == 200, response.text
        assert response.json()["max_position_pct"] == "0.05"
        on = await client.post("/v1/risk/kill-switch", json={"on": True}, headers=auth(ADMIN))
        assert on.json()["kill_switch"] is True
        report = (await client.post("/v1/desk/tick", headers=auth(OPERATOR))).json()
        assert report["order"] is None and "kill switch" in " ".join(report["risk"]["reasons"])
        latest = (await client.get("/v1/streams/desk/latest", headers=auth(VIEWER))).json()
        assert "risk_rejection" in [e["event"] for e in latest["items"]]
    async with running_app(settings, embedder) as (_, client):
        limits = (await client.get("/v1/risk/limits", headers=auth(VIEWER))).json()
        assert limits["kill_switch"] is True and limits["max_position_pct"] == "0.05"
        assert limits["cooldown_minutes"] == 30
        status = (await client.get("/v1/desk/status", headers=auth(VIEWER))).json()
        assert status["next_tick_at"] == "2021-01-05T13:00:00+00:00", "the cursor is kept"
        journal = (await client.get("/v1/desk/journal", headers=auth(ADMIN))).json()["items"]
        assert [e["action"] for e in journal][:3] == ["tick", "set_limits", "set_limits"]


async def test_approvals_wait_for_a_human(tmp_path: Path, embedder):
    settings = api_settings(tmp_path / "data", require_approval=True)
    async with running_app(settings, embedder) as (_, client):
        report = (await client.post("/v1/desk/tick", headers=auth(OPERATOR))).json()
        assert report["status"] == "awaiting_approval" and report["order"] is None
        decision_id = report["decision"]["id"]
        pending = (await client.get("/v1/approvals", headers=auth(VIEWER))).json()["items"]
        assert [p["decision_id"] for p in pending] == [decision_id]
        assert pending[0]["request"]["intent"]["side"] == "BUY"
        status = (await client.get("/v1/desk/status", headers=auth(VIEWER))).json()
        assert status["pending_approvals"] == [decision_id]
        response = await client.post(
            f"/v1/approvals/{decision_id}", json={"approved": True}, headers=auth(OPERATOR)
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "completed" and response.json()["fills"]
        again = await client.post(
            f"/v1/approvals/{decision_id}", json={"approved": True}, headers=auth(OPERATOR)
        )
        assert "no order waits" in assert_error(again, 404, "not_found")["message"]
        report = (await client.post("/v1/desk/tick", headers=auth(OPERATOR))).json()
        rejected = await client.post(
            f"/v1/approvals/{report['decision']['id']}",
            json={"approved": False},
            headers=auth(OPERATOR),
        )
        assert rejected.json()["order"] is None and rejected.json()["risk"]["approval"] == (
            "rejected"
        )
        fills = (await client.get("/v1/fills", headers=auth(VIEWER))).json()["items"]
        assert len(fills) == 1


async def test_a_finished_replay_refuses_ticks_with_409(tmp_path: Path, embedder):
    settings = api_settings(tmp_path / "data", replay_from="2021-07-14T05:00:00Z")
    async with running_app(settings, embedder) as (_, client):
        assert (await client.post("/v1/desk/tick", headers=auth(OPERATOR))).status_code == 200
        response = await client.post("/v1/desk/tick", headers=auth(OPERATOR))
        assert "ended" in assert_error(response, 409, "conflict")["message"]
        status = (await client.get("/v1/desk/status", headers=auth(VIEWER))).json()
        assert status["next_tick_at"] is None


async def test_snapshot_metrics_and_docs(api):
    _, client = api
    await client.post("/v1/desk/tick", headers=auth(OPERATOR))
    snapshot = (await client.get("/v1/snapshot", params={"key": VIEWER})).json()
    assert snapshot["decision"]["id"] == "BTCUSDT-20210105T1200"
    assert snapshot["persona"]["sentences"][-1]["text"] == "Let's see how this goes!"
    assert snapshot["last_ids"]["persona"] and snapshot["status"]["persona"]
    metrics = (await client.get("/metrics", headers=auth(VIEWER))).text
    assert 'tradecast_decisions_total{action="BUY"} 1.0' in metrics
    assert 'tradecast_llm_calls_total{agent="persona",ok="true"} 1.0' in metrics
    assert "tradecast_tick_seconds_bucket" in metrics
    schema = (await client.get("/openapi.json")).json()
    assert "/v1/streams/{channel}" in schema["paths"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schema["components"]["securitySchemes"])


async def test_a_pending_approval_survives_a_restart(tmp_path: Path, embedder):
    settings = api_settings(tmp_path / "data", require_approval=True)
    async with running_app(settings, embedder) as (_, client):
        report = (await client.post("/v1/desk/tick", headers=auth(OPERATOR))).json()
        decision_id = report["decision"]["id"]
    async with running_app(settings, embedder) as (_, client):
        status = (await client.get("/v1/desk/status", headers=auth(VIEWER))).json()
        assert status["pending_approvals"] == [decision_id]
        latest = (await client.get("/v1/streams/desk/latest", headers=auth(VIEWER))).json()
        restored = [e for e in latest["items"] if e["event"] == "approval_pending"]
        assert restored[0]["data"]["decision_id"] == decision_id
        assert restored[0]["data"]["restored"] is True
        response = await client.post(
            f"/v1/approvals/{decision_id}", json={"approved": True}, headers=auth(OPERATOR)
        )
        assert response.status_code == 200 and response.json()["fills"]
        status = (await client.get("/v1/desk/status", headers=auth(VIEWER))).json()
        assert status["pending_approvals"] == []
        assert status["next_tick_at"] == "2021-01-05T13:00:00+00:00"


async def test_the_desk_service_is_the_chat_graphs_desk_controls(api):
    app, client = api
    assert isinstance(context(app).desk, DeskControls)
    overlay = await client.get("/overlay/")
    assert overlay.status_code == 200 and "text/html" in overlay.headers["content-type"]

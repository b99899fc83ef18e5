"""What the console stands on, over HTTP (ASGI) on a real desk with scripted chat models:
sign-in by session cookie with CSRF protection, and the chart reads (candles up to what the
desk has seen, decision and fill markers, the equity curve)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from support.api import ADMIN, OPERATOR, VIEWER, api_settings, auth, context, running_app
from tradecast.api.auth import key_digest
from tradecast.api.sessions import CSRF_HEADER, SESSION_COOKIE
from tradecast.errors import StoreUnavailable

BAR = timedelta(hours=1)


@pytest.fixture
async def api(tmp_path: Path, embedder):
    async with running_app(api_settings(tmp_path / "data"), embedder) as (app, client):
        yield app, client


async def sign_in(client: httpx.AsyncClient, key: str) -> dict:
    response = await client.post("/v1/session", json={"key": key})
    assert response.status_code == 200, response.text
    return response.json()


def error_code(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    return response.json()["error"]["code"]


# --- sign-in ----------------------------------------------------------------------------


async def test_sign_in_sets_a_strict_httponly_cookie_and_answers_a_csrf_token(api):
    _, client = api
    response = await client.post("/v1/session", json={"key": OPERATOR})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["role"] == "operator" and body["name"].startswith("operator:")
    assert len(body["csrf_token"]) >= 32
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/", "Max-Age=28800"):
        assert attribute.lower() in cookie.lower(), cookie
    assert "secure" not in cookie.lower(), "plain HTTP: a Secure cookie would never come back"
    assert OPERATOR not in cookie
    # the cookie reads, and the session answers the same token again
    again = (await client.get("/v1/session")).json()
    assert again["csrf_token"] == body["csrf_token"]
    assert (await client.get("/v1/portfolio")).status_code == 200


async def test_the_cookie_is_secure_over_tls(api):
    app, _ = api
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://api") as client:
        response = await client.post("/v1/session", json={"key": VIEWER})
        assert "secure" in response.headers["set-cookie"].lower()


async def test_bad_sign_ins_are_refused_and_set_no_cookie(api):
    _, client = api
    response = await client.post("/v1/session", json={"key": "not-a-key-at-all"})
    assert error_code(response, 401) == "unauthorized"
    assert "set-cookie" not in response.headers
    for body in ({}, {"key": ""}, {"key": 123}, {"key": "x" * 257}, {"key": VIEWER, "role": "x"}):
        assert error_code(await client.post("/v1/session", json=body), 422) == "validation_error"
    assert error_code(await client.get("/v1/session"), 401) == "unauthorized"
    client.cookies.set(SESSION_COOKIE, "forged-session-value")
    assert error_code(await client.get("/v1/portfolio"), 401) == "unauthorized"


async def test_a_change_by_cookie_needs_the_sessions_csrf_token(api):
    _, client = api
    session = await sign_in(client, OPERATOR)
    assert error_code(await client.post("/v1/desk/stop"), 403) == "csrf_failed"
    wrong = {CSRF_HEADER: "x" * len(session["csrf_token"])}
    assert error_code(await client.post("/v1/desk/stop", headers=wrong), 403) == "csrf_failed"
    right = {CSRF_HEADER: session["csrf_token"]}
    assert (await client.post("/v1/desk/stop", headers=right)).status_code == 200
    journal = (await client.get("/v1/desk/journal")).json()["items"]
    assert journal[0]["actor"] == session["name"], "the journal names the session's key"
    # a key in a header is no ambient credential: it needs no token
    assert (await client.post("/v1/desk/stop", headers=auth(OPERATOR))).status_code == 200


async def test_the_role_of_a_session_is_enforced_by_the_server(api):
    _, client = api
    session = await sign_in(client, VIEWER)
    csrf = {CSRF_HEADER: session["csrf_token"]}
    assert error_code(await client.post("/v1/desk/tick", headers=csrf), 403) == "forbidden"
    limit = {"max_position_pct": "0.05"}
    assert error_code(await client.put("/v1/risk/limits", json=limit, headers=csrf), 403) == (
        "forbidden"
    )
    admin = await sign_in(client, ADMIN)
    csrf = {CSRF_HEADER: admin["csrf_token"]}
    response = await client.put("/v1/risk/limits", json=limit, headers=csrf)
    assert response.status_code == 200 and response.json()["max_position_pct"] == "0.05"


async def test_sign_out_ends_the_session_on_the_server(api):
    _, client = api
    session = await sign_in(client, OPERATOR)
    cookie = client.cookies[SESSION_COOKIE]
    assert error_code(await client.delete("/v1/session"), 403) == "csrf_failed"
    response = await client.delete("/v1/session", headers={CSRF_HEADER: session["csrf_token"]})
    assert response.status_code == 204
    assert 'tradecast_session=""' in response.headers["set-cookie"]
    client.cookies.set(SESSION_COOKIE, cookie)  # a copy kept of the old cookie
    assert error_code(await client.get("/v1/portfolio"), 401) == "unauthorized"


async def test_sessions_outlive_a_restart_but_not_their_key(tmp_path: Path, embedder):
    async with running_app(api_settings(tmp_path / "data"), embedder) as (_, client):
        session = await sign_in(client, OPERATOR)
        cookie = client.cookies[SESSION_COOKIE]
    async with running_app(api_settings(tmp_path / "data"), embedder) as (_, client):
        client.cookies.set(SESSION_COOKIE, cookie)
        assert (await client.get("/v1/session")).json()["csrf_token"] == session["csrf_token"]
    rotated = api_settings(tmp_path / "data", api={"api_keys": f"viewer:{VIEWER}"})
    async with running_app(rotated, embedder) as (_, client):
        client.cookies.set(SESSION_COOKIE, cookie)
        assert error_code(await client.get("/v1/portfolio"), 401) == "unauthorized"


async def test_sign_ins_are_rate_limited_per_client(tmp_path: Path, embedder):
    settings = api_settings(
        tmp_path / "data", api={"control_burst": 2, "control_rate_per_minute": 1}
    )
    async with running_app(settings, embedder) as (_, client):
        for _ in range(2):
            await client.post("/v1/session", json={"key": "wrong-key-guess"})
        response = await client.post("/v1/session", json={"key": OPERATOR})
        assert error_code(response, 429) == "rate_limited"


# --- chart reads ------------------------------------------------------------------------


async def test_candles_show_nothing_the_desk_has_not_seen(api):
    app, client = api
    viewer = auth(VIEWER)
    before = (await client.get("/v1/market/candles", headers=viewer)).json()
    assert before["symbol"] == "BTC/USDT" and before["timeframe"] == "1h"
    assert len(before["items"]) == 1000
    start = datetime.fromisoformat("2021-01-05T12:00:00+00:00")
    last_open = datetime.fromtimestamp(before["items"][-1]["t"], start.tzinfo)
    assert last_open + BAR <= start - BAR, "before the first tick: only bars closed before it"
    for _ in range(2):
        assert (await client.post("/v1/desk/tick", headers=auth(OPERATOR))).status_code == 200
    after = (await client.get("/v1/market/candles", headers=viewer, params={"limit": 5})).json()
    bars = after["items"]
    assert len(bars) == 5 and [b["t"] for b in bars] == sorted(b["t"] for b in bars)
    decided = datetime.fromisoformat(context(app).desk.status()["last_tick"]["at"])
    assert datetime.fromtimestamp(bars[-1]["t"], start.tzinfo) + BAR == decided
    bar = bars[-1]
    assert Decimal(bar["l"]) <= Decimal(bar["o"]) <= Decimal(bar["h"])


async def test_chart_reads_refuse_bad_input(api):
    _, client = api
    viewer = auth(VIEWER)
    for path in ("/v1/market/candles", "/v1/decisions/markers"):
        for params in ({"limit": 0}, {"limit": 20_001}, {"limit": "ten"}):
            assert error_code(await client.get(path, params=params, headers=viewer), 422)
    response = await client.get(
        "/v1/market/candles", params={"symbol": "NOPE/USDT"}, headers=viewer
    )
    assert error_code(response, 422) == "validation_error"
    response = await client.get("/v1/decisions/markers", params={"symbol": "nope"}, headers=viewer)
    assert error_code(response, 422) == "validation_error"


async def test_markers_and_equity_history_are_what_the_broker_did(api):
    app, client = api
    viewer = auth(VIEWER)
    empty = (await client.get("/v1/portfolio/history", headers=viewer)).json()
    assert empty["items"] == [] and Decimal(empty["start_equity"]) == Decimal("10000")
    reports = []
    for _ in range(3):
        response = await client.post("/v1/desk/tick", headers=auth(OPERATOR))
        reports.append(response.json())
    marks = (await client.get("/v1/decisions/markers", headers=viewer)).json()
    assert [m["id"] for m in marks["items"]] == [r["decision"]["id"] for r in reports]
    assert reports[0]["fills"] and marks["items"][0]["outcome"] == "filled"
    for mark, report in zip(marks["items"], reports, strict=True):
        assert mark["action"] == report["decision"]["action"]
        assert (mark["outcome"] == "filled") == bool(report["fills"])
    broker_fills = context(app).desk.current_broker().fills()
    assert [(f["side"], f["price"]) for f in marks["fills"]] == [
        (f.side.value, str(f.price)) for f in broker_fills
    ]
    assert {f["trigger"] for f in marks["fills"]} == {"desk"}
    history = (await client.get("/v1/portfolio/history", headers=viewer)).json()
    assert Decimal(history["start_equity"]) == Decimal("10000"), "every fill undone"
    points = history["items"]
    assert len(points) == 3, "one point per bar from the first decision to the last"
    assert Decimal(points[0]["buy_and_hold"]) < Decimal("10000")  # the entry's cost
    assert all(Decimal(p["drawdown"]) >= 0 for p in points)
    portfolio = context(app).desk.current_broker().portfolio()
    assert abs(Decimal(points[-1]["equity"]) - portfolio.equity) <= Decimal("0.01")


async def test_lowercase_symbols_read_the_same_market(api):
    _, client = api
    assert (await client.post("/v1/desk/tick", headers=auth(OPERATOR))).status_code == 200
    upper = await client.get("/v1/decisions/markers", headers=auth(VIEWER))
    lower = await client.get(
        "/v1/decisions/markers", params={"symbol": " btc/usdt"}, headers=auth(VIEWER)
    )
    assert lower.json() == upper.json() and len(upper.json()["items"]) == 1
    candles = await client.get(
        "/v1/market/candles", params={"symbol": "btc/usdt", "limit": 3}, headers=auth(VIEWER)
    )
    assert candles.json()["symbol"] == "BTC/USDT"


async def test_a_waiting_decision_is_on_the_chart_with_its_bar(tmp_path: Path, embedder):
    settings = api_settings(tmp_path / "data", require_approval=True)
    async with running_app(settings, embedder) as (_, client):
        report = (await client.post("/v1/desk/tick", headers=auth(OPERATOR))).json()
        assert report["status"] == "awaiting_approval"
        marks = (await client.get("/v1/decisions/markers", headers=auth(VIEWER))).json()
        assert [m["outcome"] for m in marks["items"]] == ["waiting"]
        bars = (
            await client.get("/v1/market/candles", params={"limit": 1}, headers=auth(VIEWER))
        ).json()["items"]
        decided = datetime.fromisoformat(report["decision"]["decided_at"])
        assert datetime.fromtimestamp(bars[-1]["t"], decided.tzinfo) + BAR == decided


async def test_a_replay_started_again_earlier_shows_nothing_of_its_old_future(
    tmp_path: Path, embedder
):
    async with running_app(api_settings(tmp_path / "data"), embedder) as (_, client):
        for _ in range(2):
            assert (await client.post("/v1/desk/tick", headers=auth(OPERATOR))).status_code == 200
    earlier = api_settings(tmp_path / "data", replay_from="2021-01-04T12:00:00Z")
    async with running_app(earlier, embedder) as (_, client):
        viewer = auth(VIEWER)
        marks = (await client.get("/v1/decisions/markers", headers=viewer)).json()
        assert marks == {"items": [], "fills": []}
        history = (await client.get("/v1/portfolio/history", headers=viewer)).json()
        assert history["items"] == [] and Decimal(history["start_equity"]) == Decimal("10000")


async def test_a_stale_cookie_neither_blocks_a_key_nor_sign_out(api):
    _, client = api
    client.cookies.set(SESSION_COOKIE, "a-session-that-ended")
    assert (await client.get("/v1/portfolio", params={"key": VIEWER})).status_code == 200
    assert (await client.get("/v1/portfolio", headers=auth(VIEWER))).status_code == 200
    response = await client.delete("/v1/session")
    assert response.status_code == 204 and 'tradecast_session=""' in response.headers["set-cookie"]


async def test_signing_in_again_ends_the_session_held_before(api):
    _, client = api
    await sign_in(client, ADMIN)
    admin_cookie = client.cookies[SESSION_COOKIE]
    await sign_in(client, VIEWER)
    client.cookies.set(SESSION_COOKIE, admin_cookie)
    assert error_code(await client.get("/v1/session"), 401) == "unauthorized"


async def test_the_store_holds_nothing_to_guess_a_key_from(api):
    app, client = api
    await sign_in(client, OPERATOR)
    cookie = client.cookies[SESSION_COOKIE]
    rows, _ = context(app).desk.store._db.execute("SELECT * FROM sessions", ())
    stored = " ".join(str(value) for row in rows for value in row)
    for secret in (OPERATOR, key_digest(OPERATOR), cookie):
        assert secret not in stored


async def test_secure_cookies_can_be_forced_behind_a_tls_proxy(tmp_path: Path, embedder):
    settings = api_settings(tmp_path / "data", api={"secure_cookies": True})
    async with running_app(settings, embedder) as (_, client):
        response = await client.post("/v1/session", json={"key": VIEWER})
        assert "secure" in response.headers["set-cookie"].lower()


async def test_an_unreachable_store_answers_503_not_500(api, monkeypatch):
    app, client = api
    await sign_in(client, VIEWER)

    def down(*_: object) -> None:
        raise StoreUnavailable("the desk store cannot be reached (test)")

    monkeypatch.setattr(context(app).desk.store, "session", down)
    response = await client.get("/v1/portfolio")
    assert error_code(response, 503) == "unavailable"
    assert response.headers["Retry-After"] == "5"

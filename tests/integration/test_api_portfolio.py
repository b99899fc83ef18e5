"""A portfolio desk (``desk.symbols``) behind the HTTP API: one tick decides every symbol, the
store and the API read one decision per symbol, the portfolio shows the book's exposure and
VaR, and the desk stream carries the portfolio check."""

from __future__ import annotations

from decimal import Decimal

from support.api import OPERATOR, VIEWER, api_settings, auth, running_app, scripted_models
from support.scripted_model import NO_TOOL, analyst, risk, trader

SYMBOLS = ["BTC/USDT", "ETH/BUSD"]
LLM_ONLY = {
    "rules_weight": 0,
    "analyst_weight": 1,
    "trader_weight": 1,
    "strategy": {"sizing": "fixed", "strategies": []},
}


def buyers() -> dict:
    return scripted_models(
        analyst=[analyst("BUY", 0.9)],
        risk=[risk("approve", 1.0)],
        trader=[NO_TOOL, trader("BUY", 1.0, 0.9)],
    )


async def test_one_tick_reports_each_symbol_and_the_book(tmp_path, embedder):
    settings = api_settings(tmp_path / "data", symbols=SYMBOLS, **LLM_ONLY)
    async with running_app(settings, embedder, buyers()) as (_, client):
        status = (await client.get("/v1/desk/status", headers=auth(VIEWER))).json()
        report = (await client.post("/v1/desk/tick", headers=auth(OPERATOR))).json()
        decisions = (await client.get("/v1/decisions", headers=auth(VIEWER))).json()["items"]
        eth = await client.get("/v1/decisions", params={"symbol": "eth/busd"}, headers=auth(VIEWER))
        book = (await client.get("/v1/portfolio", headers=auth(VIEWER))).json()
        history = (await client.get("/v1/portfolio/history", headers=auth(VIEWER))).json()
        latest = (await client.get("/v1/streams/desk/latest", headers=auth(VIEWER))).json()
    assert status["symbols"] == SYMBOLS
    assert report["portfolio"]["symbols"] == SYMBOLS
    assert report["decision"]["symbol"] == report["portfolio"]["headline"]
    assert sorted(d["decision"]["symbol"] for d in decisions) == SYMBOLS
    assert all(d["fills"] and d["portfolio"]["llm_calls"] for d in decisions)
    assert [d["decision"]["symbol"] for d in eth.json()["items"]] == ["ETH/BUSD"]
    assert book["symbols"] == SYMBOLS
    assert {p["symbol"] for p in book["positions"]} == set(SYMBOLS)
    exposure = book["exposure"]
    assert set(exposure["values"]) == set(SYMBOLS)
    gross = sum(abs(Decimal(v)) for v in exposure["values"].values()) / Decimal(book["equity"])
    assert abs(Decimal(exposure["gross"]) - gross) < Decimal("1e-6")
    assert Decimal(exposure["gross"]) <= Decimal(exposure["limits"]["max_gross_exposure_pct"])
    assert exposure["var"] is not None and Decimal(exposure["var"]) > 0
    assert history["items"] and Decimal(history["items"][-1]["equity"]) > 0
    events = [e["event"] for e in latest["items"]]
    assert "portfolio" in events
    recorded = [e for e in latest["items"] if e["event"] == "recorded"]
    assert len(recorded) == 2


async def test_a_portfolio_desk_refuses_approvals_at_start(tmp_path):
    from tradecast.errors import SettingsError
    from tradecast.settings import load_settings

    try:
        load_settings(data_dir=tmp_path, desk={"symbols": SYMBOLS, "require_approval": True})
    except SettingsError as exc:
        assert "one-symbol desk" in str(exc)
    else:
        raise AssertionError("a portfolio desk with approvals was accepted")

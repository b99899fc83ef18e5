"""TRADECAST_DESK__SYMBOLS: the portfolio desk's symbols, read strictly, and how many of
them decide at once."""

from __future__ import annotations

import pytest

from tradecast.bootstrap import symbols_at_once
from tradecast.errors import SettingsError
from tradecast.settings import MAX_DESK_SYMBOLS, load_settings


@pytest.mark.parametrize(
    "text", ['["btc/usdt", "ETH/BUSD"]', "btc/usdt, ETH/BUSD", "BTC/USDT,ETH/BUSD,"]
)
def test_symbols_read_as_a_json_list_or_comma_separated(monkeypatch, text):
    monkeypatch.setenv("TRADECAST_DESK__SYMBOLS", text)
    desk = load_settings().desk
    assert desk.symbols == ("BTC/USDT", "ETH/BUSD")
    assert desk.symbol == "BTC/USDT" and desk.desk_symbols == desk.symbols


def test_one_symbol_stays_the_default_desk():
    desk = load_settings().desk
    assert desk.symbols == () and desk.desk_symbols == ("BTC/USDT",)


def test_symbol_may_pick_the_lead_among_symbols(monkeypatch):
    monkeypatch.setenv("TRADECAST_DESK__SYMBOLS", "BTC/USDT,ETH/BUSD")
    monkeypatch.setenv("TRADECAST_DESK__SYMBOL", "eth/busd")
    assert load_settings().desk.symbol == "ETH/BUSD"


@pytest.mark.parametrize(
    ("desk", "message"),
    [
        ({"symbols": ["BTC/USDT"], "symbol": "SOL/USDT"}, "not among symbols"),
        ({"symbols": ["BTC/USDT", "btc/usdt"]}, "listed twice"),
        ({"symbols": ["BTCUSDT"]}, "TRADECAST_DESK"),
        ({"symbols": [f"S{i}/USDT" for i in range(MAX_DESK_SYMBOLS + 1)]}, "at most"),
        ({"symbols": ["BTC/USDT", "ETH/BUSD"], "require_approval": True}, "one-symbol desk"),
        ({"symbols_at_once": MAX_DESK_SYMBOLS + 1}, "less than or equal"),
    ],
)
def test_ambiguous_or_bad_symbols_fail_at_start(desk, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(desk=desk)


def test_the_embedded_model_decides_one_symbol_at_a_time_and_ollama_all():
    assert symbols_at_once(load_settings()) == 1
    assert symbols_at_once(load_settings(llm={"backend": "ollama"})) == 0
    mixed = load_settings(llm={"backend": "ollama", "trader": {"backend": "llamacpp"}})
    assert symbols_at_once(mixed) == 1
    assert symbols_at_once(load_settings(desk={"symbols_at_once": 3})) == 3

"""Settings load from TRADECAST_ variables and fail fast naming the variable to fix."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from tradecast.errors import SettingsError
from tradecast.settings import LLMBackend, env_var_name, load_settings


def test_defaults_are_the_embedded_setup():
    settings = load_settings()
    assert settings.llm.backend is LLMBackend.LLAMACPP
    assert settings.market.source == "replay"
    assert settings.redis_url is None and settings.postgres_url is None
    assert settings.risk.max_position_pct == Decimal("0.10")


def test_nested_variables_set_nested_fields(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("TRADECAST_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("TRADECAST_LLM__BACKEND", "ollama")
    monkeypatch.setenv("TRADECAST_LLM__PERSONA__MODEL", "llama3.2:3b")
    monkeypatch.setenv("TRADECAST_RISK__MAX_ORDER_NOTIONAL", "750.5")
    settings = load_settings()
    assert settings.data_dir == tmp_path / "d"
    assert settings.llm.for_role("persona") == (LLMBackend.OLLAMA, "llama3.2:3b")
    assert settings.llm.for_role("trader") == (LLMBackend.OLLAMA, None)
    assert settings.risk.max_order_notional == Decimal("750.5")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TRADECAST_LLM__BACKEND", "gpt5"),
        ("TRADECAST_LLM__TIMEOUT_S", "-3"),
        ("TRADECAST_RISK__MAX_POSITION_PCT", "1.5"),
        ("TRADECAST_API__PORT", "http"),
        ("TRADECAST_LOG_LEVEL", "loud"),
        # every number has an upper bound: an absurd llama.cpp setting fails at start
        ("TRADECAST_LLM__N_CTX", "100000000"),
        ("TRADECAST_LLM__N_THREADS", "5000"),
        ("TRADECAST_LLM__N_GPU_LAYERS", "-2"),
        ("TRADECAST_LLM__SEED", "-1"),
        ("TRADECAST_LLM__TIMEOUT_S", "1e9"),
        ("TRADECAST_LLM__BREAKER_COOLDOWN_S", "86400"),
    ],
)
def test_invalid_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert variable in str(caught.value)
    assert repr(value) in str(caught.value)


def test_data_dir_that_is_a_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    clash = tmp_path / "file"
    clash.write_text("x")
    monkeypatch.setenv("TRADECAST_DATA_DIR", str(clash))
    with pytest.raises(SettingsError, match="not a directory"):
        load_settings()


def test_env_var_name_skips_list_indexes():
    assert env_var_name(("llm", "analyst", "model")) == "TRADECAST_LLM__ANALYST__MODEL"
    assert env_var_name(("market", "csv_paths", 0)) == "TRADECAST_MARKET__CSV_PATHS"


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("TRADECAST_NEWS__K", "11", "TRADECAST_NEWS__K"),
        ("TRADECAST_NEWS__POLL_INTERVAL_S", "0.5", "TRADECAST_NEWS__POLL_INTERVAL_S"),
        ("TRADECAST_NEWS__INGESTION_DELAY_S", "-1", "TRADECAST_NEWS__INGESTION_DELAY_S"),
        ("TRADECAST_NEWS__LOOKBACK_H", "100000", "TRADECAST_NEWS__LOOKBACK_H"),
        ("TRADECAST_NEWS__FEEDS", '["ftp://feeds.example/rss"]', "must be an http(s) URL"),
        ("TRADECAST_NEWS__CRYPTOPANIC_URL", "cryptopanic.com", "TRADECAST_NEWS__CRYPTOPANIC_URL"),
    ],
)
def test_news_settings_are_bounded(monkeypatch, env: str, value: str, message: str):
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings()


def test_news_is_off_until_a_source_is_set(monkeypatch):
    assert not load_settings().news.enabled()
    monkeypatch.setenv("TRADECAST_NEWS__FEEDS", '["https://feeds.example/rss.xml"]')
    assert load_settings().news.enabled()

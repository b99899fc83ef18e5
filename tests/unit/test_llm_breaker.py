"""The LLM circuit breaker's settings and its wiring in the factory (its states are the
contract suite's: tests/contract/test_breaker_store_contract.py)."""

from __future__ import annotations

import pytest

from tradecast.errors import LLMError
from tradecast.llm import create_chat_model
from tradecast.llm.breaker import CircuitBreaker, CircuitOpenError
from tradecast.settings import LLMBackend, LLMConfig, load_settings


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError):
        CircuitBreaker("x", threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker("x", cooldown_s=0)


def test_factory_shares_one_breaker_per_server(monkeypatch):
    monkeypatch.setenv("TRADECAST_LLM__BACKEND", "ollama")
    monkeypatch.setenv("TRADECAST_LLM__OLLAMA_BASE_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("TRADECAST_LLM__BREAKER_THRESHOLD", "5")
    monkeypatch.setenv("TRADECAST_LLM__BREAKER_COOLDOWN_S", "7.5")
    config = load_settings().llm
    analyst, persona = create_chat_model(config, "analyst"), create_chat_model(config, "persona")
    assert analyst.breaker is persona.breaker
    assert analyst.breaker.threshold == 5 and analyst.breaker.cooldown_s == 7.5
    other = create_chat_model(
        LLMConfig(backend=LLMBackend.OLLAMA, ollama_base_url="http://127.0.0.1:2"), "analyst"
    )
    assert other.breaker is not analyst.breaker


def test_defaults_are_safe():
    config = LLMConfig()
    assert config.breaker_threshold == 3 and config.breaker_cooldown_s == 30.0


async def test_an_unreachable_server_opens_the_breaker_and_then_fails_fast():
    config = LLMConfig(
        backend=LLMBackend.OLLAMA,
        ollama_base_url="http://127.0.0.1:9",  # discard port: nothing listens
        timeout_s=2,
        breaker_threshold=2,
        breaker_cooldown_s=60,
    )
    model = create_chat_model(config, "trader")
    for _ in range(2):
        with pytest.raises(LLMError) as info:
            await model.ainvoke("hello")
        assert not isinstance(info.value, CircuitOpenError)
    with pytest.raises(CircuitOpenError):
        await model.ainvoke("hello")
    chunks = model.astream("hello")
    with pytest.raises(CircuitOpenError):
        await chunks.__anext__()

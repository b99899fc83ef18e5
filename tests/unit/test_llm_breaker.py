"""The LLM circuit breaker: closed -> open after N consecutive server failures -> half-open
after the cool-down (one trial) -> closed on success; and its wiring in the factory."""

from __future__ import annotations

import pytest

from tradecast.errors import LLMError
from tradecast.llm import create_chat_model
from tradecast.llm.breaker import BreakerState, CircuitBreaker, CircuitOpenError
from tradecast.settings import LLMBackend, LLMConfig, load_settings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _breaker(threshold: int = 3, cooldown: float = 10.0) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    return CircuitBreaker("test server", threshold, cooldown, clock=clock), clock


def _fail(breaker: CircuitBreaker, kind: str = "unreachable") -> None:
    breaker.before_call()
    breaker.record_failure(LLMError(kind, "down"))  # type: ignore[arg-type]


def test_opens_after_consecutive_failures_and_fails_fast():
    breaker, _ = _breaker(threshold=3)
    _fail(breaker)
    _fail(breaker)
    assert breaker.state is BreakerState.CLOSED
    _fail(breaker, "timeout")
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError, match="circuit open for test server after 3") as info:
        breaker.before_call()
    assert info.value.kind == "unreachable" and isinstance(info.value, LLMError)
    assert breaker.stats.rejected == 1 and breaker.stats.opened == 1


def test_a_success_resets_the_count():
    breaker, _ = _breaker(threshold=2)
    _fail(breaker)
    breaker.before_call()
    breaker.record_success()
    _fail(breaker)
    assert breaker.state is BreakerState.CLOSED


def test_answers_from_a_live_server_do_not_count():
    breaker, _ = _breaker(threshold=1)
    breaker.before_call()
    breaker.record_failure(LLMError("unparseable", "garbage"))
    breaker.before_call()
    breaker.record_failure(LLMError("model_missing", "pull it"))
    assert breaker.state is BreakerState.CLOSED


def test_half_open_admits_one_trial_then_closes_on_success():
    breaker, clock = _breaker(threshold=1, cooldown=10)
    _fail(breaker)
    clock.now += 9.9
    with pytest.raises(CircuitOpenError):
        breaker.before_call()
    clock.now += 0.1
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.before_call()  # the trial
    with pytest.raises(CircuitOpenError):
        breaker.before_call()  # everyone else still fails fast
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    breaker.before_call()


def test_a_failed_trial_opens_it_for_another_cooldown():
    breaker, clock = _breaker(threshold=2, cooldown=5)
    _fail(breaker)
    _fail(breaker)
    clock.now += 5
    _fail(breaker)  # the trial fails
    assert breaker.state is BreakerState.OPEN
    clock.now += 4.9
    with pytest.raises(CircuitOpenError):
        breaker.before_call()
    clock.now += 0.1
    breaker.before_call()


def test_an_abandoned_trial_frees_the_slot():
    breaker, clock = _breaker(threshold=1, cooldown=1)
    _fail(breaker)
    clock.now += 1
    breaker.before_call()
    breaker.record_abandoned()
    breaker.before_call()  # another caller may be the trial now


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

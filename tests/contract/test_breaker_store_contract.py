"""The BreakerStore contract, run through CircuitBreaker against every store on a fake clock.

closed -> open after N consecutive server faults -> half-open after the cool-down (one trial)
-> closed on success, or open again. The Redis store runs its Lua scripts on the machine's
Redis on a fresh key prefix; two breakers on one Redis key are two replicas.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from support.services import REDIS_URL
from tradecast.errors import LLMError
from tradecast.llm.breaker import (
    BreakerState,
    BreakerStore,
    CircuitBreaker,
    CircuitOpenError,
    LocalBreakerStore,
)
from tradecast.llm.breaker_redis import RedisBreakerStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


MakeStore = Callable[[float], BreakerStore]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["local", "redis"])
def make_store(request: pytest.FixtureRequest, clock: Clock) -> Iterator[MakeStore]:
    """Stores of one breaker: the local one is one store; Redis ones share a key."""
    if request.param == "local":
        stores: dict[float, LocalBreakerStore] = {}
        yield lambda cooldown: stores.setdefault(cooldown, LocalBreakerStore(cooldown, clock))
        return
    from redis import Redis

    request.applymarker(pytest.mark.scaleout)
    key = f"{request.getfixturevalue('namespace')}:breaker:test server"
    client = Redis.from_url(REDIS_URL)
    yield lambda cooldown: RedisBreakerStore(client, key, cooldown, clock=clock)
    client.close()


def breaker(make_store: MakeStore, threshold: int = 3, cooldown: float = 10.0) -> CircuitBreaker:
    return CircuitBreaker("test server", threshold, cooldown, store=make_store(cooldown))


def fail(b: CircuitBreaker, kind: str = "unreachable") -> None:
    b.before_call()
    b.record_failure(LLMError(kind, "down"))  # type: ignore[arg-type]


def test_opens_after_consecutive_failures_and_fails_fast(make_store):
    b = breaker(make_store, threshold=3)
    fail(b)
    fail(b)
    assert b.state is BreakerState.CLOSED
    fail(b, "timeout")
    assert b.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError, match="circuit open for test server after 3") as info:
        b.before_call()
    assert info.value.retry_in_s == pytest.approx(10.0)
    assert b.stats.rejected == 1 and b.stats.opened == 1


def test_a_success_resets_the_count_and_live_answers_do_not_count(make_store):
    b = breaker(make_store, threshold=2)
    fail(b)
    b.before_call()
    b.record_success()
    fail(b)
    b.before_call()
    b.record_failure(LLMError("unparseable", "garbage"))
    b.before_call()
    b.record_failure(LLMError("model_missing", "pull it"))
    fail(b)
    assert b.state is BreakerState.CLOSED
    assert b.before_call() is False, "a call while closed is no trial"


def test_half_open_admits_one_trial_then_closes_on_success(make_store, clock):
    b = breaker(make_store, threshold=1, cooldown=10)
    fail(b)
    clock.now += 9.9
    with pytest.raises(CircuitOpenError):
        b.before_call()
    clock.now += 0.1
    assert b.state is BreakerState.HALF_OPEN
    b.before_call()  # the trial
    with pytest.raises(CircuitOpenError):
        b.before_call()  # everyone else still fails fast
    b.record_success()
    assert b.state is BreakerState.CLOSED and b.stats.closed == 1
    b.before_call()


def test_a_failed_trial_opens_it_for_another_cooldown(make_store, clock):
    b = breaker(make_store, threshold=2, cooldown=5)
    fail(b)
    fail(b)
    clock.now += 5
    fail(b)  # the trial fails
    assert b.state is BreakerState.OPEN
    clock.now += 4.9
    with pytest.raises(CircuitOpenError):
        b.before_call()
    clock.now += 0.1
    b.before_call()


def test_an_abandoned_or_hung_trial_frees_the_slot(make_store, clock):
    b = breaker(make_store, threshold=1, cooldown=1)
    fail(b)
    clock.now += 1
    assert b.before_call() is True, "the trial"
    b.record_abandoned()
    assert b.before_call() is True, "another caller may be the trial now"
    clock.now += 0.25
    with pytest.raises(CircuitOpenError) as info:
        b.before_call()
    assert info.value.retry_in_s == pytest.approx(0.75), "until the trial's time is up"
    clock.now += 0.75  # the trial said nothing for a whole cool-down
    assert b.before_call() is True


def test_breakers_on_one_store_are_one_breaker(make_store, clock):
    """Replicas: failures add up across them, one's open breaker refuses on the other, and
    only one of them sends the trial."""
    first, second = breaker(make_store, threshold=2), breaker(make_store, threshold=2)
    fail(first)
    fail(second)
    assert first.state is BreakerState.OPEN and second.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError):
        second.before_call()
    clock.now += 10
    first.before_call()  # the one trial
    with pytest.raises(CircuitOpenError):
        second.before_call()
    first.record_success()
    second.before_call()
    assert second.state is BreakerState.CLOSED


def test_on_the_redis_servers_clock_the_cooldown_ends(namespace):
    """Without a test clock, the scripts read Redis's own TIME (what replicas use)."""
    from redis import Redis

    client = Redis.from_url(REDIS_URL)
    store = RedisBreakerStore(client, f"{namespace}:breaker:server clock", 0.3)
    b = CircuitBreaker("server clock", threshold=1, cooldown_s=0.3, store=store)
    fail(b)
    with pytest.raises(CircuitOpenError) as info:
        b.before_call()
    assert 0 < info.value.retry_in_s <= 0.3
    deadline = time.monotonic() + 10
    while b.state is not BreakerState.HALF_OPEN:  # waits at least the cool-down, however slow
        assert time.monotonic() < deadline, "the cool-down never ended"
        time.sleep(0.05)
    assert b.before_call() is True
    client.close()

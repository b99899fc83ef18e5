"""The shared rate limit and breaker when Redis is out of reach: each replica carries on with
its own state instead of refusing the kill switch or the model server."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from redis import Redis as SyncRedis
from redis.asyncio import Redis

from support.net import free_port
from tradecast.errors import LLMError
from tradecast.llm.breaker import BreakerState, CircuitBreaker, CircuitOpenError
from tradecast.llm.breaker_redis import RedisBreakerStore
from tradecast.ratelimit.shared import RedisRateLimiter


def dead_redis_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there


async def test_the_rate_limit_falls_back_to_this_replicas_bucket():
    client = Redis.from_url(dead_redis_url(), socket_connect_timeout=0.5)
    limiter = RedisRateLimiter(client, "ns", per_minute=0.01, burst=2)
    assert [await limiter.take("k") for _ in range(3)][:2] == [0.0, 0.0]
    assert await limiter.take("k") > 0, "still limited, by this replica alone"
    await client.aclose()


def test_the_breaker_falls_back_to_this_replicas_state():
    client = SyncRedis.from_url(dead_redis_url(), socket_connect_timeout=0.5)
    store = RedisBreakerStore(client, "ns:breaker:x", cooldown_s=30)
    breaker = CircuitBreaker("x", threshold=2, cooldown_s=30, store=store)
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure(LLMError("unreachable", "down"))
    assert breaker.state is BreakerState.OPEN
    client.close()


class HungRedis:
    """A listener that accepts connections and never answers; keeps what it was sent."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.server.getsockname()[1]}/0"
        self.received = b""
        self._held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self._held.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            self.received += data

    def commands(self, settle_s: float = 0.3) -> int:
        """How many commands it was sent (RESP arrays; the first is the client's HELLO), after
        letting what was sent arrive: a late arrival can only hide a request, never invent
        one."""
        time.sleep(settle_s)
        return sum(line.startswith(b"*") for line in self.received.split(b"\r\n"))

    def close(self) -> None:
        self.server.close()
        for conn in self._held:
            conn.close()


async def test_a_hung_redis_costs_the_rate_limit_one_timeout_not_one_per_request():
    hung = HungRedis()
    client = Redis.from_url(hung.url)
    limiter = RedisRateLimiter(client, "ns", per_minute=60, burst=3)
    assert await limiter.take("k") == 0.0, "answered by this replica's bucket"
    assert [await limiter.take("k") for _ in range(3)][:2] == [0.0, 0.0]
    assert hung.commands() == 1, "one try, then Redis is left alone while it is failing"
    await client.aclose()
    hung.close()


def test_a_hung_redis_costs_the_breaker_one_timeout_not_one_per_call():
    hung = HungRedis()
    client = SyncRedis.from_url(hung.url, socket_timeout=0.25)
    store = RedisBreakerStore(client, "ns:breaker:x", cooldown_s=30)
    breaker = CircuitBreaker("x", threshold=2, cooldown_s=30, store=store)
    breaker.before_call()
    for _ in range(2):
        breaker.record_failure(LLMError("unreachable", "down"))
        with contextlib.suppress(CircuitOpenError):
            breaker.before_call()
    assert breaker.state is BreakerState.OPEN
    assert hung.commands() == 1, "one try, then Redis is left alone while it is failing"
    client.close()
    hung.close()

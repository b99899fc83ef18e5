"""Replicas as an operator runs them: ``tradecast serve`` processes on different ports, on the
embedded model, sharing this machine's Redis and PostgreSQL (a fresh namespace and database
per test)."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from support.net import free_port
from support.serve import serve_env, start_serve, wait_ready
from support.services import TcpProxy, url_via

pytestmark = [pytest.mark.scaleout, pytest.mark.slow]
OPERATOR, VIEWER = "op-key-0123456789", "viewer-key-0123456789"
LEASE_TTL_S = 3.0


class Replica:
    """One ``tradecast serve`` process."""

    def __init__(self, name: str, workdir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"{name}.log"
        full = serve_env(env)
        full.update(
            {
                "TRADECAST_DATA_DIR": str(workdir / name),
                "TRADECAST_LOG_FORMAT": "json",
                "TRADECAST_API_KEYS": f"viewer:{VIEWER},operator:{OPERATOR}",
            }
        )
        self._log = self.log_path.open("w")
        self.process = start_serve(self.port, full, self._log)

    def wait_ready(self, timeout: float = 180) -> dict:
        answer = wait_ready(
            self.process,
            self.base,
            timeout=timeout,
            interval=0.3,
            request_timeout=2,
            tail=self.tail,
            name=self.name,
        )
        return answer.json()

    def readyz(self) -> tuple[int, dict]:
        answer = httpx.get(f"{self.base}/readyz", timeout=5)
        return answer.status_code, answer.json()

    def get(self, path: str, **params: str) -> dict:
        answer = httpx.get(self.base + path, params=params, headers=_auth(OPERATOR), timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def decisions(self) -> list[dict]:
        return self.get("/v1/decisions", limit="100")["items"]

    def tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text()[-chars:]

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._log.close()


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def cluster_env(redis_url, postgres_url, namespace) -> dict[str, str]:
    return {
        "TRADECAST_REDIS_URL": redis_url,
        "TRADECAST_POSTGRES_URL": postgres_url,
        "TRADECAST_CLUSTER__NAMESPACE": namespace,
        "TRADECAST_CLUSTER__LEASE_TTL_S": str(LEASE_TTL_S),
        "TRADECAST_CLUSTER__HEALTH_INTERVAL_S": "0.5",
        "TRADECAST_DESK__SECONDS_PER_TICK": "0",
    }


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[list[Replica]]:
    started: list[Replica] = []
    yield started
    for replica in started:
        replica.stop()


def _sse_events(stream: httpx.Response, until: str, limit: int = 10_000) -> list[dict]:
    """Parse SSE frames until an event named ``until`` (inclusive)."""
    events, current = [], {}
    for line in stream.iter_lines():
        if not line:
            if current.get("event"):
                events.append(current)
                if current["event"] == until or len(events) >= limit:
                    return events
            current = {}
        elif ":" in line and not line.startswith(":"):
            field, value = line.split(":", 1)
            current[field] = value.strip()
    return events


def test_a_tick_through_replica_a_streams_to_a_viewer_on_replica_b(tmp_path, cluster_env, replicas):
    env = {**cluster_env, "TRADECAST_DESK__AUTOSTART": "false"}
    a = Replica("a", tmp_path, env)
    b = Replica("b", tmp_path, env)
    replicas += [a, b]
    a.wait_ready()
    b.wait_ready()
    with (
        httpx.Client(timeout=300) as client,
        client.stream("GET", f"{b.base}/v1/streams/desk", params={"key": VIEWER}) as stream,
    ):
        ticked = client.post(
            f"{a.base}/v1/desk/tick", params={"wait": "true"}, headers=_auth(OPERATOR)
        )
        assert ticked.status_code == 200, ticked.text
        decision_id = ticked.json()["decision"]["id"]
        seen_on_b = _sse_events(stream, until="decision")
    decision = json.loads(seen_on_b[-1]["data"])
    assert decision["data"]["id"] == decision_id
    held = b.get("/v1/streams/desk/latest", limit="100")["items"]
    assert decision_id in [e["data"].get("id") for e in held]
    # a viewer that saw only the first event on B moves to replica A with its id
    with (
        httpx.Client(timeout=60) as client,
        client.stream(
            "GET",
            f"{a.base}/v1/streams/desk",
            params={"key": VIEWER},
            headers={"Last-Event-ID": held[0]["id"]},
        ) as stream,
    ):
        resumed = _sse_events(stream, until="", limit=len(held) - 1)
    assert [e["id"] for e in resumed] == [e["id"] for e in held[1:]], "0 lost, 0 repeated"
    # both replicas read the one store and the one journal
    assert [d["id"] for d in b.decisions()] == [decision_id]
    assert a.get("/v1/portfolio") == b.get("/v1/portfolio")
    # ticks forced through both replicas at once take turns: two consecutive bars, each once
    with ThreadPoolExecutor(2) as pool:
        forced = list(
            pool.map(
                lambda replica: httpx.post(
                    f"{replica.base}/v1/desk/tick",
                    params={"wait": "true"},
                    headers=_auth(OPERATOR),
                    timeout=300,
                ),
                (a, b),
            )
        )
    assert [r.status_code for r in forced] == [200, 200], [r.text for r in forced]
    forced_ids = {r.json()["decision"]["id"] for r in forced}
    assert len(forced_ids) == 2, "both replicas decided the same bar"
    ids = [d["id"] for d in b.decisions()]
    assert len(ids) == len(set(ids)) == 3
    # start and stop through the replica that does not run the loop: the other one obeys
    leader, standby = (a, b) if a.readyz()[1]["leader"] else (b, a)
    assert not standby.readyz()[1]["leader"]
    started = httpx.post(f"{standby.base}/v1/desk/start", headers=_auth(OPERATOR), timeout=30)
    assert started.status_code == 200, started.text
    deadline = time.monotonic() + 240
    while len(leader.decisions()) < 2:
        assert time.monotonic() < deadline, leader.tail()
        time.sleep(1)
    stopped = httpx.post(f"{standby.base}/v1/desk/stop", headers=_auth(OPERATOR), timeout=30)
    assert stopped.status_code == 200, stopped.text
    deadline = time.monotonic() + 120
    while (status := leader.get("/v1/desk/status"))["state"] != "paused" or status["ticking"]:
        assert time.monotonic() < deadline, leader.tail()
        time.sleep(0.5)
    count = len(leader.decisions())
    time.sleep(LEASE_TTL_S * 2)
    assert len(leader.decisions()) == count, "the loop ticked after a pause on another replica"


def test_killing_the_lease_holder_hands_the_loop_over_without_a_double_order(
    tmp_path, cluster_env, replicas, postgres_url
):
    # a low bar for acting, so the small embedded model places orders to check
    cluster_env = {**cluster_env, "TRADECAST_DESK__MIN_CONFIDENCE": "0.05"}
    a = Replica("a", tmp_path, cluster_env)
    replicas.append(a)
    assert a.wait_ready()["leader"] is True, "the first replica up takes the loop"
    b = Replica("b", tmp_path, cluster_env)
    replicas.append(b)
    assert b.wait_ready()["leader"] is False, "exactly one replica runs the loop"
    deadline = time.monotonic() + 240
    while len(a.decisions()) < 2:
        assert time.monotonic() < deadline, a.tail()
        time.sleep(1)
    before = {d["id"] for d in b.decisions()}
    a.kill()  # kill -9: no lease release, maybe a tick cut short
    killed_at = time.monotonic()
    while not b.readyz()[1]["leader"]:
        assert time.monotonic() - killed_at < LEASE_TTL_S + 3, b.tail()
        time.sleep(0.1)
    handover_s = time.monotonic() - killed_at
    assert handover_s <= LEASE_TTL_S + 2
    while not ({d["id"] for d in b.decisions()} - before):
        assert time.monotonic() - killed_at < 240, b.tail()
        time.sleep(1)
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            "SELECT kind, data FROM broker_events WHERE account = 'paper' ORDER BY seq"
        ).fetchall()
    orders = [json.loads(data)["order"] for kind, data in rows if kind == "order"]
    client_ids = [o["client_order_id"] for o in orders]
    assert len(client_ids) == len(set(client_ids)), "an order was placed twice"
    fills = [json.loads(data)["fill"]["order_id"] for kind, data in rows if kind == "fill"]
    assert len(fills) == len(set(fills)), "an order filled twice"
    opened = [kind for kind, _ in rows if kind == "opened"]
    assert len(opened) == 1
    times = sorted(datetime.fromisoformat(d["decision"]["decided_at"]) for d in b.decisions())
    steps = {later - earlier for earlier, later in itertools.pairwise(times)}
    assert steps == {timedelta(hours=1)}, f"the loop skipped or repeated a moment: {times}"
    print(f"handover in {handover_s:.2f}s; {len(orders)} orders, {len(times)} decisions")


def test_redis_or_postgres_down_fails_readiness_stops_trading_and_recovers(
    tmp_path, cluster_env, replicas, redis_url, postgres_url
):
    redis_proxy = TcpProxy(int(redis_url.rsplit(":", 1)[1].split("/")[0]))
    pg_proxy = TcpProxy(5432)
    redis_proxy.start()
    pg_proxy.start()
    env = {
        **cluster_env,
        "TRADECAST_REDIS_URL": url_via(redis_url, redis_proxy),
        "TRADECAST_POSTGRES_URL": url_via(postgres_url, pg_proxy),
    }
    try:
        a = Replica("a", tmp_path, env)
        replicas.append(a)
        a.wait_ready()
        for proxy, name in ((redis_proxy, "redis"), (pg_proxy, "postgres")):
            proxy.stop()
            deadline = time.monotonic() + 10
            while (status := a.readyz())[0] == 200:
                assert time.monotonic() < deadline, a.tail()
                time.sleep(0.2)
            assert status[0] == 503 and name in status[1]["problems"], status
            assert status[1]["state"] == "degraded"
            time.sleep(3)  # a tick already running may finish; then nothing more
            during = len(_decisions_direct(postgres_url))
            time.sleep(LEASE_TTL_S + 3)
            assert len(_decisions_direct(postgres_url)) <= during + 1
            proxy.start()
            deadline = time.monotonic() + 30
            while a.readyz()[0] != 200:
                assert time.monotonic() < deadline, a.tail()
                time.sleep(0.2)
        log = a.log_path.read_text()
        assert '"health.dependency_down"' in log and '"health.dependency_recovered"' in log
        count = len(_decisions_direct(postgres_url))
        deadline = time.monotonic() + 120
        while len(_decisions_direct(postgres_url)) <= count:
            assert time.monotonic() < deadline, "the desk did not trade again:\n" + a.tail()
            time.sleep(1)
    finally:
        redis_proxy.stop()
        pg_proxy.stop()


def _decisions_direct(postgres_url: str) -> list[str]:
    with psycopg.connect(postgres_url) as conn:
        return [row[0] for row in conn.execute("SELECT decision_id FROM decisions").fetchall()]


def test_two_replicas_share_one_keys_rate_limit(tmp_path, cluster_env, replicas):
    """The control routes' bucket is in Redis: across both replicas, exactly ``burst``
    requests of one key are allowed (the rate refills nothing during the test)."""
    burst = 5
    env = {
        **cluster_env,
        "TRADECAST_DESK__AUTOSTART": "false",
        "TRADECAST_API__CONTROL_BURST": str(burst),
        "TRADECAST_API__CONTROL_RATE_PER_MINUTE": "0.001",
    }
    a, b = Replica("a", tmp_path, env), Replica("b", tmp_path, env)
    replicas += [a, b]
    a.wait_ready()
    b.wait_ready()
    statuses = []
    for replica in itertools.islice(itertools.cycle([a, b]), 4 * burst):
        answer = httpx.post(f"{replica.base}/v1/desk/stop", headers=_auth(OPERATOR), timeout=30)
        statuses.append((replica.name, answer.status_code))
        if answer.status_code == 429:
            assert int(answer.headers["Retry-After"]) > 60, answer.headers
    allowed = [name for name, status in statuses if status == 200]
    assert len(allowed) == burst, statuses
    assert {"a", "b"} <= set(allowed), "both replicas served part of the one bucket"
    assert all(status in (200, 429) for _, status in statuses), statuses

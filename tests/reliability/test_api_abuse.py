"""API abuse against the real app served by uvicorn: schemathesis generates requests from the
app's own OpenAPI schema (0 server errors), and hand-made abuse (oversized bodies, malformed
JSON, bad keys, too low a role, a burst past the rate limit) is answered with 4xx."""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, seed, settings

from support.api import memory, scripted_models
from support.reliability import ADMIN, KEYS, OPERATOR, VIEWER, auth, record
from tradecast.api.app import create_app
from tradecast.settings import load_settings

pytestmark = pytest.mark.reliability
START = "2021-01-05T12:00:00Z"
# endless streams cannot be answered by a finite response; everything else is fuzzed
ENDLESS = r"^/v1/streams/\{channel\}$"
FIXED_SEED = 20261203
RANDOM_SEED = int(os.environ.get("FUZZ_SEED") or random.SystemRandom().randrange(2**32))


@pytest.fixture
def served(tmp_path, embedder) -> Iterator[str]:
    """The app (scripted models at the edge) on a real uvicorn in a thread."""
    app_settings = load_settings(
        data_dir=tmp_path / "data",
        api={"api_keys": KEYS, "control_burst": 10, "control_rate_per_minute": 60},
        desk={"autostart": False, "seconds_per_tick": 0, "replay_from": START, "memory_k": 0},
        voice={"backend": "off"},
    )
    app = create_app(app_settings, models=scripted_models(), memory=memory(embedder))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    while not (server.started and httpx.get(f"{base}/readyz").status_code == 200):
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.05)
    yield base
    server.should_exit = True
    thread.join(30)
    sock.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    "fuzz_seed", [FIXED_SEED, RANDOM_SEED], ids=["fixed-seed", f"random-seed-{RANDOM_SEED}"]
)
def test_schemathesis_finds_no_server_error(served, fuzz_seed: int):
    """The fixed seed repeats what earlier runs checked; the random one (in the test's id, and
    printed) explores further each run: rerun a failure with FUZZ_SEED=<seed>."""
    print(f"schemathesis seed: {fuzz_seed}")
    schema = schemathesis.openapi.from_url(f"{served}/openapi.json").exclude(path_regex=ENDLESS)
    statuses: Counter[int] = Counter()
    per_operation: Counter[str] = Counter()
    server_errors: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]

    def fuzz(operation, headers: dict[str, str]) -> None:
        @seed(fuzz_seed)
        @given(case=operation.as_strategy())
        @settings(
            max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def call(case) -> None:
            response = case.call(base_url=served, headers=headers, timeout=30)
            statuses[response.status_code] += 1
            per_operation[operation.label] += 1
            if response.status_code >= 500:
                server_errors.append(f"{case.method} {case.formatted_path}: {response.text}")

        call()

    for operation in operations:
        for key in (ADMIN, VIEWER, None):
            fuzz(operation, auth(key) if key else {})
    assert server_errors == [], f"seed {fuzz_seed}"
    unauthenticated = statuses[401]
    assert unauthenticated > 0 and statuses[403] > 0
    record(
        "api_abuse",
        "schemathesis" if fuzz_seed == FIXED_SEED else "schemathesis_random_seed",
        seed=fuzz_seed,
        operations=len(operations),
        requests=sum(statuses.values()),
        server_errors=len(server_errors),
        status_counts=dict(sorted(statuses.items())),
    )


def test_oversized_malformed_unauthorised_and_rate_limited_requests_get_4xx(served):
    answers: Counter[str] = Counter()
    with httpx.Client(base_url=served, timeout=60) as client:
        # oversized bodies
        huge = {"message": "x" * 5_000_000, "thread_id": "abuse"}
        response = client.post("/v1/chat", json=huge, headers=auth(OPERATOR))
        assert 400 <= response.status_code < 500, response.status_code
        answers[f"oversized:{response.status_code}"] += 1
        response = client.put(
            "/v1/risk/limits",
            content=b'{"max_position_pct": "' + b"9" * 2_000_000 + b'"}',
            headers={**auth(ADMIN), "content-type": "application/json"},
        )
        assert 400 <= response.status_code < 500
        answers[f"oversized:{response.status_code}"] += 1
        # malformed JSON and wrong types
        for body in (b"{", b"[]", b'{"message": 5}', b"\xff\xfe", b'{"approved": "maybe"}'):
            for path in ("/v1/chat", "/v1/approvals/X-20210105T1200"):
                response = client.post(
                    path,
                    content=body,
                    headers={**auth(OPERATOR), "content-type": "application/json"},
                )
                assert 400 <= response.status_code < 500, (path, body, response.text)
                assert "error" in response.json()
                answers[f"malformed:{response.status_code}"] += 1
        # bad keys and too low a role
        for headers in (
            {},
            {"Authorization": "Bearer nope-nope-nope"},
            {"Authorization": "Basic dXNlcjpwYXNz"},
            {"X-Api-Key": "' OR 1=1 --"},
        ):
            response = client.get("/v1/portfolio", headers=headers)
            assert response.status_code == 401
            answers["bad_key:401"] += 1
        response = client.post("/v1/desk/tick", headers=auth(VIEWER))
        assert response.status_code == 403
        answers["viewer_on_control:403"] += 1
        response = client.put(
            "/v1/risk/limits", json={"max_position_pct": "0.5"}, headers=auth(OPERATOR)
        )
        assert response.status_code == 403
        answers["operator_on_admin:403"] += 1
        response = client.get(
            "/v1/portfolio", params={"key": ADMIN}, headers={}
        )  # ?key= is for viewer reads: an admin key there still only reads
        assert response.status_code in (200, 401)
        # a burst past the rate limit (burst 10 per key)
        statuses = Counter(
            client.post("/v1/desk/stop", headers=auth(OPERATOR)).status_code for _ in range(30)
        )
        assert statuses[429] >= 30 - 10 - 1 and statuses[200] <= 11, statuses
        limited = client.post("/v1/desk/stop", headers=auth(OPERATOR))
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        # another key has its own bucket
        assert client.post("/v1/desk/stop", headers=auth(ADMIN)).status_code == 200
        answers["burst_allowed"] = statuses[200]
        answers["burst_429"] = statuses[429]
        # and the server is still fine
        assert client.get("/healthz").status_code == 200
    record("api_abuse", "hand_made_abuse", **dict(answers))

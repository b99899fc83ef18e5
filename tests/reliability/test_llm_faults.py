"""LLM faults: timeouts, garbage, empty answers, 500s, resets and a server that dies in the
middle of a streamed answer become explained abstentions; the desk keeps running; the circuit
breaker stops hammering a dead server and lets it back in when it recovers.

Every model here is made by the real factory (``create_chat_model``, Ollama backend, with its
breaker) and talks HTTP to a fake Ollama server that speaks Ollama's real NDJSON wire format.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import chromadb
import httpx
import pytest
from fake_ollama import FakeOllama, Role, good_answer

from support.reliability import OPERATOR, START, VIEWER, Serve, ollama_models, record
from tradecast.bootstrap import DeskRuntime, open_desk
from tradecast.domain import StreamEvent
from tradecast.memory.chroma import ChromaDecisionMemory, chroma_settings
from tradecast.settings import load_settings

pytestmark = pytest.mark.reliability

T0 = datetime.fromisoformat(START)
EXPECTED_KIND = {
    "garbage": "unparseable",
    "empty": "unparseable",
    "hang": "timeout",
    "die": "unreachable",
    "error500": "backend",
    "reset": "unreachable",
}
REPEATS = 3


@asynccontextmanager
async def ollama_desk(
    tmp_path, embedder, url: str, events: list[StreamEvent], **llm
) -> AsyncIterator[DeskRuntime]:
    settings = load_settings(data_dir=tmp_path / "data", desk={"memory_k": 0})
    client = chromadb.EphemeralClient(settings=chroma_settings())
    memory = ChromaDecisionMemory(client, embedder, collection=f"rel-{uuid.uuid4().hex[:12]}")

    async def sink(event: StreamEvent) -> None:
        events.append(event)

    models = ollama_models(url, **llm)
    async with open_desk(settings, sink=sink, models=models, memory=memory) as runtime:
        yield runtime


def _by_agent(result) -> dict[str, list]:
    out: dict[str, list] = {}
    for call in result.llm.by_agent:
        out.setdefault(call.agent, []).append(call)
    return out


def _persona_integrity(events: list[StreamEvent], decision_id: str) -> None:
    """Every token on the persona stream belongs to a sentence that was emitted whole."""
    mine = [
        e for e in events if e.channel == "persona" and e.data.get("decision_id") == decision_id
    ]
    tokens = "".join(e.data["text"] for e in mine if e.event == "token")
    sentences = " ".join(e.data["text"] for e in mine if e.event == "sentence")
    assert sentences, "the persona said nothing"
    assert " ".join(tokens.split()) == " ".join(sentences.split())


@pytest.mark.slow
async def test_every_llm_fault_becomes_an_explained_abstention_and_the_desk_keeps_running(
    fake_ollama: FakeOllama, embedder, tmp_path
):
    fault: dict[str, str | None] = {"now": None}
    fake_ollama.plan = lambda role, n: fault["now"] or "ok"
    fake_ollama.hang_s = 2.0
    events: list[StreamEvent] = []
    faulty_ticks = abstentions = healthy_after = 0
    # breaker out of the way here: each fault must be handled on its own merits
    async with ollama_desk(
        tmp_path, embedder, fake_ollama.url, events, timeout_s=0.5, breaker_threshold=10_000
    ) as desk:
        at = T0
        for kind, expected in EXPECTED_KIND.items():
            for _ in range(REPEATS):
                fault["now"] = kind
                at += timedelta(hours=1)
                result = await desk.runner.tick("BTC/USDT", at)
                faulty_ticks += 1
                assert result.status == "completed"
                agents = _by_agent(result)
                for agent in ("analyst", "risk", "trader"):
                    failed = [c for c in agents[agent] if not c.ok]
                    assert failed, f"{kind}: {agent} did not fail"
                    assert failed[-1].error.startswith(expected), (kind, failed[-1].error)
                attribution = {a.agent: a for a in result.decision.attribution}
                for agent in ("analyst", "trader", "risk"):
                    assert attribution[agent].abstained, (kind, agent)
                    assert attribution[agent].note.startswith(expected)
                    abstentions += 1
                assert attribution["rules"].abstained is False
                # the persona falls back to a sentence grounded by construction
                assert result.persona.text
                _persona_integrity(events, result.decision.id)
                # the very next tick on a healthy server is a normal, fully voted tick
                fault["now"] = None
                at += timedelta(hours=1)
                healthy = await desk.runner.tick("BTC/USDT", at)
                assert healthy.llm.failed == 0 and healthy.llm.calls == 5
                assert not any(a.abstained for a in healthy.decision.attribution)
                healthy_after += 1
    record(
        "llm_faults",
        "explained_abstentions",
        fault_kinds=len(EXPECTED_KIND),
        repeats_per_kind=REPEATS,
        faulty_ticks=faulty_ticks,
        agent_abstentions_explained=abstentions,
        healthy_ticks_after_a_fault=healthy_after,
        requests_served=len(fake_ollama.seen),
    )


async def test_persona_stream_cut_mid_answer_leaks_no_half_sentence(
    fake_ollama: FakeOllama, embedder, tmp_path
):
    """The persona's stream is cut halfway through: what reached the stream is whole
    sentences only, and the tick completes with a grounded fallback."""

    def plan(role: Role, n: int) -> str:
        return "die" if role == "persona" else "ok"

    fake_ollama.plan = plan
    fake_ollama.answer = lambda role: (
        "Candles never lie. Risk first and vibes second, always and forever and ever more."
        if role == "persona"
        else good_answer(role)
    )
    events: list[StreamEvent] = []
    ticks = 10
    async with ollama_desk(tmp_path, embedder, fake_ollama.url, events, timeout_s=2) as desk:
        for i in range(ticks):
            result = await desk.runner.tick("BTC/USDT", T0 + timedelta(hours=i + 1))
            persona = _by_agent(result)["persona"][0]
            assert not persona.ok and persona.error.startswith("unreachable")
            _persona_integrity(events, result.decision.id)
            said = result.persona.text
            assert "vibes" not in said  # the cut sentence never reached anyone
    record("llm_faults", "persona_stream_dies_mid_answer", ticks=ticks, half_sentences_leaked=0)


async def test_circuit_breaker_stops_hammering_and_recovers(
    fake_ollama: FakeOllama, embedder, tmp_path
):
    state = {"mode": "error500"}
    fake_ollama.plan = lambda role, n: state["mode"]
    events: list[StreamEvent] = []
    cooldown = 1.0
    async with ollama_desk(
        tmp_path,
        embedder,
        fake_ollama.url,
        events,
        timeout_s=1,
        breaker_threshold=3,
        breaker_cooldown_s=cooldown,
    ) as desk:
        # the factory hands every role on this server the same breaker
        models = ollama_models(fake_ollama.url, breaker_threshold=3, breaker_cooldown_s=cooldown)
        breaker = models["analyst"].breaker
        assert breaker is models["persona"].breaker
        # the breaker's clock is the test's: a slow machine must not end the cool-down early
        now = [0.0]
        breaker.store._clock = lambda: now[0]  # type: ignore[attr-defined]
        at = T0
        attempted = 0
        for _ in range(6):  # a failing server, ticks back to back
            at += timedelta(hours=1)
            result = await desk.runner.tick("BTC/USDT", at)
            attempted += result.llm.calls
            assert result.status == "completed"
        reached = len(fake_ollama.seen)
        # 3 failures open it; nothing more reaches the server within the cool-down
        assert reached == 3, reached
        assert breaker.state == "open"
        last = result.llm.by_agent
        assert all("circuit open" in c.error for c in last)
        # refused at once, never waiting out the 1 s timeout (a loaded machine adds ms)
        assert all(c.latency_ms < 500 for c in last)
        # after the cool-down: exactly one trial call; it fails, so the breaker opens again
        now[0] += cooldown + 0.05
        at += timedelta(hours=1)
        await desk.runner.tick("BTC/USDT", at)
        assert len(fake_ollama.seen) == reached + 1
        # nothing is listening at all now: still no waiting on it
        fake_ollama.stop()
        for _ in range(3):
            at += timedelta(hours=1)
            result = await desk.runner.tick("BTC/USDT", at)
            assert all(c.latency_ms < 50 for c in result.llm.by_agent)
        # the server comes back: one trial succeeds and closes the breaker
        state["mode"] = "ok"
        fake_ollama.start()
        now[0] += cooldown + 0.05
        at += timedelta(hours=1)
        result = await desk.runner.tick("BTC/USDT", at)
        assert breaker.state == "closed"
        at += timedelta(hours=1)
        result = await desk.runner.tick("BTC/USDT", at)
        assert result.llm.failed == 0 and result.llm.calls == 5
    record(
        "llm_faults",
        "circuit_breaker",
        ticks_against_failing_server=6,
        calls_attempted_by_agents=attempted,
        requests_that_reached_server=reached,
        trial_requests_after_cooldown=1,
        recovered=True,
    )


@pytest.mark.slow
def test_serve_keeps_ticking_through_a_dead_ollama_and_recovers(fake_ollama, tmp_path):
    """`tradecast serve` on a fake Ollama that fails, then vanishes, then comes back."""
    state = {"mode": "ok"}
    fake_ollama.plan = lambda role, n: state["mode"]
    server = Serve.configure(
        tmp_path,
        fake_ollama.url,
        DESK__SECONDS_PER_TICK="0.2",
        LLM__TIMEOUT_S="1",
        LLM__BREAKER_THRESHOLD="3",
        LLM__BREAKER_COOLDOWN_S="2",
    )
    server.start()
    try:
        with server.client(VIEWER) as viewer, server.client(OPERATOR) as ops:

            def decisions() -> list[dict]:
                return ops.get("/v1/decisions", params={"limit": 200}).json()["items"]

            def wait_for(count: int, timeout: float = 60) -> list[dict]:
                deadline = time.monotonic() + timeout
                while len(items := decisions()) < count:
                    assert time.monotonic() < deadline, server.tail()
                    time.sleep(0.2)
                return items

            healthy = wait_for(3)
            assert all(d["llm"]["failed"] == 0 for d in healthy)
            # the server fails every call for 6 s, then nobody listens for 4 s
            state["mode"] = "error500"
            before = {d["thread_id"] for d in decisions()}
            seen_before = len(fake_ollama.seen)
            started = time.monotonic()
            time.sleep(6)
            fake_ollama.stop()
            time.sleep(4)
            dead_window = time.monotonic() - started
            reached = len(fake_ollama.seen) - seen_before
            during = [d for d in decisions() if d["thread_id"] not in before]
            assert len(during) >= 10, len(during)  # the desk kept ticking
            readyz = httpx.get(f"{server.base}/readyz").status_code
            assert readyz == 200
            attempted = sum(d["llm"]["calls"] for d in during)
            reasons = [c["error"] for d in during for c in d["llm"]["by_agent"] if not c["ok"]]
            assert len(reasons) == attempted  # every call failed, each with its reason
            failed_fast = sum("circuit open" in r for r in reasons)
            # the rest reached the failing server, or were trials refused once it was gone
            assert attempted - failed_fast <= reached + 4 / 2 + 1
            # at most: 3 to open + one trial per cool-down (2 s) while failing
            assert reached <= 3 + 6 / 2 + 1, reached
            status = viewer.get("/v1/desk/status").json()
            assert status["state"] == "running"
            # it comes back
            state["mode"] = "ok"
            fake_ollama.start()
            deadline = time.monotonic() + 30
            while True:
                latest = decisions()[0]
                if latest["llm"]["failed"] == 0:
                    break
                assert time.monotonic() < deadline, server.tail()
                time.sleep(0.3)
    finally:
        server.stop()
    record(
        "llm_faults",
        "serve_dead_ollama_e2e",
        dead_window_s=round(dead_window, 1),
        ticks_while_dead=len(during),
        llm_calls_attempted_while_dead=attempted,
        calls_failed_fast_by_breaker=failed_fast,
        requests_that_reached_the_failing_server=reached,
        recovered=True,
        readyz_while_dead=readyz,
    )

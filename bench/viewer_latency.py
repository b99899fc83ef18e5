"""Viewer latency: from a viewer's question handed in to the persona's first answer token on
the persona stream, and to the whole answer (``viewer_answer``), on the embedded model in the
real app.

The app runs on the embedded defaults (SmolLM2-135M on llama.cpp, MiniLM memory) with the
desk loop paused, the voice off (``--voice`` turns it on) and a budget of 60 answers a minute,
so the rate limit never holds a question back. One forced tick first gives the desk a
decision to talk about (and warms the model up). Then the questions, one after another: each
is handed in through ``POST /v1/viewers/chat`` (operator key, httpx's ASGI transport: the
same route, auth and moderation as a real request, without a socket) by a viewer of its own,
and the next is sent once ``viewer_answer`` of the previous one is out. Events are timed in
process as they are published (the SSE hop adds ~1 ms, see bench/persona_latency.py).

Run: .venv/bin/python bench/viewer_latency.py [--questions 30] [--warmup 1] [--voice]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from tradecast.agents.viewer_answer import intent_of, topic_of
from tradecast.api.app import create_app
from tradecast.domain import StreamEvent
from tradecast.llm.factory import model_label
from tradecast.logs import configure_logging
from tradecast.settings import load_settings

KEYS = "viewer:bench-view-1,operator:bench-ops-1,admin:bench-admin-1"
OPERATOR = {"Authorization": "Bearer bench-ops-1"}
WAIT_FOR_ANSWER_S = 120.0
TARGET_FIRST_TOKEN_P95_S = 3.0

# What viewers ask a trading stream's desk: price, why, position, limits, P&L, greetings.
# None asks for advice or for an action (those get a fixed refusal without a model call).
QUESTIONS = (
    "hi! what is the desk doing right now?",
    "what price did the bot trade at?",
    "why did it do that?",
    "what's the current position?",
    "what are the risk limits?",
    "how much is the desk up or down today?",
    "hello from Brazil, first stream for me",
    "what's the P&L so far?",
    "how confident was the last decision?",
    "why hold instead of trading?",
    "what's the max position size?",
    "what did the analyst think?",
    "gm chat, gm desk",
    "is the bot running right now?",
    "what's the daily loss limit?",
    "how much equity does the desk have?",
    "what did the rules vote?",
    "what is this stream about?",
    "what was the last decision?",
    "how much BTC is it holding?",
    "why did the agents disagree?",
    "what's bitcoin trading at?",
    "love the stream! how is the desk doing?",
    "is there a stop loss?",
    "did the last order fill?",
    "explain the last decision please",
    "which pair does the desk trade?",
    "how many agents vote on a trade?",
    "any profit today?",
    "what's the drawdown limit?",
)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


class Timings:
    """When each viewer message's first answer token and its ``viewer_answer`` were published."""

    def __init__(self) -> None:
        self.first_token: dict[str, float] = {}
        self.answered: dict[str, float] = {}
        self.answers: dict[str, dict[str, Any]] = {}
        self.sentences: Counter[str] = Counter()
        self.done = asyncio.Event()

    def __call__(self, event: StreamEvent) -> None:
        now = time.perf_counter()
        message_id = event.data.get("viewer_message_id")
        if event.channel != "persona" or message_id is None:
            return
        if event.event == "token":
            self.first_token.setdefault(message_id, now)
        elif event.event == "sentence":
            self.sentences[message_id] += 1
        elif event.event == "viewer_answer":
            self.answered[message_id] = now
            self.answers[message_id] = event.data
            self.done.set()


async def ask(
    client: httpx.AsyncClient, timings: Timings, n: int, text: str
) -> dict[str, Any] | None:
    """Hand in one question and wait for its answer; the row of timings (None: rejected)."""
    timings.done.clear()
    submitted = time.perf_counter()
    response = await client.post(
        "/v1/viewers/chat",
        headers=OPERATOR,
        json={"display_name": f"viewer{n:02d}", "viewer_id": f"bench-viewer-{n}", "text": text},
    )
    response.raise_for_status()
    verdict = response.json()
    accepted_ms = (time.perf_counter() - submitted) * 1000
    if verdict["verdict"] != "queued":
        print(f"  question {n} {verdict['verdict']}: {verdict['reason']} ({text!r})")
        return None
    message_id = verdict["id"]
    async with asyncio.timeout(WAIT_FOR_ANSWER_S):
        while message_id not in timings.answered:
            await timings.done.wait()
            timings.done.clear()
    answer = timings.answers[message_id]
    first_token = timings.first_token.get(message_id)
    return {
        "n": n,
        "question": text,
        "topic": topic_of(text),
        "intent": answer["intent"],
        "accepted_ms": accepted_ms,
        "first_token_s": None if first_token is None else first_token - submitted,
        "answer_s": timings.answered[message_id] - submitted,
        "sentences": timings.sentences[message_id],
        "text": answer["text"],
    }


async def run(questions: list[str], warmup: int, voice: bool, data_dir: Path) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "data_dir": data_dir,
        "api": {"api_keys": KEYS, "control_rate_per_minute": 6000, "control_burst": 100},
        "desk": {"autostart": False, "seconds_per_tick": 0, "memory_k": 0},
        "viewers": {"answers_per_minute": 60, "per_channel_messages": 10_000},
    }
    if not voice:
        overrides["voice"] = {"backend": "off"}
    app = create_app(load_settings(**overrides))
    timings = Timings()
    rows: list[dict[str, Any]] = []
    warm: list[dict[str, Any]] = []
    async with app.router.lifespan_context(app):
        ctx = await app.state.opener.wait_open(300)
        ctx.publisher.watch(timings)
        tick = await ctx.desk.force_tick("bench")
        decision = ctx.desk.recent_decisions(1)[0]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            texts = [*questions[:warmup], *questions]
            for n, text in enumerate(texts):
                row = await ask(client, timings, n, text)
                if row is not None:
                    (warm if n < warmup else rows).append(row)
        assert ctx.audience is not None
        model = model_label(ctx.audience.model)
    return {
        "rows": rows,
        "warmup": warm,
        "model": model,
        "decision": {k: decision[k] for k in ("action", "quantity", "price", "executed")},
        "tick_decision_id": tick.decision_id,
    }


def spread(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 3),
        "p95": round(percentile(values, 95), 3),
        "max": round(max(values), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument(
        "--warmup", type=int, default=1, help="questions asked first and not counted"
    )
    parser.add_argument("--voice", action="store_true", help="the embedded voice speaks too")
    parser.add_argument("--verbose", action="store_true", help="print every question and answer")
    args = parser.parse_args()
    configure_logging("warning", "console")
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.questions)]
    not_questions = [q for q in QUESTIONS if intent_of(q) != "question"]
    assert not not_questions, f"these would be refused without a model call: {not_questions}"
    load_before = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        figures = asyncio.run(run(questions, args.warmup, args.voice, Path(scratch) / "data"))
    wall_s = time.perf_counter() - started
    load_after = os.getloadavg()
    rows: list[dict[str, Any]] = figures["rows"]
    answered = [r for r in rows if r["first_token_s"] is not None]
    first_token = [r["first_token_s"] for r in answered]
    answer = [r["answer_s"] for r in answered]
    result = {
        "model": figures["model"],
        "voice": args.voice,
        "questions": len(rows),
        "answered_with_tokens": len(answered),
        "question_to_first_token_s": spread(first_token),
        "question_to_viewer_answer_s": spread(answer),
        "first_token_to_viewer_answer_s": spread(
            [r["answer_s"] - r["first_token_s"] for r in answered]
        ),
        "post_accepted_ms_p50": round(statistics.median(r["accepted_ms"] for r in rows), 2),
        "sentences_per_answer": round(statistics.mean(r["sentences"] for r in rows), 2),
        "intents": dict(Counter(r["intent"] for r in rows)),
        "warmup_first_token_s": [round(r["first_token_s"] or 0, 3) for r in figures["warmup"]],
        "decision": figures["decision"],
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "wall_s": round(wall_s, 1),
        "target_first_token_p95_s": TARGET_FIRST_TOKEN_P95_S,
        "met": bool(first_token) and percentile(first_token, 95) <= TARGET_FIRST_TOKEN_P95_S,
    }
    if args.verbose:
        for r in rows:
            print(
                f"  {r['n']:3} {r['topic']:8} {r['first_token_s']:6.2f} s {r['answer_s']:6.2f} s "
                f"{r['question']!r} -> {r['text']!r}"
            )
    print(
        f"viewer latency over {len(rows)} questions ({figures['model']}, voice "
        f"{'on' if args.voice else 'off'}; load {load_before[0]:.2f} -> {load_after[0]:.2f}):"
    )
    for name in (
        "question_to_first_token_s",
        "question_to_viewer_answer_s",
        "first_token_to_viewer_answer_s",
    ):
        s = result[name]
        print(f"  {name:32} p50 {s['p50']:6.2f} s   p95 {s['p95']:6.2f} s   max {s['max']:6.2f} s")
    verdict = "met" if result["met"] else "not met"
    target = TARGET_FIRST_TOKEN_P95_S
    print(f"  target: question to first answer token p95 <= {target} s, {verdict}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

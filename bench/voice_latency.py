"""Voice latency: from a committed decision to its first spoken line's audio being available
to the overlay (the WAV is on disk when the ``speech`` event is published), on the embedded
model and the embedded voice, in the real app.

"Committed" is as in bench/persona_latency.py: the tick's last desk event before the persona
speaks (``decision``, ``risk_rejection``, ``order`` or ``fill``: the execute node is done).
Also split: committed -> first checked sentence (the persona's model), and first sentence ->
its speech event (the voice: synthesis, encoding, storing). Events are timed as they are
published, in process (the SSE hop to a client adds about 1 ms, see persona_latency).

Run: .venv/bin/python bench/voice_latency.py [--ticks 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from tradecast.api.app import create_app
from tradecast.domain import StreamEvent
from tradecast.logs import configure_logging
from tradecast.settings import load_settings

KEYS = "viewer:bench-view-1,operator:bench-ops-1,admin:bench-admin-1"
WAIT_FOR_SPEECH_S = 60.0


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


COMMITTED = {"decision", "risk_rejection", "order", "fill"}


class Timings:
    """When each decision was committed, and its first sentence and speech published."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, float]] = defaultdict(dict)
        self.spoken = asyncio.Event()
        self.audio_s: list[float] = []
        self.skipped = 0
        self._last_committed = 0.0

    def __call__(self, event: StreamEvent) -> None:
        now = time.perf_counter()
        if event.channel == "desk" and event.event in COMMITTED:
            self._last_committed = now
            return
        decision = str(event.data.get("decision_id"))
        if event.event == "sentence":
            if "sentence" not in self.seen[decision]:
                self.seen[decision]["decision"] = self._last_committed
            self.seen[decision].setdefault("sentence", now)
        elif event.event in ("speech", "speech_skipped"):
            self.seen[decision].setdefault(event.event, now)
            self.skipped += event.event == "speech_skipped"
            if event.event == "speech":
                self.audio_s.append(float(event.data["duration_s"]))
            self.spoken.set()


async def run(ticks: int, data_dir: Path) -> dict[str, object]:
    settings = load_settings(
        data_dir=data_dir,
        api={"api_keys": KEYS},
        desk={"autostart": False, "seconds_per_tick": 0, "memory_k": 0},
    )
    app = create_app(settings)
    timings = Timings()
    async with app.router.lifespan_context(app):
        ctx = await app.state.opener.wait_open(300)
        ctx.publisher.watch(timings)
        for n in range(ticks + 1):  # the first warms the model and the voice up
            timings.spoken.clear()
            result = await ctx.desk.force_tick("bench")
            decision = result.decision_id
            async with asyncio.timeout(WAIT_FOR_SPEECH_S):
                while "speech" not in timings.seen[decision]:
                    await timings.spoken.wait()
                    timings.spoken.clear()
            if n == 0:
                timings.seen.pop(decision)
                timings.audio_s.clear()
    return {"seen": timings.seen, "audio_s": timings.audio_s, "skipped": timings.skipped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=30)
    args = parser.parse_args()
    configure_logging("warning", "console")
    with tempfile.TemporaryDirectory() as scratch:
        figures = asyncio.run(run(args.ticks, Path(scratch) / "data"))
    seen = figures["seen"]
    assert isinstance(seen, dict)
    rows = [t for t in seen.values() if {"decision", "sentence", "speech"} <= set(t)]
    to_audio = [(t["speech"] - t["decision"]) * 1000 for t in rows]
    to_sentence = [(t["sentence"] - t["decision"]) * 1000 for t in rows]
    voice = [(t["speech"] - t["sentence"]) * 1000 for t in rows]
    result = {
        "ticks": len(rows),
        "committed_to_first_audio_ms": {
            "p50": round(statistics.median(to_audio)),
            "p95": round(percentile(to_audio, 95)),
        },
        "committed_to_first_sentence_ms": {
            "p50": round(statistics.median(to_sentence)),
            "p95": round(percentile(to_sentence, 95)),
        },
        "first_sentence_to_audio_ms": {
            "p50": round(statistics.median(voice)),
            "p95": round(percentile(voice, 95)),
        },
        "spoken_lines": len(figures["audio_s"]),  # type: ignore[arg-type]
        "lines_skipped": figures["skipped"],
    }
    print(f"voice latency over {len(rows)} ticks (embedded model and voice):")
    for name in (
        "committed_to_first_audio_ms",
        "committed_to_first_sentence_ms",
        "first_sentence_to_audio_ms",
    ):
        spread = result[name]
        assert isinstance(spread, dict)
        print(f"  {name:32} p50 {spread['p50']:6} ms   p95 {spread['p95']:6} ms")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

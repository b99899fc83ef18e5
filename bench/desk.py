"""Desk tick latency: framework overhead with a zero-latency scripted model, and the full tick
on the embedded model, with LLM calls and tokens per decision.

Run: .venv/bin/python bench/desk.py [--ticks N] [--embedded-ticks M]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.scripted_model import NO_TOOL, ScriptedChatModel, analyst, risk, trader
from tradecast.bootstrap import build_embedder, open_desk
from tradecast.logs import configure_logging
from tradecast.memory.chroma import ChromaDecisionMemory, persistent_client
from tradecast.memory.embedding_cache import PersistentEmbeddingCache
from tradecast.memory.embeddings import Embedder
from tradecast.settings import load_settings

START = datetime(2021, 1, 4, tzinfo=UTC)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def scripted_models() -> dict[str, Any]:
    return {
        "analyst": ScriptedChatModel(script=[analyst("BUY", 0.6)]),
        "risk": ScriptedChatModel(script=[risk("shrink", 0.5)]),
        "trader": ScriptedChatModel(script=[NO_TOOL, trader("BUY", 0.5, 0.6)]),
        "persona": ScriptedChatModel(script=["Candles don't lie! Risk first, vibes second."]),
    }


async def run_ticks(
    models: dict[str, Any] | None, ticks: int, data_dir: Path, embedder: Embedder | None = None
) -> dict[str, Any]:
    settings = load_settings(data_dir=data_dir)
    memory = None
    if embedder is not None:
        memory = ChromaDecisionMemory(persistent_client(data_dir / "memory"), embedder)
    totals: list[float] = []
    nodes: dict[str, list[float]] = defaultdict(list)
    calls: list[int] = []
    tokens: list[int] = []
    async with open_desk(settings, models=models, memory=memory) as desk:
        await desk.runner.tick("BTC/USDT", START - timedelta(hours=1))  # warm up
        for i in range(ticks):
            started = time.perf_counter()
            result = await desk.runner.tick("BTC/USDT", START + timedelta(hours=i))
            totals.append((time.perf_counter() - started) * 1000)
            for name, ms in result.latency_ms.items():
                nodes[name].append(ms)
            calls.append(result.llm.calls)
            tokens.append(result.llm.prompt_tokens + result.llm.completion_tokens)
    return {"totals": totals, "nodes": nodes, "calls": calls, "tokens": tokens}


def report(label: str, figures: dict[str, Any]) -> None:
    totals = figures["totals"]
    print(
        f"{label}: {len(totals)} ticks, p50 {statistics.median(totals):.1f} ms, "
        f"p95 {percentile(totals, 95):.1f} ms; LLM calls/decision "
        f"{statistics.mean(figures['calls']):.1f} (max {max(figures['calls'])}), "
        f"tokens/decision {statistics.mean(figures['tokens']):.0f}"
    )
    for name, values in sorted(figures["nodes"].items()):
        if name != "total":
            print(f"    {name:<15} p50 {statistics.median(values):8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--embedded-ticks", type=int, default=5)
    args = parser.parse_args()
    configure_logging("warning")
    with tempfile.TemporaryDirectory() as scratch:
        cache = PersistentEmbeddingCache(build_embedder(load_settings()))
        scripted = asyncio.run(run_ticks(scripted_models(), args.ticks, Path(scratch) / "a", cache))
        report("scripted zero-latency model, new situations (MiniLM embeds each)", scripted)
        replayed = asyncio.run(run_ticks(scripted_models(), args.ticks, Path(scratch) / "c", cache))
        report("scripted zero-latency model, situations embedded before (cache hits)", replayed)
        if args.embedded_ticks:
            embedded = asyncio.run(run_ticks(None, args.embedded_ticks, Path(scratch) / "b"))
            report("embedded SmolLM2-135M (llama.cpp)", embedded)
            share = statistics.median(scripted["totals"]) / statistics.median(embedded["totals"])
            print(f"framework overhead share of the embedded tick (p50/p50): {share:.1%}")


if __name__ == "__main__":
    main()

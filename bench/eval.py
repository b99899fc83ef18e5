"""Eval harness throughput with cached LLM answers, and the rule baselines' bars/s.

A first pass fills an LLM answer cache and an embedding cache (scripted models that answer
from a hash of the prompt, the real MiniLM embedder). The timed passes then replay the same
window through the whole harness (`run_eval`: desk graph, paper broker, journal, checkpoints,
memory, the after-the-fact checks) with fresh models that were never asked anything: every
answer comes from the SQLite cache, and the bench fails if a model is called.

Run: .venv/bin/python bench/eval.py [--days 14] [--every 4h] [--repeat 3] [--full]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.evals import desk_models
from tradecast.bootstrap import build_embedder
from tradecast.evals.baselines import (
    rsi_mean_reversion_positions,
    sma_crossover_equity,
    window_baselines,
)
from tradecast.evals.datasets import resolve_dataset
from tradecast.evals.manifest import build_manifest
from tradecast.evals.report import write_run
from tradecast.evals.runner import EvalSpec, run_eval, run_evals
from tradecast.evals.scoring import score
from tradecast.llm.cache import SqliteLLMCache
from tradecast.logs import configure_logging
from tradecast.market.closed_bars import parse_timeframe
from tradecast.memory.embedding_cache import PersistentEmbeddingCache
from tradecast.settings import load_settings

START = datetime(2021, 1, 1, tzinfo=UTC)


def spec_for(dataset: str, out: Path, days: float, every: timedelta) -> EvalSpec:
    return EvalSpec(
        dataset=resolve_dataset(dataset),
        start=START,
        end=START + timedelta(days=days),
        every=every,
        horizon=timedelta(hours=24),
        out_dir=out,
    )


def refusing_models() -> dict[str, Any]:
    """Models whose every answer must come from the cache (asking them is a bench failure)."""
    models = desk_models("hashed", seed=1)
    for model in models.values():
        model.script = [RuntimeError("cache miss: the bench expects every answer cached")]
    return models


async def timed_pass(
    spec: EvalSpec, settings: Any, cache: SqliteLLMCache, vectors: Any, memory: str
) -> dict[str, float]:
    misses = cache.misses
    models = refusing_models()
    started = time.perf_counter()
    run = await run_eval(
        spec, settings, models=models, embedder=vectors, llm_cache=cache, memory_kind=memory
    )  # type: ignore[arg-type]
    ticked = time.perf_counter()
    write_run(spec.out_dir, run, score(run), build_manifest(run, argv=["bench"]))
    finished = time.perf_counter()
    if cache.misses != misses or any(m.calls for m in models.values()):
        raise SystemExit("a model was asked: the answers were not all cached")
    latencies = [row["latency_ms"] for row in run.rows]
    nodes = {
        name: statistics.median(row["node_latency_ms"].get(name, 0.0) for row in run.rows)
        for name in run.rows[0]["node_latency_ms"]
    }
    return {
        "nodes": nodes,
        "decisions": len(run.rows),
        "loop_per_s": len(run.rows) / run.elapsed_s,
        "run_eval_s": ticked - started,
        "report_s": finished - ticked,
        "total_per_s": len(run.rows) / (finished - started),
        "graph_p50_ms": statistics.median(latencies),
        # per decision, outside the graph: the resume check, the state read, the checks
        "harness_ms": run.elapsed_s * 1000 / len(run.rows) - statistics.mean(latencies),
    }


async def bench_harness(args: argparse.Namespace, scratch: Path) -> None:
    settings = load_settings(data_dir=scratch / "data")
    every = parse_timeframe(args.every)
    cache = SqliteLLMCache(scratch / "cache" / "llm.sqlite")
    vectors = PersistentEmbeddingCache(build_embedder(settings), scratch / "cache" / "emb.sqlite")
    datasets = ["btc-usdt-1h", "eth-busd-1h"]
    started = time.perf_counter()
    fills = [spec_for(name, scratch / f"fill-{name}", args.days, every) for name in datasets]
    for spec in fills:
        await run_eval(
            spec, settings, models=desk_models("hashed", seed=1), embedder=vectors, llm_cache=cache
        )
    print(
        f"fill pass (scripted answers, MiniLM embeddings computed): {cache.misses} answers, "
        f"{vectors.misses} embeddings, {time.perf_counter() - started:.1f} s"
    )
    for memory in ("exact", "chroma"):
        # recall may differ between the stores (exact vs HNSW): fill each one's answers
        await run_eval(
            spec_for("btc-usdt-1h", scratch / f"fill-{memory}", args.days, every),
            settings,
            models=desk_models("hashed", seed=1),
            embedder=vectors,
            llm_cache=cache,
            memory_kind=memory,
        )  # type: ignore[arg-type]
        rows = [
            await timed_pass(
                spec_for("btc-usdt-1h", scratch / f"{memory}-{i}", args.days, every),
                settings,
                cache,
                vectors,
                memory,
            )
            for i in range(args.repeat)
        ]
        best = max(rows, key=lambda r: r["loop_per_s"])
        print(
            f"cached run, memory={memory}: {best['decisions']} decisions; tick loop "
            f"{best['loop_per_s']:.0f} decisions/s (median of {args.repeat}: "
            f"{statistics.median(r['loop_per_s'] for r in rows):.0f}); graph p50 "
            f"{best['graph_p50_ms']:.2f} ms/decision + harness {best['harness_ms']:.2f} ms; "
            f"whole run_eval {best['run_eval_s']:.2f} s, scoring+report {best['report_s']:.2f} "
            f"s -> {best['total_per_s']:.0f} decisions/s end to end"
        )
        print("    node p50 ms: " + ", ".join(f"{k} {v:.2f}" for k, v in best["nodes"].items()))
    for concurrency in (1, 2):
        specs = [
            spec_for(name, scratch / f"conc{concurrency}-{name}", args.days, every)
            for name in datasets
        ]
        started = time.perf_counter()
        runs = await run_evals(
            specs,
            settings,
            concurrency=concurrency,
            models_for=lambda _: refusing_models(),
            embedder=vectors,
            llm_cache_for=lambda _: cache,
        )
        elapsed = time.perf_counter() - started
        total = sum(len(r.rows) for r in runs)
        print(
            f"two datasets, --concurrency {concurrency}: {total} decisions in {elapsed:.2f} s "
            f"= {total / elapsed:.0f} decisions/s (run_eval wall, one process)"
        )


def bench_baselines(full: bool) -> None:
    frame = resolve_dataset("btc-usdt-1h").frame
    closes = pd.Series(frame["close"].to_numpy(), index=frame.index + timedelta(hours=1))
    decisions = closes.index[200::4]
    repeats = 50
    started = time.perf_counter()
    for _ in range(repeats):
        window_baselines(closes, closes.index[200:], decisions, 10_000.0, 17.0)
    per = (time.perf_counter() - started) / repeats
    print(
        f"window_baselines (3 rules, 4h cadence) on {len(closes):,} real bars: "
        f"{per * 1000:.2f} ms = {len(closes) / per / 1e6:.2f} M bars/s"
    )
    size = 10_000_000 if full else 1_000_000
    rng = np.random.default_rng(0)
    synthetic = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, size)))
    for name, rule in (
        ("sma_crossover_equity", lambda: sma_crossover_equity(synthetic)),
        ("rsi_mean_reversion_positions", lambda: rsi_mean_reversion_positions(synthetic)),
    ):
        started = time.perf_counter()
        rule()
        elapsed = time.perf_counter() - started
        print(
            f"{name} on {size:,} synthetic bars: {elapsed * 1000:.0f} ms = "
            f"{size / elapsed / 1e6:.2f} M bars/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=float, default=14.0, help="window length in days")
    parser.add_argument("--every", default="4h", help="decision cadence")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per memory kind")
    parser.add_argument("--full", action="store_true", help="180 days at 1h, 10M-bar baselines")
    args = parser.parse_args()
    if args.full:
        args.days, args.every = 180.0, "1h"
    configure_logging("warning")
    with tempfile.TemporaryDirectory() as scratch:
        asyncio.run(bench_harness(args, Path(scratch)))
    bench_baselines(args.full)


if __name__ == "__main__":
    main()

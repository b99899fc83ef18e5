"""Walk-forward throughput with cached LLM answers: one process against several.

A first pass fills the answer and embedding caches (scripted models that answer from a hash of
the prompt, the real MiniLM embedder). The timed passes replay the same windows and ablations
with models that refuse to answer (every answer must come from the shared SQLite cache), once
in this process and once with ``--workers`` processes, and then score and write the report
(bootstrap intervals, PBO, regimes, plots).

Run: .venv/bin/python bench/walk_forward.py [--days 16] [--every 4h] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.evals import desk_models, desk_models_for
from tradecast.evals.costs import Prices
from tradecast.evals.datasets import resolve_dataset
from tradecast.evals.walkforward import WalkForwardSpec, plan_windows, walk_forward
from tradecast.evals.walkforward_report import write_walk_forward
from tradecast.logs import configure_logging
from tradecast.market.closed_bars import parse_timeframe
from tradecast.settings import load_settings

START = datetime(2021, 1, 4, tzinfo=UTC)
ABLATIONS = ("full", "no_memory", "no_analyst", "rules_only")


def refusing_models(settings: Any) -> dict[str, Any]:
    """Models whose every answer must come from the cache (asking one fails the bench)."""
    models = desk_models("hashed", seed=1)
    for model in models.values():
        model.script = [RuntimeError("cache miss: the bench expects every answer cached")]
    return models


def spec_for(out: Path, days: int, every: timedelta) -> WalkForwardSpec:
    dataset = resolve_dataset("btc-usdt-1h")
    lengths = {"train": timedelta(days=2), "test": timedelta(days=2), "step": timedelta(days=2)}
    windows = plan_windows(dataset, START, START + timedelta(days=days) - every, every, **lengths)
    return WalkForwardSpec(
        dataset, tuple(windows), every, timedelta(days=1), ABLATIONS, out, **lengths
    )


def timed(spec: WalkForwardSpec, cache: Path, workers: int, factory: Any) -> dict[str, float]:
    settings = load_settings(data_dir=spec.out_dir / "data")
    started = time.perf_counter()
    results, skipped = walk_forward(
        spec, settings, workers=workers, cache_dir=cache, models_factory=factory
    )
    walked = time.perf_counter()
    write_walk_forward(
        spec, results, skipped, prices=Prices(), trials=None, draws=2000, seed=7, token_budget=None
    )
    finished = time.perf_counter()
    failed = sum(r.metrics["llm_failed_calls"] for r in results)
    if skipped or failed:
        raise SystemExit(f"{len(skipped)} pairs skipped, {failed} failed calls: not all cached")
    decisions = sum(r.cost["train_decisions"] + r.cost["test_decisions"] for r in results)
    return {
        "decisions": decisions,
        "walk_s": walked - started,
        "report_s": finished - walked,
        "per_s": decisions / (walked - started),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=16, help="span of the windows in days")
    parser.add_argument("--every", default="4h", help="decision cadence")
    parser.add_argument("--workers", type=int, default=2, help="processes of the parallel pass")
    args = parser.parse_args()
    configure_logging("warning")
    every = parse_timeframe(args.every)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        cache = root / "cache"
        started = time.perf_counter()
        fill = timed(spec_for(root / "fill", args.days, every), cache, 1, desk_models_for)
        print(
            f"fill pass (scripted answers, embeddings computed): {fill['decisions']} decisions "
            f"in {time.perf_counter() - started:.1f} s"
        )
        spec = spec_for(root / "x", args.days, every)
        print(
            f"{len(spec.windows)} windows x {len(ABLATIONS)} configurations "
            f"({', '.join(ABLATIONS)}), {args.every} cadence"
        )
        runs = {}
        for workers in (1, args.workers, 1, args.workers):
            out = root / f"w{workers}-{len(runs)}"
            row = timed(spec_for(out, args.days, every), cache, workers, refusing_models)
            runs.setdefault(workers, []).append(row)
            print(
                f"cached, {workers} process(es): {row['decisions']} decisions in "
                f"{row['walk_s']:.1f} s = {row['per_s']:.0f} decisions/s (process start and "
                f"model/embedder load included); report {row['report_s']:.1f} s"
            )
        best = {w: max(r["per_s"] for r in rows) for w, rows in runs.items()}
        print(
            f"best of 2: {best[1]:.0f} vs {best[args.workers]:.0f} decisions/s, ratio "
            f"{best[args.workers] / best[1]:.2f}"
        )


if __name__ == "__main__":
    main()

"""The eval harness end to end on the real desk graph, replay, paper broker, memory and the
real embedding model, with scripted chat models at the edge.

- a short run writes a complete, consistent report;
- no look-ahead: corrupting every bar after t changes no decision at or before t;
- with the LLM cache, a second run of a model that answers at random repeats the first
  run's trade log exactly and asks the model nothing.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pandas as pd
from typer.testing import CliRunner

from support.evals import desk_models, prompt_text
from tradecast.cli import app
from tradecast.evals.datasets import resolve_dataset
from tradecast.evals.manifest import build_manifest
from tradecast.evals.report import write_run
from tradecast.evals.runner import EvalRun, EvalSpec, run_eval
from tradecast.evals.scoring import score
from tradecast.llm.cache import SqliteLLMCache
from tradecast.market.replay import bundled_csv_files
from tradecast.memory.chroma import DEFAULT_COLLECTION, chroma_settings
from tradecast.memory.embedding_cache import PersistentEmbeddingCache
from tradecast.settings import load_settings

START = datetime(2021, 1, 4, tzinfo=UTC)
FOUR_HOURS = timedelta(hours=4)
DECISION_FIELDS = (
    "at",
    "action",
    "quantity",
    "price",
    "confidence",
    "attribution",
    "approved",
    "risk_reasons",
    "fills",
    "persona",
    "memory_hits",
)


async def _evaluate(
    out: Path,
    embedder: Any,
    models: dict[str, Any],
    *,
    dataset: str = "btc-usdt-1h",
    start: datetime = START,
    days: float = 2,
    cache: SqliteLLMCache | None = None,
    memory_kind: str = "exact",
) -> tuple[EvalRun, dict[str, Any]]:
    spec = EvalSpec(
        dataset=resolve_dataset(dataset),
        start=start,
        end=start + timedelta(days=days),
        every=FOUR_HOURS,
        horizon=timedelta(hours=24),
        out_dir=out,
    )
    run = await run_eval(
        spec,
        load_settings(),
        models=models,
        embedder=embedder,
        llm_cache=cache,
        memory_kind=memory_kind,
    )  # type: ignore[arg-type]
    report = write_run(out, run, score(run), build_manifest(run, argv=["test"]))
    return run, report


def _decisions(run: EvalRun, until: datetime | None = None) -> list[dict[str, Any]]:
    rows = [{k: row[k] for k in DECISION_FIELDS} for row in run.rows]
    return [r for r in rows if until is None or datetime.fromisoformat(r["at"]) <= until]


async def test_a_short_eval_writes_a_complete_consistent_report(tmp_path: Path, embedder):
    out = tmp_path / "run"
    run, report = await _evaluate(out, embedder, desk_models("hashed", seed=1))
    for name in (
        "report.json",
        "report.md",
        "manifest.json",
        "decisions.jsonl",
        "trades.csv",
        "curves.csv",
        "equity.png",
        "drawdown.png",
    ):
        assert (out / name).stat().st_size > 0, name
    assert (out / "equity.png").read_bytes()[:4] == b"\x89PNG"
    metrics = report["metrics"]
    assert metrics["decisions"] == len(run.rows) == 13
    assert metrics["risk_violations"] == 0
    assert metrics["persona_grounding_errors"] == 0
    assert metrics["schema_valid_rate"] == 1.0
    assert 4 <= metrics["calls_per_decision"] <= 5
    assert metrics["tokens_per_decision"] > 0 and metrics["latency_p95_ms"] > 0
    assert 0 <= metrics["max_drawdown"] < 1 and 0 <= metrics["exposure"] <= 1
    assert metrics["trades"] == len(run.fills) > 0, "the hashed answers trade"
    assert set(report["baselines"]) == {
        "buy_and_hold",
        "sma_crossover_20_50",
        "rsi_mean_reversion_14",
    }
    assert report["baselines"]["buy_and_hold"]["exposure"] == 1.0
    assert report["reproducibility"]["seed"] == 42
    assert report["reproducibility"]["dataset_sha256"] == resolve_dataset("btc-usdt-1h").sha256
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["data_dir"] == str(out / "data")
    assert manifest["llm"]["roles"]["analyst"]["backend"] == "scripted"
    curves = pd.read_csv(out / "curves.csv", index_col="time")
    assert curves["desk"].iloc[-1] == report["metrics"]["final_equity"]
    trades = (out / "trades.csv").read_text().splitlines()
    assert len(trades) == 1 + metrics["trades"]
    # the run's memory is saved where the desk looks for it
    client = chromadb.PersistentClient(
        path=str(out / "data" / "memory"), settings=chroma_settings()
    )
    assert client.get_collection(DEFAULT_COLLECTION).count() == 13
    assert "## Reproducibility" in (out / "report.md").read_text()


async def test_no_look_ahead_corrupting_the_future_changes_no_earlier_decision(
    tmp_path: Path, embedder
):
    cut = START + timedelta(days=2)  # decisions at or before this must not change
    source = bundled_csv_files()["BTC/USDT"].read_bytes()
    clean = tmp_path / "clean" / "BTC-USDT-1h.csv"
    dirty = tmp_path / "dirty" / "BTC-USDT-1h.csv"
    for path in (clean, dirty):
        path.parent.mkdir()
        path.write_bytes(source)
    frame = pd.read_csv(dirty)
    # bars opening at or after the cut have not closed by it: rewrite all of them
    future = pd.to_datetime(frame["timestamp"], utc=True) >= pd.Timestamp(cut)
    rng = np.random.default_rng(0)
    factor = rng.uniform(0.5, 1.5, int(future.sum()))
    for column in ("open", "high", "low", "close"):
        frame.loc[future, column] = frame.loc[future, column] * factor
    frame.loc[future, "volume"] = frame.loc[future, "volume"] * rng.uniform(0.1, 10, len(factor))
    frame.to_csv(dirty, index=False)

    # the trader looks the candles up with its tool, so tool results are checked too
    lookup = {"name": "get_candles_summary", "arguments": {"symbol": "BTC/USDT"}}
    clean_models = desk_models("hashed", seed=1, trader_tool=lookup)
    dirty_models = desk_models("hashed", seed=1, trader_tool=lookup)
    clean_run, _ = await _evaluate(
        tmp_path / "a", embedder, clean_models, dataset=str(clean), days=3
    )
    dirty_run, _ = await _evaluate(
        tmp_path / "b", embedder, dirty_models, dataset=str(dirty), days=3
    )
    assert len(_decisions(clean_run, cut)) == 13
    assert _decisions(clean_run, cut) == _decisions(dirty_run, cut)
    for role in ("analyst", "risk", "trader", "persona"):
        before_cut = [prompt_text(p) for p in clean_models[role].prompts][
            : 13 * (2 if role == "trader" else 1)
        ]
        assert (
            before_cut == [prompt_text(p) for p in dirty_models[role].prompts][: len(before_cut)]
        ), role
    tool_results = [m for p in clean_models["trader"].prompts for m in p if m.type == "tool"]
    assert tool_results and "rsi" in str(tool_results[0].content).lower()
    assert _decisions(clean_run) != _decisions(dirty_run), "the corruption took effect later"


async def test_two_runs_with_the_cache_make_the_identical_trade_log(tmp_path: Path, embedder):
    cache = SqliteLLMCache(tmp_path / "cache" / "llm.sqlite")
    vectors = PersistentEmbeddingCache(embedder, tmp_path / "cache" / "embeddings.sqlite")
    first_models = desk_models("random")  # unseeded: a rerun without the cache would differ
    first, _ = await _evaluate(tmp_path / "one", vectors, first_models, cache=cache)
    misses = cache.misses
    second_models = desk_models("random")
    second, _ = await _evaluate(tmp_path / "two", vectors, second_models, cache=cache)
    assert sum(m.calls for m in first_models.values()) > 0
    assert sum(m.calls for m in second_models.values()) == 0, "every answer came from the cache"
    assert cache.misses == misses
    assert (tmp_path / "one" / "trades.csv").read_bytes() == (
        tmp_path / "two" / "trades.csv"
    ).read_bytes()
    assert _decisions(first) == _decisions(second)
    assert len(first.fills) > 0

    compared = CliRunner().invoke(
        app, ["eval", "compare", str(tmp_path / "one"), str(tmp_path / "two"), "--json"]
    )
    assert compared.exit_code == 0, compared.output
    result = json.loads(compared.output)
    assert result["same_trades"] and result["same_decisions"] and result["same_dataset"]
    returns = next(r for r in result["rows"] if r["metric"] == "metrics.cumulative_return")
    assert returns["delta"] == 0
    table = CliRunner().invoke(
        app, ["eval", "compare", str(tmp_path / "one"), str(tmp_path / "two")]
    )
    assert table.exit_code == 0 and "same trade log: yes" in table.output


async def test_the_chroma_memory_gives_a_complete_run_too(tmp_path: Path, embedder):
    _, report = await _evaluate(
        tmp_path / "chroma", embedder, desk_models("hashed", seed=1), days=1, memory_kind="chroma"
    )
    assert report["metrics"]["decisions"] == 7 and report["metrics"]["risk_violations"] == 0
    shutil.rmtree(tmp_path / "chroma")


async def test_a_token_budget_stops_the_run_cleanly_and_later_datasets_do_not_start(
    tmp_path: Path, embedder
):
    from tradecast.evals.budget import TokenBudget
    from tradecast.evals.runner import run_evals

    specs = [
        EvalSpec(
            dataset=resolve_dataset(name),
            start=START,
            end=START + timedelta(days=2),
            every=FOUR_HOURS,
            horizon=timedelta(hours=24),
            out_dir=tmp_path / name,
        )
        for name in ("btc-usdt-1h", "eth-busd-1h")
    ]
    budget = TokenBudget(100)
    runs = await run_evals(
        specs,
        load_settings(),
        models_for=lambda _: desk_models("hashed", seed=1),
        embedder=embedder,
        budget=budget,
    )  # type: ignore[arg-type]
    assert len(runs) == 1, "the second dataset is not started once the budget is spent"
    run = runs[0]
    assert run.stopped and "token budget exceeded" in run.stopped
    assert 1 <= len(run.rows) < 13 and budget.used > 100
    report = write_run(tmp_path / "out", run, score(run), build_manifest(run, argv=["test"]))
    assert report["run"]["stopped"] == run.stopped
    curves = pd.read_csv(tmp_path / "out" / "curves.csv", index_col="time", parse_dates=True)
    last = datetime.fromisoformat(run.rows[-1]["at"])
    assert curves.index[-1] <= last + FOUR_HOURS, "scored only as far as it traded"

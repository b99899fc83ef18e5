"""`tradecast eval` as a user runs it: the command from the issue on the embedded model, then
again from the cache, then `tradecast eval compare` on the two runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.cli import run_tradecast

COMMAND = [
    "eval",
    "--dataset",
    "btc-usdt-1h",
    "--start",
    "2021-01-01",
    "--end",
    "2021-01-08",
    "--every",
    "24h",
]


_run = run_tradecast


@pytest.mark.slow
def test_the_issue_command_runs_on_the_embedded_model_and_reruns_from_the_cache(tmp_path: Path):
    first = _run(tmp_path, *COMMAND, "--out", str(tmp_path / "first"))
    assert first.returncode == 0, first.stderr[-3000:]
    report = json.loads((tmp_path / "first" / "report.json").read_text())
    metrics = report["metrics"]
    assert metrics["decisions"] == 8
    assert metrics["risk_violations"] == 0 and metrics["persona_grounding_errors"] == 0
    assert 1 <= metrics["calls_per_decision"] <= 5 and metrics["tokens_per_decision"] > 0
    assert metrics["schema_valid_rate"] is not None and metrics["latency_p50_ms"] > 0
    assert {"buy_and_hold", "sma_crossover_20_50"} <= set(report["baselines"])
    for name in ("report.md", "equity.png", "drawdown.png", "trades.csv", "manifest.json"):
        assert (tmp_path / "first" / name).is_file(), name
    manifest = json.loads((tmp_path / "first" / "manifest.json").read_text())
    assert manifest["llm"]["roles"]["persona"]["backend"] == "llamacpp"
    assert manifest["llm"]["seed"] == 42 and manifest["llm"]["temperature"] == 0.0
    assert manifest["cache"]["llm"]["misses"] > 0

    second = _run(tmp_path, *COMMAND, "--out", str(tmp_path / "second"))
    assert second.returncode == 0, second.stderr[-3000:]
    rerun = json.loads((tmp_path / "second" / "manifest.json").read_text())["cache"]["llm"]
    assert rerun["hits"] > 0
    # every answer the first run got is replayed; only calls that failed inside the backend
    # (timeouts, a tool turn it could not parse) are not cached, and are asked again
    assert rerun["misses"] <= metrics["llm_failed_calls"]
    assert (tmp_path / "first" / "trades.csv").read_bytes() == (
        tmp_path / "second" / "trades.csv"
    ).read_bytes()

    compared = _run(tmp_path, "eval", "compare", str(tmp_path / "first"), str(tmp_path / "second"))
    assert compared.returncode == 0, compared.stderr[-2000:]
    assert "same trade log: yes" in compared.stdout
    assert "same decisions: yes" in compared.stdout


@pytest.mark.slow
def test_several_datasets_at_once_with_the_llm_server_down(tmp_path: Path):
    """Two datasets with --concurrency 2, against an Ollama URL where nothing listens: every
    call fails fast, every agent abstains with the reason, and both reports are written."""
    done = _run(
        tmp_path,
        "eval",
        "--dataset",
        "btc-usdt-1h",
        "--dataset",
        "eth-busd-1h",
        "--concurrency",
        "2",
        "--start",
        "2021-01-01",
        "--end",
        "2021-01-03",
        "--every",
        "24h",
        "--out",
        str(tmp_path / "both"),
        "--backend",
        "ollama",
        "--model",
        "qwen2.5:7b-instruct",
        "--no-progress",
        extra_env={"TRADECAST_LLM__OLLAMA_BASE_URL": "http://127.0.0.1:9"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("btc-usdt-1h", "eth-busd-1h"):
        report = json.loads((tmp_path / "both" / name / "report.json").read_text())
        assert report["metrics"]["decisions"] == 3
        assert report["metrics"]["schema_valid_rate"] == 0.0
        rows = (tmp_path / "both" / name / "decisions.jsonl").read_text().splitlines()
        assert all("unreachable" in json.loads(row)["llm_errors"][0] for row in rows)

"""Walk-forward through the real desk graph with scripted models: windows, ablations, the
out-of-sample report, no look-ahead across windows, the token budget, parallel processes and
the leaderboard over several runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from support.evals import desk_models, desk_models_for
from tradecast.cli import app
from tradecast.evals.ablations import Ablation
from tradecast.evals.costs import Prices
from tradecast.evals.datasets import resolve_dataset
from tradecast.evals.walkforward import WalkForwardSpec, plan_windows, walk_forward
from tradecast.evals.walkforward_report import write_walk_forward
from tradecast.market.replay import bundled_csv_files
from tradecast.settings import load_settings

START = datetime(2021, 1, 4, tzinfo=UTC)
EVERY = timedelta(hours=6)
DAY = timedelta(days=1)


def _spec(
    out: Path, ablations: tuple[Ablation, ...], dataset: str = "btc-usdt-1h", days: int = 4
) -> WalkForwardSpec:
    data = resolve_dataset(dataset)
    lengths = {"train": DAY, "test": DAY, "step": DAY}
    windows = plan_windows(data, START, START + days * DAY - EVERY, EVERY, **lengths)
    return WalkForwardSpec(data, tuple(windows), EVERY, DAY, ablations, out, **lengths)


def _walk(spec: WalkForwardSpec, embedder: Any, **kwargs: Any) -> dict[str, Any]:
    results, skipped = walk_forward(
        spec, load_settings(), models=desk_models("hashed", seed=1), embedder=embedder, **kwargs
    )
    return write_walk_forward(
        spec,
        results,
        skipped,
        prices=Prices.of(1.0, 4.0, 1e6),
        trials=None,
        draws=300,
        seed=3,
        token_budget=kwargs.get("token_budget"),
    )


def _decisions(folder: Path) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(folder.rglob("decisions.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            rows.append(
                {
                    "file": str(path.relative_to(folder)),
                    **{
                        k: row[k]
                        for k in (
                            "at",
                            "action",
                            "quantity",
                            "price",
                            "confidence",
                            "attribution",
                            "memory_hits",
                            "persona",
                        )
                    },
                }
            )
    return rows


def test_every_ablation_is_scored_on_the_same_windows(tmp_path: Path, embedder):
    spec = _spec(tmp_path / "wf", ("full", "rules_only", "no_memory", "no_analyst"))
    report = _walk(spec, embedder)

    assert len(report["windows"]) == 3
    assert set(report["configurations"]) == {"full", "rules_only", "no_memory", "no_analyst"}
    bars = {name: c["bars"] for name, c in report["configurations"].items()}
    assert len(set(bars.values())) == 1 and bars["full"] == 3 * 24, "the same 3 test days"
    for name, config in report["configurations"].items():
        for key in ("cumulative_return", "sharpe", "max_drawdown"):
            interval = config[key]
            assert interval["low"] <= interval["estimate"] <= interval["high"], (name, key)
        assert set(config["versus"]) == {
            "buy_and_hold",
            "sma_crossover_20_50",
            "rsi_mean_reversion_14",
        }
        assert 0 <= config["versus"]["buy_and_hold"]["p_value"] <= 1
        assert len(config["windows"]) == 3
    assert report["must_be_zero"] == {"risk_violations": 0, "persona_grounding_errors": 0}
    # the baselines over the same bars, with intervals, beside the configurations
    assert set(report["baselines"]) == set(report["configurations"]["full"]["versus"])
    hold = report["baselines"]["buy_and_hold"]
    assert hold["bars"] == bars["full"] and hold["sharpe"]["low"] <= hold["sharpe"]["high"]
    assert "| baseline: buy_and_hold |" in (spec.out_dir / "report.md").read_text()

    full, rules = (
        report["configurations"]["full"]["cost"],
        report["configurations"]["rules_only"]["cost"],
    )
    assert full["decisions"] == 2 * 3 * 4, "training decisions are counted"
    assert rules["decisions"] == 3 * 4, "a configuration that reads no memory does not train"
    assert rules["tokens_per_decision"] < full["tokens_per_decision"]
    assert full["money_per_decision"] > rules["money_per_decision"] > 0

    for row in _decisions(spec.out_dir / "rules_only"):
        by_agent = {a["agent"]: a for a in row["attribution"]}
        assert by_agent["analyst"]["abstained"] and by_agent["trader"]["abstained"]
        assert not by_agent["rules"]["abstained"]
    test_rows = [r for r in _decisions(spec.out_dir / "full") if "/test/" in r["file"]]
    assert any(r["memory_hits"] > 0 for r in test_rows), "test runs read what training recorded"
    assert all(r["memory_hits"] == 0 for r in _decisions(spec.out_dir / "no_memory"))

    assert {c["ablation"] for c in report["contributions"]} == {
        "rules_only",
        "no_memory",
        "no_analyst",
    }
    assert report["overfitting"] is not None and 0 <= report["overfitting"]["pbo"] <= 1
    assert sum(r["bars"] for r in report["regimes"]["split"].values()) == 3 * 24
    for name in (
        "report.json",
        "report.md",
        "report.html",
        "oos.csv",
        "windows.csv",
        "oos_equity.png",
        "contributions.png",
        "regimes.png",
    ):
        assert (spec.out_dir / name).stat().st_size > 0, name
    page = (spec.out_dir / "report.html").read_text()
    assert "data:image/png;base64," in page and "http" not in page.replace("http-equiv", "")
    assert "## Ablations" in (spec.out_dir / "report.md").read_text()


def test_no_look_ahead_across_windows(tmp_path: Path, embedder):
    """Rewriting every bar that had not closed by a cut in the second window's test changes
    no decision at or before the cut, in any window's training or test run."""
    cut = START + 2 * DAY + 12 * timedelta(hours=1)
    source = bundled_csv_files()["BTC/USDT"].read_bytes()
    paths = {}
    for name in ("clean", "dirty"):
        paths[name] = tmp_path / name / "BTC-USDT-1h.csv"
        paths[name].parent.mkdir()
        paths[name].write_bytes(source)
    frame = pd.read_csv(paths["dirty"])
    future = pd.to_datetime(frame["timestamp"], utc=True) >= pd.Timestamp(cut)
    factor = np.random.default_rng(0).uniform(0.5, 1.5, int(future.sum()))
    for column in ("open", "high", "low", "close"):
        frame.loc[future, column] = frame.loc[future, column] * factor
    frame.to_csv(paths["dirty"], index=False)

    runs = {}
    for name, path in paths.items():
        spec = _spec(tmp_path / f"wf-{name}", ("full",), dataset=str(path))
        _walk(spec, embedder)
        runs[name] = _decisions(spec.out_dir)
    before = {
        n: [r for r in rows if datetime.fromisoformat(r["at"]) <= cut] for n, rows in runs.items()
    }
    assert len(before["clean"]) >= 8 and {r["file"].split("/")[1] for r in before["clean"]} >= {
        "window-000",
        "window-001",
    }
    assert before["clean"] == before["dirty"]
    assert runs["clean"] != runs["dirty"], "the corruption took effect after the cut"


def test_the_token_budget_stops_the_walk_cleanly(tmp_path: Path, embedder):
    spec = _spec(tmp_path / "wf", ("full", "no_memory"))
    report = _walk(spec, embedder, token_budget=2_000)
    assert report["stopped"] and "token budget" in report["stopped"]
    assert report["skipped"], "pairs after the budget ran out were not started"
    assert (spec.out_dir / "report.html").is_file()
    done = sum(len(c["windows"]) for c in report["configurations"].values())
    assert done + len(report["skipped"]) <= 6


@pytest.mark.slow
def test_windows_in_worker_processes_decide_as_in_one(tmp_path: Path, embedder):
    one = _spec(tmp_path / "one", ("full", "no_memory"))
    _walk(one, embedder)
    many = _spec(tmp_path / "many", ("full", "no_memory"))
    results, skipped = walk_forward(
        many, load_settings(), workers=2, models_factory=desk_models_for
    )
    assert not skipped and len(results) == 6
    assert [r["action"] for r in _decisions(one.out_dir)] == [
        r["action"] for r in _decisions(many.out_dir)
    ]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "persona"} for r in rows]  # noqa: E731
    assert strip(_decisions(one.out_dir)) == strip(_decisions(many.out_dir))


def test_compare_ranks_several_runs_with_intervals(tmp_path: Path, embedder):
    for name, ablation in (("a", "full"), ("b", "rules_only"), ("c", "no_memory")):
        _walk(_spec(tmp_path / name, (ablation,), days=3), embedder)
    out = tmp_path / "board"
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "eval",
            "compare",
            *(str(tmp_path / n) for n in "abc"),
            "--out",
            str(out),
            "--json",
            "--bootstrap-draws",
            "300",
        ],
    )
    assert result.exit_code == 0, result.output
    board = json.loads(result.stdout)["leaderboard"]
    sharpes = [r["sharpe"]["estimate"] for r in board["runs"]]
    assert sharpes == sorted(sharpes, reverse=True)
    assert [r["rank"] for r in board["runs"]] == [1, 2, 3]
    for row in board["runs"][1:]:
        assert row["versus_leader"]["comparable"] and 0 <= row["versus_leader"]["p_value"] <= 1
    assert board["overfitting"] is not None
    for name in ("leaderboard.json", "leaderboard.md", "leaderboard.html", "leaderboard.png"):
        assert (out / name).stat().st_size > 0
    refused = runner.invoke(app, ["eval", "compare", str(tmp_path / "a")])
    assert refused.exit_code != 0 and "2 to 100 runs" in refused.output


def test_a_budget_spent_in_the_first_training_still_writes_a_report(tmp_path: Path, embedder):
    spec = _spec(tmp_path / "wf", ("full",))
    report = _walk(spec, embedder, token_budget=1)
    assert report["configurations"] == {} and report["regimes"] is None
    assert "not scored" in report["stopped"] and report["skipped"]
    assert (spec.out_dir / "report.md").read_text().count("No test window was scored") == 1
    # the training tokens spent are not lost from the record
    assert report["must_be_zero"] == {"risk_violations": 0, "persona_grounding_errors": 0}

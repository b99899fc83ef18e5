"""`tradecast eval walk-forward` as a user runs it, on the embedded model: one window, the
full desk against the rules alone, a report with intervals, then the leaderboard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.cli import run_tradecast as _run

COMMAND = [
    "eval",
    "walk-forward",
    "--dataset",
    "eth-busd-1h",
    "--start",
    "2021-03-01",
    "--end",
    "2021-03-02",
    "--every",
    "24h",
    "--train",
    "1d",
    "--test",
    "1d",
    "--ablations",
    "full,rules_only",
    "--price-per-mtok",
    "0.2",
    "--no-progress",
]


@pytest.mark.slow
def test_a_walk_forward_on_the_embedded_model_writes_its_report(tmp_path: Path):
    out = tmp_path / "wf"
    done = _run(tmp_path, *COMMAND, "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert len(report["windows"]) == 1 and set(report["configurations"]) == {"full", "rules_only"}
    assert report["must_be_zero"] == {"risk_violations": 0, "persona_grounding_errors": 0}
    full, rules = report["configurations"]["full"], report["configurations"]["rules_only"]
    assert full["bars"] == rules["bars"] == 24
    assert full["cost"]["decisions"] == 2 and rules["cost"]["decisions"] == 1
    assert full["cost"]["tokens_per_decision"] > rules["cost"]["tokens_per_decision"] > 0
    assert full["cost"]["money_per_decision"] > 0
    assert [c["ablation"] for c in report["contributions"]] == ["rules_only"]
    manifest = json.loads((out / "full" / "window-000" / "test" / "manifest.json").read_text())
    assert manifest["llm"]["roles"]["analyst"]["backend"] == "llamacpp"
    assert manifest["walk_forward"]["ablation"] == "full"
    assert "data:image/png;base64," in (out / "report.html").read_text()

    board = _run(tmp_path, "eval", "compare", str(out), str(out / "full" / "window-000" / "test"))
    assert board.returncode == 0, board.stderr[-3000:]
    assert "rank" in board.stdout

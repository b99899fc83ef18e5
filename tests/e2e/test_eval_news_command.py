"""`tradecast eval --news` as a user runs it, on the embedded model: the report compares the
same windows with and without the news, and says what reading it cost in tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.cli import run_tradecast

NEWS = Path(__file__).parents[1] / "fixtures" / "news" / "sample-2021-01.jsonl"


@pytest.mark.slow
def test_eval_with_a_news_file_reports_the_ablation_on_the_embedded_model(tmp_path: Path):
    out = tmp_path / "run"
    done = run_tradecast(
        tmp_path,
        *("eval", "--dataset", "btc-usdt-1h", "--start", "2021-01-04", "--end", "2021-01-06"),
        *("--every", "24h", "--news", str(NEWS), "--out", str(out)),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "read news" in done.stdout
    report = json.loads((out / "report.json").read_text())
    plain = json.loads((out / "without-news" / "report.json").read_text())
    assert report["metrics"]["decisions"] == plain["metrics"]["decisions"] == 3
    assert report["news"]["sources"] == ["replay:sample-2021-01.jsonl"]
    assert sum(report["news"]["dropped"].values()) == 4
    assert "news" not in plain
    ablation = report["news_ablation"]
    assert ablation["decisions_with_news"] == 3
    rows = {row["metric"]: row for row in ablation["rows"]}
    # the analyst's prompt grows by the news lines, and only by a bounded amount
    assert 30 < rows["analyst_prompt_tokens_per_decision"]["delta"] <= 400
    assert rows["calls_per_decision"]["with"] <= 5
    for metrics in (report["metrics"], plain["metrics"]):
        assert metrics["risk_violations"] == 0 and metrics["persona_grounding_errors"] == 0
    decisions = [json.loads(line) for line in (out / "decisions.jsonl").read_text().splitlines()]
    assert all(item["published_at"] < row["at"] for row in decisions for item in row["news"])
    assert "## News ablation" in (out / "report.md").read_text()

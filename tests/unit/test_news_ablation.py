"""The with/without-news row of the eval report: what it compares, and that it says so when
the two runs did not cover the same instants. And a replay never polls live sources."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tradecast.evals.datasets import resolve_dataset
from tradecast.evals.manifest import redacted_settings
from tradecast.evals.news_ablation import markdown_section, news_ablation
from tradecast.evals.report import fmt
from tradecast.evals.runner import EvalSpec, eval_settings
from tradecast.settings import load_settings


def _run(instants: list[str], actions: str, out: Path, stopped: str | None = None) -> Any:
    rows = [
        {
            "at": at,
            "action": action,
            "news": [{"id": "n"}] if i % 2 else [],
            "analyst_prompt_tokens": 400 + i,
        }
        for i, (at, action) in enumerate(zip(instants, actions, strict=True))
    ]
    spec = SimpleNamespace(out_dir=out)
    return SimpleNamespace(rows=rows, spec=spec, stopped=stopped)


def _scores(sharpe: float) -> Any:
    return SimpleNamespace(metrics={"sharpe": sharpe, "trades": 3, "calls_per_decision": 5.0})


def test_the_row_compares_the_same_instants(tmp_path: Path):
    at = ["2021-01-04T00:00", "2021-01-04T04:00", "2021-01-04T08:00"]
    with_news = _run(at, "BHS", tmp_path)
    without = _run(at, "BHH", tmp_path / "without-news")
    ablation = news_ablation(with_news, _scores(1.5), without, _scores(0.5))
    assert ablation["comparable"] and ablation["decisions_changed"] == 1
    assert ablation["decisions_with_news"] == 1 and ablation["without_news_dir"] == "without-news"
    rows = {row["metric"]: row for row in ablation["rows"]}
    assert rows["sharpe"]["delta"] == 1.0 and rows["calls_per_decision"]["delta"] == 0
    assert rows["cumulative_return"]["delta"] is None  # not in either run's metrics
    assert "Not comparable" not in "\n".join(markdown_section(ablation, fmt))


def test_a_twin_stopped_by_the_budget_is_flagged_not_compared_silently(tmp_path: Path):
    at = ["2021-01-04T00:00", "2021-01-04T04:00", "2021-01-04T08:00"]
    with_news = _run(at, "BHS", tmp_path)
    without = _run(at[:1], "B", tmp_path / "without-news", stopped="token budget spent")
    ablation = news_ablation(with_news, _scores(1.5), without, _scores(0.5))
    assert not ablation["comparable"]
    assert ablation["not_comparable_because"] == "token budget spent"
    assert "**Not comparable**: token budget spent" in "\n".join(markdown_section(ablation, fmt))


def test_a_replay_reads_the_news_file_only(tmp_path: Path):
    settings = load_settings(
        news={
            "file": tmp_path / "news.jsonl",
            "feeds": ["https://user:secret@feeds.example/rss?key=secret"],
            "cryptopanic_token": "cp-secret",
            "k": 5,
        }
    )
    spec = EvalSpec(
        dataset=resolve_dataset("btc-usdt-1h"),
        start=datetime(2021, 1, 4, tzinfo=UTC),
        end=datetime(2021, 1, 5, tzinfo=UTC),
        every=timedelta(hours=4),
        horizon=timedelta(hours=4),
        out_dir=tmp_path / "out",
    )
    news = eval_settings(settings, spec).news
    assert news.feeds == () and not news.cryptopanic_token.get_secret_value()
    assert news.file == tmp_path / "news.jsonl" and news.k == 5
    redacted = str(redacted_settings(settings))
    assert "secret" not in redacted and "<redacted>" in redacted

"""News in the eval harness, end to end on the real desk graph, replay, paper broker, memory,
MiniLM embeddings and VADER, with scripted chat models at the edge:

- rewriting every news item published after t changes no decision and no prompt at or
  before t (the rewrite-the-future test, extended to news);
- the same windows with and without news give the ablation row, and the analyst alone reads
  the news (its prompt grows, bounded; the other agents' prompts do not change);
- each decision lists the items it read, and the memory keeps their titles with it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import chromadb

from support.evals import desk_models, prompt_text
from tradecast.evals.ablations import without_news
from tradecast.evals.datasets import resolve_dataset
from tradecast.evals.manifest import build_manifest
from tradecast.evals.news_ablation import news_ablation
from tradecast.evals.report import write_run
from tradecast.evals.runner import EvalRun, EvalSpec, run_eval
from tradecast.evals.scoring import score
from tradecast.memory.chroma import DEFAULT_COLLECTION, chroma_settings
from tradecast.memory.metadata import stored_news
from tradecast.news.base import parse_published
from tradecast.settings import Settings, load_settings

NEWS = Path(__file__).parents[1] / "fixtures" / "news" / "sample-2021-01.jsonl"
START = datetime(2021, 1, 4, tzinfo=UTC)
FOUR_HOURS = timedelta(hours=4)


def _settings(news: Path | None) -> Settings:
    return load_settings(news={"file": news}) if news else load_settings()


async def _evaluate(
    out: Path, embedder: Any, models: dict[str, Any], settings: Settings, days: float = 3
) -> EvalRun:
    spec = EvalSpec(
        dataset=resolve_dataset("btc-usdt-1h"),
        start=START,
        end=START + timedelta(days=days),
        every=FOUR_HOURS,
        horizon=timedelta(hours=24),
        out_dir=out,
    )
    return await run_eval(spec, settings, models=models, embedder=embedder)  # type: ignore[arg-type]


def _rows(run: EvalRun, until: datetime) -> list[dict[str, Any]]:
    keys = ("at", "action", "quantity", "confidence", "attribution", "fills", "news")
    return [{k: r[k] for k in keys} for r in run.rows if datetime.fromisoformat(r["at"]) <= until]


def _boundary_items(cut: datetime) -> list[dict[str, Any]]:
    """Items at the edges of readability at ``cut`` (with the default 60 s delay)."""
    iso = lambda moment: moment.isoformat()  # noqa: E731
    return [
        # published before the cut but first fetched after it: not readable at the cut
        {"id": "late-seen", "published_at": iso(cut - timedelta(hours=2)),
         "first_seen_at": iso(cut + timedelta(minutes=10)), "title": "Bitcoin miners sell",
         "source": "Edge Wire", "symbols": ["BTC"]},
        # published 30 s before the cut: inside the ingestion delay
        {"id": "in-delay", "published_at": iso(cut - timedelta(seconds=30)),
         "title": "Bitcoin whales accumulate", "source": "Edge Wire", "symbols": ["BTC"]},
        # published and seen well before the cut: readable, and never rewritten
        {"id": "readable", "published_at": iso(cut - timedelta(hours=5)),
         "first_seen_at": iso(cut - timedelta(hours=4)), "title": "Bitcoin funding cools",
         "source": "Edge Wire", "symbols": ["BTC"]},
    ]  # fmt: skip


def _rewrite_after(source: Path, clean: Path, dirty: Path, cut: datetime) -> int:
    """``clean``: ``source`` with the boundary items; ``dirty``: the same with every item not
    readable at ``cut`` turned into its opposite (published after it, first seen after it, or
    inside the ingestion delay), plus new items after it. Returns how many records changed."""
    rows = [json.loads(line) for line in source.read_text().splitlines()]
    rows += _boundary_items(cut)
    clean.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    changed = 0
    for row in rows:
        moments = [parse_published(row.get(k)) for k in ("published_at", "first_seen_at")]
        if any(isinstance(m, datetime) and m > cut - timedelta(seconds=60) for m in moments):
            row["title"] = f"Bitcoin exchange hacked, funds lost: {row['title']}"
            row["summary"] = "Regulators ban trading; a crash and mass liquidations follow."
            changed += 1
    for hours in (1, 5, 30):
        rows.append(
            {
                "published_at": (cut + timedelta(hours=hours)).isoformat(),
                "title": f"Bitcoin plunges {hours}0% in a flash crash",
                "source": "Future Wire",
                "symbols": ["BTC"],
            }
        )
        changed += 1
    dirty.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return changed


async def test_rewriting_news_after_t_changes_no_decision_or_prompt_at_or_before_t(
    tmp_path: Path, embedder
):
    cut = START + timedelta(days=2)
    clean_file, dirty = tmp_path / "clean.jsonl", tmp_path / "dirty.jsonl"
    assert _rewrite_after(NEWS, clean_file, dirty, cut) > 10
    clean_models, dirty_models = desk_models("hashed", seed=1), desk_models("hashed", seed=1)
    clean = await _evaluate(tmp_path / "a", embedder, clean_models, _settings(clean_file))
    rewritten = await _evaluate(tmp_path / "b", embedder, dirty_models, _settings(dirty))

    before = _rows(clean, cut)
    assert len(before) == 13 and any(row["news"] for row in before), "news was read before t"
    read_before = {item["id"] for row in before for item in row["news"]}
    assert "readable" in read_before and not {"late-seen", "in-delay"} & read_before
    assert before == _rows(rewritten, cut)
    for role in ("analyst", "risk", "trader", "persona"):
        clean_prompts = [prompt_text(p) for p in clean_models[role].prompts]
        dirty_prompts = [prompt_text(p) for p in dirty_models[role].prompts]
        count = 13 if role != "trader" else 26  # the trader's tool turn is a prompt too
        assert clean_prompts[:count] == dirty_prompts[:count], role
    later = [prompt_text(p) for p in dirty_models["analyst"].prompts[13:]]
    assert any("flash crash" in p for p in later), "the rewritten news reached later prompts"
    assert _rows(clean, START + timedelta(days=3)) != _rows(rewritten, START + timedelta(days=3))


async def test_with_and_without_news_on_the_same_windows(tmp_path: Path, embedder):
    with_models, plain_models = desk_models("hashed", seed=1), desk_models("hashed", seed=1)
    settings = _settings(NEWS)
    with_news = await _evaluate(tmp_path / "with", embedder, with_models, settings, days=2)
    plain = await _evaluate(
        tmp_path / "with" / "without-news", embedder, plain_models, without_news(settings), 2
    )
    ablation = news_ablation(with_news, score(with_news), plain, score(plain))

    assert ablation["decisions_compared"] == len(with_news.rows) == 13
    assert 0 < ablation["decisions_with_news"] <= 13
    assert 0 < ablation["news_items_per_decision"] <= 3
    metrics = {row["metric"]: row for row in ablation["rows"]}
    assert metrics["calls_per_decision"]["delta"] == 0, "news costs no LLM call"
    # only the analyst reads the news: its prompt grows, no other agent's prompt has it
    analyst_with = [prompt_text(p) for p in with_models["analyst"].prompts]
    analyst_plain = [prompt_text(p) for p in plain_models["analyst"].prompts]
    assert all("News" not in p for p in analyst_plain)
    assert sum("News published before now" in p for p in analyst_with) > 0
    growth = [len(a) - len(b) for a, b in zip(analyst_with, analyst_plain, strict=True)]
    assert all(0 < g <= 1200 for g in growth), growth
    for role in ("risk", "trader", "persona"):
        assert all("News" not in prompt_text(p) for p in with_models[role].prompts), role
    assert with_news.news is not None and plain.news is None
    assert with_news.news["dropped"] == {
        "no_timezone": 1,
        "no_timestamp": 1,
        "implausible_timestamp": 1,
        "no_title": 1,
    }

    report = write_run(
        tmp_path / "with",
        with_news,
        score(with_news),
        build_manifest(with_news, argv=["test"]),
        news_ablation=ablation,
    )
    assert report["news"]["items_read"] > 0 and report["news_ablation"]["rows"]
    markdown = (tmp_path / "with" / "report.md").read_text()
    assert "## News ablation (same windows, with and without news)" in markdown
    assert "no_timezone 1" in markdown

    # each decision lists what it read, and the memory keeps the titles with the decision
    read = next(row for row in with_news.rows if row["news"])
    assert {"id", "title", "published_at", "sentiment"} <= set(read["news"][0])
    assert all(item["published_at"] <= read["at"] for item in read["news"])
    client = chromadb.PersistentClient(
        path=str(tmp_path / "with" / "data" / "memory"), settings=chroma_settings()
    )
    stored = client.get_collection(DEFAULT_COLLECTION).get(
        ids=[read["decision_id"]], include=["metadatas"]
    )
    assert stored_news(stored["metadatas"][0]) == tuple(i["title"] for i in read["news"])

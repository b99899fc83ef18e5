"""The desk with and without news on the same windows: what reading the news changed.

``tradecast eval --news FILE`` runs each window twice, once reading the file and once with no
news source (the ``no_news`` ablation), and this is the row the report compares them in.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from statistics import mean
from typing import Any

from tradecast.evals.runner import EvalRun
from tradecast.evals.scoring import Scores

COMPARED = (
    "cumulative_return",
    "sharpe",
    "max_drawdown",
    "win_rate",
    "directional_accuracy",
    "trades",
    "calls_per_decision",
    "tokens_per_decision",
)


def news_ablation(
    with_news: EvalRun, with_scores: Scores, without: EvalRun, without_scores: Scores
) -> dict[str, Any]:
    """The comparison as the report keeps it: one row per metric (with, without, delta), the
    analyst's prompt tokens per decision, and how many decisions changed."""
    rows = [
        _row(name, with_scores.metrics.get(name), without_scores.metrics.get(name))
        for name in COMPARED
    ]
    rows.append(
        _row(
            "analyst_prompt_tokens_per_decision",
            _mean(with_news.rows, "analyst_prompt_tokens"),
            _mean(without.rows, "analyst_prompt_tokens"),
        )
    )
    before = {row["at"]: row["action"] for row in without.rows}
    shared = [row for row in with_news.rows if row["at"] in before]
    same_instants = set(before) == {row["at"] for row in with_news.rows}
    stopped = with_news.stopped or without.stopped
    return {
        "comparable": same_instants and not stopped,
        "not_comparable_because": None
        if same_instants and not stopped
        else (stopped or "the two runs decided at different instants"),
        "rows": rows,
        "decisions_compared": len(shared),
        "decisions_changed": sum(1 for row in shared if row["action"] != before[row["at"]]),
        "decisions_with_news": sum(1 for row in with_news.rows if row["news"]),
        "news_items_per_decision": _mean([{"n": len(r["news"])} for r in with_news.rows], "n"),
        "without_news_dir": _relative(without.spec.out_dir, with_news.spec.out_dir),
    }


def markdown_section(ablation: dict[str, Any], fmt: Any) -> list[str]:
    """The comparison as Markdown lines (``fmt`` formats a metric's value)."""
    lines = [
        "## News ablation (same windows, with and without news)",
        "",
        f"{ablation['decisions_with_news']} of {ablation['decisions_compared']} decisions read "
        f"news ({ablation['news_items_per_decision']:.2f} items each on average); "
        f"{ablation['decisions_changed']} took a different action than without it. The run "
        f"without news is in `{ablation['without_news_dir']}/`.",
        "",
        *(
            []
            if ablation.get("comparable", True)
            else [
                "**Not comparable**: "
                f"{ablation['not_comparable_because']} (the rows below cover different windows).",
                "",
            ]
        ),
        "| metric | with news | without news | with - without |",
        "|---|---|---|---|",
    ]
    for row in ablation["rows"]:
        name = row["metric"]
        delta = "n/a" if row["delta"] is None else fmt(name, row["delta"])
        lines.append(
            f"| {name} | {fmt(name, row['with'])} | {fmt(name, row['without'])} | {delta} |"
        )
    return [*lines, ""]


def _relative(path: Path, start: Path) -> str:
    try:
        return str(path.relative_to(start))
    except ValueError:
        return str(path)


def _row(name: str, with_value: Any, without_value: Any) -> dict[str, Any]:
    numbers = isinstance(with_value, int | float) and isinstance(without_value, int | float)
    delta = with_value - without_value if numbers else None
    return {"metric": name, "with": with_value, "without": without_value, "delta": delta}


def _mean(rows: Sequence[dict[str, Any]], key: str) -> float:
    values = [float(row[key]) for row in rows if row.get(key) is not None]
    return round(mean(values), 2) if values else 0.0

"""Writes a scored run to its directory: report.json, report.md, plots and the logs.

Files (all in the run's out dir):
  report.json    the fill price rule, metrics, baselines, decision counts, reproducibility facts
  report.md      the same for people, with the plots
  manifest.json  code, data, settings, models, caches (see :mod:`tradecast.evals.manifest`)
  decisions.jsonl one line per decision; trades.csv the trade log; curves.csv the equity curves
  equity.png     the desk's equity against the baselines; drawdown.png the drawdowns
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradecast.evals import metrics
from tradecast.evals.ledger import TRADE_COLUMNS
from tradecast.evals.news_ablation import markdown_section
from tradecast.evals.runner import EvalRun
from tradecast.evals.scoring import Scores

REPORT_FORMAT = "tradecast-eval/1"
FILES = {
    "report": "report.json",
    "markdown": "report.md",
    "manifest": "manifest.json",
    "decisions": "decisions.jsonl",
    "trades": "trades.csv",
    "curves": "curves.csv",
    "equity_plot": "equity.png",
    "drawdown_plot": "drawdown.png",
}
PERCENT = (
    "cumulative_return",
    "max_drawdown",
    "win_rate",
    "exposure",
    "directional_accuracy",
    "schema_valid_rate",
)
"""Metrics shown as percentages in the Markdown report."""
FILL_LINES = {
    "close": "Orders filled at the last close known at each decision (`--fill close`), "
    "plus slippage and fees.",
    "next_open": "Orders filled at the open of the next bar, the first price after each "
    "decision (`--fill next-open`), plus slippage and fees.",
}
"""How the Markdown report says what orders filled at (``report.json`` → ``fill``)."""


def build_report(
    run: EvalRun,
    scores: Scores,
    manifest: dict[str, Any],
    news_ablation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report as a JSON-ready dict (with the news sources' summary when the run read
    news, and the with/without comparison when it was made)."""
    news = {"news": run.news} if run.news is not None else {}
    compared = {"news_ablation": news_ablation} if news_ablation is not None else {}
    return json_ready(
        {
            "format": REPORT_FORMAT,
            "dataset": run.spec.dataset.describe(),
            "window": run.spec.describe(),
            "fill": run.settings.evals.fill,
            "metrics": scores.metrics,
            "baselines": scores.baselines,
            "decisions": scores.counts,
            "reproducibility": {
                "temperature": manifest["llm"]["temperature"],
                "seed": manifest["llm"]["seed"],
                "git_commit": manifest["git"]["commit"],
                "git_dirty": manifest["git"]["dirty"],
                "dataset_sha256": run.spec.dataset.sha256,
                "llm_cache": manifest["cache"]["llm"],
            },
            "run": {
                "elapsed_s": round(run.elapsed_s, 3),
                "decisions_per_s": round(len(run.rows) / run.elapsed_s, 2)
                if run.elapsed_s > 0
                else None,
                "stopped": run.stopped,
            },
            **news,
            **compared,
            "files": FILES,
        }
    )


def write_run(
    out_dir: Path,
    run: EvalRun,
    scores: Scores,
    manifest: dict[str, Any],
    *,
    plots: bool = True,
    news_ablation: dict[str, Any] | None = None,
) -> dict:
    """Write every file of the run to ``out_dir``; returns the report. ``plots`` False skips
    the PNG files (a walk-forward draws its own, once, instead of two per window);
    ``news_ablation`` is the comparison with the same run without news, if made."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report = build_report(run, scores, manifest, news_ablation)
    write_json(out_dir / FILES["manifest"], manifest)
    write_decisions(out_dir, run.rows)
    with (out_dir / FILES["trades"]).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(TRADE_COLUMNS))
        writer.writeheader()
        writer.writerows(trade.as_dict() for trade in scores.trades)
    scores.curves.to_csv(out_dir / FILES["curves"], index_label="time")
    if plots:
        plot_equity(scores.curves, out_dir / FILES["equity_plot"])
        plot_drawdown(scores.curves, out_dir / FILES["drawdown_plot"])
    (out_dir / FILES["markdown"]).write_text(markdown(report, plots=plots), encoding="utf-8")
    write_json(out_dir / FILES["report"], report)
    return report


def write_decisions(out_dir: Path, rows: list[dict[str, Any]]) -> None:
    """decisions.jsonl: one JSON line per decision."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / FILES["decisions"]).open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(json_ready(row), sort_keys=True, default=str) + "\n")


def load_report(run_dir: Path) -> dict[str, Any]:
    """The report.json of a run directory (ValueError naming what is missing)."""
    path = run_dir / FILES["report"]
    if not path.is_file():
        raise ValueError(f"{run_dir} has no {FILES['report']}: is it an eval --out directory?")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None


# --- plots ---------------------------------------------------------------------------------


def new_figure(title: str) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4.8), dpi=100)
    FigureCanvasAgg(figure)  # the Agg canvas: no display, no global pyplot state
    axes = figure.add_subplot(1, 1, 1)
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    return figure, axes


def _strategies(curves: pd.DataFrame) -> list[str]:
    return [c for c in curves.columns if c not in ("position", "price")]


def plot_equity(curves: pd.DataFrame, path: Path) -> None:
    """Equity of the desk and the baselines, each relative to its start."""
    figure, axes = new_figure("Equity (1.0 = starting cash)")
    for name in _strategies(curves):
        series = curves[name] / curves[name].iloc[0]
        axes.plot(curves.index, series, label=name, linewidth=2.2 if name == "desk" else 1.2)
    axes.legend(loc="best")
    figure.autofmt_xdate()
    figure.savefig(path, bbox_inches="tight")


def plot_drawdown(curves: pd.DataFrame, path: Path) -> None:
    """Drawdown from the running peak of the desk and the baselines."""
    figure, axes = new_figure("Drawdown from the running peak")
    for name in _strategies(curves):
        falls = -metrics.drawdowns(curves[name].to_numpy()) * 100
        axes.plot(curves.index, falls, label=name, linewidth=2.2 if name == "desk" else 1.2)
    axes.set_ylabel("%")
    axes.legend(loc="best")
    figure.autofmt_xdate()
    figure.savefig(path, bbox_inches="tight")


# --- markdown ------------------------------------------------------------------------------


def fmt(name: str, value: Any) -> str:
    """A metric for people: percentages, 2-3 decimals, 'n/a' for undefined."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if name in PERCENT:
            return f"{value * 100:.2f}%"
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def fmt_interval(name: str, value: dict[str, Any]) -> str:
    """An estimate with its interval, ``{"estimate", "low", "high"}``, as "x [low, high]"."""
    return f"{fmt(name, value['estimate'])} [{fmt(name, value['low'])}, {fmt(name, value['high'])}]"


def markdown(report: dict[str, Any], *, plots: bool = True) -> str:
    """The report as Markdown (linking the plots when they were drawn)."""
    data, window, m = report["dataset"], report["window"], report["metrics"]
    names = ["desk", *report["baselines"]]
    rows = [
        "cumulative_return",
        "sharpe",
        "sortino",
        "max_drawdown",
        "win_rate",
        "exposure",
        "trades",
        "final_equity",
    ]
    table = ["| metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for row in rows:
        values = [m.get(row)] + [b.get(row) for b in report["baselines"].values()]
        table.append(f"| {row} | " + " | ".join(fmt(row, v) for v in values) + " |")
    quality = [
        "directional_accuracy",
        "directional_decisions",
        "schema_valid_rate",
        "risk_violations",
        "persona_grounding_errors",
        "calls_per_decision",
        "tokens_per_decision",
        "llm_failed_calls",
        "latency_p50_ms",
        "latency_p95_ms",
    ]
    repro = report["reproducibility"]
    cache = repro.get("llm_cache") or {}
    lines = [
        f"# Eval: {data['name']} ({data['symbol']})",
        "",
        f"{window['decisions']} decisions from {window['start']} to {window['end']}, every "
        f"{window['every']}; directional accuracy at a {window['horizon']} horizon. "
        f"Counts: {report['decisions']}. {FILL_LINES[report.get('fill', 'close')]}",
        "",
        "## Returns and risk (desk against the baselines, same window, cadence and costs)",
        "",
        *table,
        "",
        "## Decision quality, cost and latency",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {q} | {fmt(q, m.get(q))} |" for q in quality],
        "",
        *(["![equity](equity.png)", "", "![drawdown](drawdown.png)", ""] if plots else []),
        *_news_lines(report),
        "## Reproducibility",
        "",
        f"- temperature {repro['temperature']}, seed {repro['seed']}",
        f"- code: commit {repro['git_commit'] or 'unknown'}"
        f"{' (with local changes)' if repro['git_dirty'] else ''}",
        f"- dataset sha256 {repro['dataset_sha256']}",
        f"- LLM cache: {_cache_line(cache)}",
        f"- run time {report['run']['elapsed_s']} s ({report['run']['decisions_per_s']} "
        "decisions/s); details in manifest.json",
        "",
    ]
    return "\n".join(lines)


def _news_lines(report: dict[str, Any]) -> list[str]:
    news = report.get("news")
    if not news:
        return []
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(news["dropped"].items())) or "none"
    lines = [
        "## News",
        "",
        f"Read from {', '.join(news['sources'])}: {news['items_read']} distinct items in "
        f"{news['decisions_with_news']} decisions. Records left out: {dropped}.",
        "",
    ]
    if report.get("news_ablation"):
        lines += markdown_section(report["news_ablation"], fmt)
    return lines


def _cache_line(cache: dict[str, Any]) -> str:
    if not cache:
        return "off"
    return (
        f"{cache['hits']} hits, {cache['misses']} misses, {cache['entries']} entries in "
        f"{cache['path']}"
    )


def json_ready(value: Any) -> Any:
    """NaN and infinities as None (JSON has neither), numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, payload: Any) -> None:
    path.write_text(
        json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8"
    )

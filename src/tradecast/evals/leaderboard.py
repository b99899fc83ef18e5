"""A leaderboard of eval runs (models, prompts, settings): ranked by Sharpe with bootstrap
intervals, each run tested against the leader on their common bars, and the probability of
backtest overfitting when every run covers the same bars.

A run is an ``eval`` directory (its desk curve) or a ``walk-forward`` directory (its chained
out-of-sample series of the full desk, or of the first configuration it ran).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradecast.evals import metrics, stats
from tradecast.evals.document import Document
from tradecast.evals.oos import deflated_sharpe, paired_test, performance_intervals
from tradecast.evals.report import (
    fmt,
    fmt_interval,
    json_ready,
    load_report,
    new_figure,
    write_json,
)
from tradecast.market.closed_bars import parse_timeframe

MAX_RUNS = 100
MIN_COMMON_BARS = 30
"""Fewer common bars than this and two runs are not tested against each other."""


def run_returns(run_dir: Path) -> tuple[dict[str, Any], pd.Series]:
    """A run's report and its desk's per-bar returns (ValueError when it is not a run)."""
    report = load_report(run_dir)
    if str(report.get("format", "")).startswith("tradecast-walk-forward"):
        frame = pd.read_csv(run_dir / "oos.csv", header=[0, 1], index_col=0, parse_dates=True)
        name = (
            "full" if "full" in report["configurations"] else next(iter(report["configurations"]))
        )
        return report, frame[(name, "desk")].dropna()
    curves = pd.read_csv(run_dir / "curves.csv", index_col=0, parse_dates=True)
    return report, curves["desk"].pct_change().iloc[1:]


def _model(run_dir: Path) -> str:
    """The models a run used, from its manifest (a walk-forward's first test run's)."""
    manifests = [run_dir / "manifest.json", *sorted(run_dir.glob("*/window-*/test/manifest.json"))]
    found = next((m for m in manifests if m.is_file()), None)
    if found is None:
        return "?"
    roles = json.loads(found.read_text(encoding="utf-8")).get("llm", {}).get("roles", {})
    names = sorted({str(r.get("model") or r.get("backend")) for r in roles.values()})
    return ", ".join(Path(n).name for n in names) or "?"


def leaderboard(run_dirs: Sequence[Path], *, draws: int = 2000, seed: int = 7) -> dict[str, Any]:
    """Rank ``run_dirs`` by out-of-sample Sharpe with intervals and significance.

    Raises:
        ValueError: fewer than 2 or more than ``MAX_RUNS`` runs, a directory that is not a
            run, or runs on bars of different lengths.
    """
    if not 2 <= len(run_dirs) <= MAX_RUNS:
        raise ValueError(f"compare needs 2 to {MAX_RUNS} runs (got {len(run_dirs)})")
    loaded = {str(d): run_returns(d) for d in run_dirs}
    timeframes = {r["dataset"]["timeframe"] for r, _ in loaded.values()}
    if len(timeframes) > 1:
        raise ValueError(
            f"runs on different bar lengths cannot be ranked together: {sorted(timeframes)}"
        )
    periods = metrics.periods_per_year(parse_timeframe(timeframes.pop()))
    rows = []
    for name, (report, returns) in loaded.items():
        values = returns.to_numpy()
        rows.append(
            {
                "run": name,
                "dataset": report["dataset"]["name"],
                "model": _model(Path(name)),
                "bars": len(values),
                **performance_intervals(values, periods, draws=draws, seed=seed),
            }
        )
    # an undefined Sharpe (a desk that never traded) ranks last, never first
    rows.sort(key=lambda r: np.inf if r["sharpe"]["estimate"] is None else -r["sharpe"]["estimate"])
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    series = {name: returns for name, (_, returns) in loaded.items()}
    data = {name: report["dataset"]["sha256"] for name, (report, _) in loaded.items()}
    leader = rows[0]["run"]
    for row in rows[1:]:
        if data[row["run"]] != data[leader]:
            row["versus_leader"] = {"comparable": False, "reason": "another dataset"}
            continue
        row["versus_leader"] = _versus(series[row["run"]], series[leader], periods, draws, seed)
    return json_ready(
        {
            "runs": rows,
            "leader": leader,
            "overfitting": _overfitting(series) if len(set(data.values())) == 1 else None,
            "deflated_sharpe_of_leader": deflated_sharpe(series[leader].to_numpy(), len(rows)),
            "statistics": {"bootstrap_draws": draws, "seed": seed, "periods_per_year": periods},
        }
    )


def _versus(
    run: pd.Series, leader: pd.Series, periods: float, draws: int, seed: int
) -> dict[str, Any]:
    """``run`` against the leader on their common bars: the difference is run minus leader
    (as a configuration minus a baseline), ``p_value`` the one-sided p that the run earns
    more, ``p_leader_better`` that the leader does."""
    common = run.index.intersection(leader.index)
    if len(common) < MIN_COMMON_BARS:
        return {"comparable": False, "reason": f"{len(common)} common bars"}
    test = paired_test(
        run.loc[common].to_numpy(), leader.loc[common].to_numpy(), periods, draws=draws, seed=seed
    )
    better = paired_test(
        leader.loc[common].to_numpy(), run.loc[common].to_numpy(), periods, draws=draws, seed=seed
    )["p_value"]
    return {
        "comparable": True,
        "common_bars": len(common),
        **test,
        "p_leader_better": better,
        "leader_significantly_better": better is not None and better < 0.05,
    }


def _overfitting(series: dict[str, pd.Series]) -> dict[str, Any] | None:
    matrix = pd.concat(series, axis=1).dropna()
    matrix = matrix.T.drop_duplicates().T  # the same run twice is one configuration
    if matrix.shape[1] < 2:
        return None
    splits = min(16, (len(matrix) // 4) // 2 * 2)
    if splits < 2 or len(matrix) < MIN_COMMON_BARS:
        return None
    result = stats.probability_of_backtest_overfitting(matrix.to_numpy(), splits=splits)
    return {
        "pbo": result.pbo,
        "splits": splits,
        "combinations": result.combinations,
        "bars": len(matrix),
    }


def write_leaderboard(board: dict[str, Any], out: Path) -> None:
    """leaderboard.json, .md, .html and leaderboard.png into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "leaderboard.json", board)
    _plot(board, out / "leaderboard.png")
    doc = Document("Leaderboard", out)
    doc.paragraph(
        "Runs ranked by out-of-sample Sharpe with 95% stationary block-bootstrap intervals; "
        "each run is tested against the leader on their common bars of the same dataset: its "
        "mean return minus the leader's (annualised), and the one-sided paired block-bootstrap "
        "p-value that the leader earns more per bar."
    )
    doc.table(
        [
            "rank",
            "run",
            "model",
            "bars",
            "Sharpe [95% CI]",
            "return [95% CI]",
            "max drawdown",
            "vs leader (p leader better)",
        ],
        table_rows(board),
    )
    pbo, dsr = board["overfitting"], board["deflated_sharpe_of_leader"]
    if pbo is not None:
        doc.paragraph(
            f"Probability of backtest overfitting over the runs (CSCV, {pbo['splits']} "
            f"blocks): {fmt('pbo', pbo['pbo'])}."
        )
    doc.paragraph(
        f"Deflated Sharpe ratio of the leader given {len(board['runs'])} runs tried: "
        f"{fmt('dsr', dsr)}."
    )
    doc.image("leaderboard.png", "Sharpe of each run with its interval")
    doc.write("leaderboard")


def table_rows(board: dict[str, Any]) -> list[list[str]]:
    """The leaderboard as table cells (for the terminal, Markdown and HTML)."""
    rows = []
    for row in board["runs"]:
        versus = row.get("versus_leader")
        if versus is None:
            against = "leader"
        elif not versus["comparable"]:
            against = f"not comparable ({versus['reason']})"
        else:
            difference = f"{versus['annualised_mean_difference'] * 100:+.2f}% a year"
            against = f"{difference} (p leader better={fmt('p', versus['p_leader_better'])})"
        rows.append(
            [
                str(row["rank"]),
                row["run"],
                row["model"],
                str(row["bars"]),
                fmt_interval("sharpe", row["sharpe"]),
                fmt_interval("cumulative_return", row["cumulative_return"]),
                fmt("max_drawdown", row["max_drawdown"]["estimate"]),
                against,
            ]
        )
    return rows


def _plot(board: dict[str, Any], path: Path) -> None:
    figure, axes = new_figure("Sharpe ratio with 95% bootstrap interval")
    runs = list(reversed(board["runs"]))
    names = [Path(r["run"]).name for r in runs]
    middle = [r["sharpe"]["estimate"] or 0.0 for r in runs]
    low = [
        m - (r["sharpe"]["low"] if r["sharpe"]["low"] is not None else m)
        for m, r in zip(middle, runs, strict=True)
    ]
    high = [
        (r["sharpe"]["high"] if r["sharpe"]["high"] is not None else m) - m
        for m, r in zip(middle, runs, strict=True)
    ]
    axes.errorbar(middle, names, xerr=[low, high], fmt="o", capsize=4)
    axes.axvline(0, color="black", linewidth=0.8)
    figure.savefig(path, bbox_inches="tight")

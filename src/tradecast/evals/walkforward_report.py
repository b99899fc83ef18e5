"""Writes a walk-forward: report.json, report.md, a self-contained report.html, the chained
out-of-sample returns (oos.csv), one row per window (windows.csv) and the plots.

Each (ablation, window) test run keeps its own eval report under ``ABLATION/window-NNN/test``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from tradecast.evals import metrics, oos
from tradecast.evals.costs import Prices, cost_summary
from tradecast.evals.document import Document
from tradecast.evals.report import fmt, fmt_interval, json_ready, new_figure, write_json
from tradecast.evals.walkforward import WalkForwardSpec, WindowResult

REPORT_FORMAT = "tradecast-walk-forward/1"
FILL_PRICES = {"close": "decision's close", "next_open": "next bar's open"}


def write_walk_forward(
    spec: WalkForwardSpec,
    results: Sequence[WindowResult],
    skipped: Sequence[str],
    *,
    prices: Prices,
    trials: int | None,
    draws: int,
    seed: int,
    token_budget: int | None,
    fill: str = "close",
) -> dict[str, Any]:
    """Score the finished windows, write every file into ``spec.out_dir``; returns the report."""
    periods = metrics.periods_per_year(spec.dataset.interval)
    scored = [r for r in results if r.scored]
    frames: dict[str, pd.DataFrame] = {
        a: oos.chained_returns([r for r in scored if r.ablation == a])
        for a in spec.ablations
        if any(r.ablation == a for r in scored)
    }
    trials = trials or len(spec.ablations)
    configurations = {}
    for name, frame in frames.items():
        summary = oos.summarize(frame, periods, draws=draws, seed=seed, trials=trials)
        excess = summary["versus"].get(oos.BENCHMARK, {}).get("cumulative_return_difference")
        spent = [r.cost for r in results if r.ablation == name]
        summary["cost"] = cost_summary(spent, prices, excess)
        summary["windows"] = [_window_row(r) for r in scored if r.ablation == name]
        configurations[name] = summary
    report = json_ready(
        {
            "format": REPORT_FORMAT,
            "dataset": spec.dataset.describe(),
            "out_dir": str(spec.out_dir),
            "plan": spec.describe() | {"fill": fill},
            "windows": [w.describe() for w in spec.windows],
            "ablations": list(spec.ablations),
            "configurations": configurations,
            "baselines": _baselines(frames, periods, draws=draws, seed=seed),
            "contributions": oos.contributions(frames, periods, draws=draws, seed=seed),
            "overfitting": oos.overfitting(frames),
            "regimes": _regimes(spec, frames, periods),
            "statistics": {"bootstrap_draws": draws, "seed": seed, "trials": trials},
            "must_be_zero": {
                key: sum(r.must_be_zero.get(key, 0) for r in results)
                for key in ("risk_violations", "persona_grounding_errors")
            },
            "skipped": list(skipped),
            "stopped": _stopped(results, skipped, token_budget),
        }
    )
    _write_files(spec.out_dir, report, frames)
    return report


def _baselines(
    frames: dict[str, pd.DataFrame], periods: float, *, draws: int, seed: int
) -> dict[str, Any]:
    """The baselines over the reference configuration's bars (every configuration runs on
    the same windows, so they are the same bars for all)."""
    if not frames:
        return {}
    reference = "full" if "full" in frames else next(iter(frames))
    return oos.baseline_performance(frames[reference], periods, draws=draws, seed=seed)


def _regimes(
    spec: WalkForwardSpec, frames: dict[str, pd.DataFrame], periods: float
) -> dict[str, Any] | None:
    """The reference configuration (the full desk if it ran) by market regime; None when
    nothing was scored or the bars are too long to label."""
    if not frames:
        return None
    reference = "full" if "full" in frames else next(iter(frames))
    closes = pd.Series(
        spec.dataset.frame["close"].to_numpy(),
        index=spec.dataset.frame.index + spec.dataset.interval,
    )
    bars_per_day = timedelta(days=1) / spec.dataset.interval
    try:
        split = oos.regime_split(closes, frames[reference], periods, bars_per_day)
    except ValueError:
        return None
    return {"configuration": reference, "split": split}


def _window_row(result: WindowResult) -> dict[str, Any]:
    m, hold = result.metrics, result.baselines.get(oos.BENCHMARK, {})
    return {
        "window": result.window,
        "start": result.times[0],
        "end": result.times[-1],
        "decisions": m["decisions"],
        "cumulative_return": m["cumulative_return"],
        "sharpe": m["sharpe"],
        "max_drawdown": m["max_drawdown"],
        "buy_and_hold_return": hold.get("cumulative_return"),
        "directional_accuracy": m["directional_accuracy"],
        "tokens_per_decision": m["tokens_per_decision"],
        "stopped": result.stopped,
        "report": result.test_dir,
    }


def _stopped(
    results: Sequence[WindowResult], skipped: Sequence[str], budget: int | None
) -> str | None:
    """Why the walk did not run every pair in full (None when it did)."""
    reasons = [r.stopped for r in results if r.stopped]
    if skipped:
        spent = f"token budget of {budget:,} spent" if budget else "not run"
        reasons.append(f"{len(skipped)} pair(s) not started ({spent})")
    return "; ".join(reasons) or None


# --- files ---------------------------------------------------------------------------------


def _write_files(
    out: Path,
    report: dict[str, Any],
    frames: dict[str, pd.DataFrame],
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", report)
    if frames:
        pd.concat(frames, axis=1).to_csv(out / "oos.csv", index_label="time")
        _plot_equity(frames, out / "oos_equity.png")
    rows = [
        {"ablation": name, **row}
        for name, summary in report["configurations"].items()
        for row in summary["windows"]
    ]
    pd.DataFrame(rows).to_csv(out / "windows.csv", index=False)
    if report["contributions"]:
        _plot_contributions(report["contributions"], out / "contributions.png")
    if report["regimes"] is not None:
        _plot_regimes(report["regimes"]["split"], out / "regimes.png")
    _document(report, out).write()


def _plot_equity(frames: dict[str, pd.DataFrame], path: Path) -> None:
    figure, axes = new_figure("Out-of-sample equity, test windows chained (1.0 = start)")
    for name, frame in frames.items():
        axes.plot(frame.index, oos.equity_from(frame["desk"])[1:], label=name, linewidth=1.6)
    first = next(iter(frames.values()))
    axes.plot(
        first.index,
        oos.equity_from(first[oos.BENCHMARK])[1:],
        label="buy and hold",
        color="black",
        linewidth=1.0,
        linestyle="--",
    )
    axes.legend(loc="best")
    figure.autofmt_xdate()
    figure.savefig(path, bbox_inches="tight")


def _plot_contributions(rows: list[dict[str, Any]], path: Path) -> None:
    figure, axes = new_figure(
        "What each component earns: full desk minus the ablation (annualised mean return, 95% CI)"
    )
    names = [r["component"] for r in rows]
    middle = [r["annualised_mean_difference"] for r in rows]
    low = [m - r["annualised_low"] for m, r in zip(middle, rows, strict=True)]
    high = [r["annualised_high"] - m for m, r in zip(middle, rows, strict=True)]
    axes.barh(names, middle, xerr=[low, high], color="#4a7bd0", capsize=4)
    axes.axvline(0, color="black", linewidth=0.8)
    figure.savefig(path, bbox_inches="tight")


def _plot_regimes(split: dict[str, dict[str, Any]], path: Path) -> None:
    figure, axes = new_figure("Cumulative return by market regime: desk against buy and hold")
    names = list(split)
    xs = range(len(names))
    axes.bar(
        [x - 0.2 for x in xs],
        [split[n]["desk_return"] * 100 for n in names],
        width=0.4,
        label="desk",
    )
    axes.bar(
        [x + 0.2 for x in xs],
        [split[n]["benchmark_return"] * 100 for n in names],
        width=0.4,
        label="buy and hold",
    )
    axes.set_xticks(list(xs), names)
    axes.set_ylabel("%")
    axes.legend(loc="best")
    figure.savefig(path, bbox_inches="tight")


def _document(report: dict[str, Any], out: Path) -> Document:
    data, plan = report["dataset"], report["plan"]
    doc = Document(f"Walk-forward: {data['name']} ({data['symbol']})", out)
    doc.paragraph(
        f"{plan['windows']} windows; each trains the memory on "
        f"{'every decision since the start' if plan['anchored'] else plan['train']} (a "
        f"decision every {plan['every']}), then scores the "
        f"next {plan['test']} with fresh cash (step {plan['step']}); orders fill at the "
        f"{FILL_PRICES.get(plan['fill'], plan['fill'])}. Intervals are 95% "
        f"stationary block bootstrap over {report['statistics']['bootstrap_draws']} draws "
        f"(seed {report['statistics']['seed']}); p-values are one-sided paired block-bootstrap "
        "tests of the mean per-bar return difference."
    )
    if report["stopped"]:
        doc.paragraph(f"Stopped early: {report['stopped']}.")
    _configuration_tables(doc, report)
    _contribution_table(doc, report)
    _regime_table(doc, report)
    _cost_table(doc, report)
    _window_table(doc, report)
    return doc


def _configuration_tables(doc: Document, report: dict[str, Any]) -> None:
    doc.heading("Out of sample, per configuration")
    if not report["configurations"]:
        doc.paragraph("No test window was scored.")
        return
    rows = []
    for name, c in report["configurations"].items():
        rows.append(
            [
                name,
                str(c["bars"]),
                fmt_interval("cumulative_return", c["cumulative_return"]),
                fmt_interval("sharpe", c["sharpe"]),
                fmt_interval("max_drawdown", c["max_drawdown"]),
                fmt("dsr", c["deflated_sharpe"]),
            ]
        )
    for name, b in report.get("baselines", {}).items():
        rows.append(
            [
                f"baseline: {name}",
                str(b["bars"]),
                fmt_interval("cumulative_return", b["cumulative_return"]),
                fmt_interval("sharpe", b["sharpe"]),
                fmt_interval("max_drawdown", b["max_drawdown"]),
                "",
            ]
        )
    doc.table(
        [
            "configuration",
            "bars",
            "return [95% CI]",
            "Sharpe [95% CI]",
            "max drawdown [95% CI]",
            "deflated Sharpe ratio",
        ],
        rows,
    )
    baselines = list(next(iter(report["configurations"].values()))["versus"])
    doc.heading("Against the baselines (same bars and costs)")
    doc.table(
        ["configuration", *[f"vs {b}: excess return (p)" for b in baselines]],
        [
            [
                name,
                *[_versus_cell(c["versus"][b]) for b in baselines],
            ]
            for name, c in report["configurations"].items()
        ],
    )
    pbo = report["overfitting"]
    if pbo is not None:
        doc.paragraph(
            f"Probability of backtest overfitting across the {len(report['configurations'])} "
            f"configurations (CSCV, {pbo['splits']} blocks, {pbo['combinations']} combinations): "
            f"{fmt('pbo', pbo['pbo'])}. Near 0.5 or above, picking the best configuration in "
            "sample says nothing about out of sample."
        )
    doc.image("oos_equity.png", "out-of-sample equity per configuration")


def _versus_cell(test: dict[str, Any]) -> str:
    difference = fmt("cumulative_return", test["cumulative_return_difference"])
    return f"{difference} (p={fmt('p', test['p_value'])})"


def _contribution_table(doc: Document, report: dict[str, Any]) -> None:
    rows = report["contributions"]
    if not rows:
        return
    doc.heading("Ablations: what each component earns (full desk minus the desk without it)")
    doc.table(
        [
            "component",
            "ablation",
            "annualised mean return difference [95% CI]",
            "p (helps)",
            "Sharpe full / without",
        ],
        [
            [
                r["component"],
                r["ablation"],
                f"{_pct(r['annualised_mean_difference'])} "
                f"[{_pct(r['annualised_low'])}, {_pct(r['annualised_high'])}]",
                fmt("p", r["p_value"]),
                f"{fmt('sharpe', r['sharpe_full'])} / {fmt('sharpe', r['sharpe_without'])}",
            ]
            for r in rows
        ],
    )
    doc.image("contributions.png", "contribution of each component with intervals")


def _regime_table(doc: Document, report: dict[str, Any]) -> None:
    regimes = report["regimes"]
    if regimes is None:
        return
    doc.heading(f"By market regime ({regimes['configuration']})")
    doc.paragraph(
        "Regimes are labelled from trailing returns and volatility known before each bar."
    )
    doc.table(
        ["regime", "bars", "desk return", "buy and hold", "desk Sharpe", "desk helped or hurt"],
        [
            [
                name,
                str(row["bars"]),
                fmt("cumulative_return", row["desk_return"]),
                fmt("cumulative_return", row["benchmark_return"]),
                fmt("sharpe", row["desk_sharpe"]),
                str(row["outcome"]),
            ]
            for name, row in regimes["split"].items()
        ],
    )
    doc.image("regimes.png", "cumulative return by regime")


def _pct(value: float) -> str:
    return f"{value * 100:+.2f}%"


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _cost_table(doc: Document, report: dict[str, Any]) -> None:
    doc.heading("Cost (training runs included)")
    doc.table(
        [
            "configuration",
            "decisions",
            "tokens/decision",
            "LLM call s/decision",
            "wall s/decision",
            "money/decision",
            "money/window",
            "money per point of excess return",
        ],
        [
            [
                name,
                str(c["cost"]["decisions"]),
                fmt("x", c["cost"]["tokens_per_decision"]),
                fmt("x", c["cost"]["llm_seconds_per_decision"]),
                fmt("x", c["cost"]["decision_seconds"]),
                _money(c["cost"]["money_per_decision"]),
                _money(c["cost"]["money_per_window"]),
                _money(c["cost"]["money_per_point_of_excess_return"]),
            ]
            for name, c in report["configurations"].items()
        ],
    )


def _window_table(doc: Document, report: dict[str, Any]) -> None:
    doc.heading("Per window")
    doc.table(
        [
            "configuration",
            "window",
            "test from",
            "to",
            "decisions",
            "return",
            "buy and hold",
            "Sharpe",
            "max drawdown",
        ],
        [
            [
                name,
                str(w["window"]),
                w["start"][:16],
                w["end"][:16],
                str(w["decisions"]),
                fmt("cumulative_return", w["cumulative_return"]),
                fmt("cumulative_return", w["buy_and_hold_return"]),
                fmt("sharpe", w["sharpe"]),
                fmt("max_drawdown", w["max_drawdown"]),
            ]
            for name, c in report["configurations"].items()
            for w in c["windows"]
        ],
    )

"""The report of a portfolio run: portfolio metrics, exposure and VaR over time, per-symbol
P&L, and the limits re-checked at every tick.

Written to ``OUT``: ``report.json`` (everything), ``report.md`` (for people), ``ticks.csv`` and
``decisions.csv`` (one row per tick, one per symbol and tick), and ``portfolio.png`` (equity
against an equal-weight buy-and-hold of the same symbols, exposure, VaR and CVaR against their
limits, per-symbol P&L).

Per-symbol P&L comes from the broker's fills alone: what the symbol's sells brought in minus
what its buys cost (fees included), plus what is still held at the last mark. Borrow fees of a
margin account are one line of their own; the symbols' P&L, fees and borrow add up to the
book's P&L.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradecast.domain import Fill, Portfolio, Side
from tradecast.evals import metrics
from tradecast.evals.portfolio import PortfolioRun
from tradecast.evals.report import new_figure

ZERO = Decimal(0)


def symbol_pnl(fills: list[Fill], book: Portfolio, symbols: Sequence[str] = ()) -> dict[str, float]:
    """Each symbol's P&L from its fills (fees included) and what it still holds at the mark;
    ``symbols`` are listed even when they never traded."""
    cash: dict[str, Decimal] = defaultdict(Decimal, dict.fromkeys(symbols, ZERO))
    for fill in fills:
        notional = fill.quantity * fill.price
        cash[fill.symbol] += (-notional if fill.side is Side.BUY else notional) - fill.fee
    for position in book.positions:
        price = book.prices.get(position.symbol, position.avg_price)
        cash[position.symbol] += position.market_value(price)
    return {symbol: float(value) for symbol, value in sorted(cash.items())}


def portfolio_summary(run: PortfolioRun) -> dict[str, Any]:
    """The run's portfolio metrics, exposure, VaR and per-symbol attribution."""
    ticks = pd.DataFrame(run.ticks)
    equity = ticks["equity"].to_numpy(dtype=float)
    periods = metrics.periods_per_year(run.spec.every)
    returns = metrics.simple_returns(equity)
    start_cash = float(run.settings.broker.starting_cash)
    hold = buy_and_hold(ticks, start_cash)
    pnl = symbol_pnl(run.fills, run.portfolio, run.spec.symbols)
    calls = [n for row in run.ticks for n in row["llm_calls"].values()]
    var = ticks["var"].dropna()
    return {
        "window": run.spec.describe(),
        "datasets": [d.describe() for d in run.spec.datasets],
        "ticks": len(run.ticks),
        "total_return": float(equity[-1] / start_cash - 1),
        "buy_and_hold_return": float(hold[-1] / start_cash - 1),
        "sharpe": metrics.sharpe_ratio(returns, periods),
        "max_drawdown": metrics.max_drawdown(np.concatenate([[start_cash], equity])),
        "final_equity": float(equity[-1]),
        "fills": len(run.fills),
        "fees": float(sum((f.fee for f in run.fills), ZERO)),
        "borrow_paid": float(getattr(run.portfolio, "borrow_paid", ZERO)),
        "symbol_pnl": pnl,
        "exposure": {
            "mean_gross": float(ticks["gross"].mean()),
            "max_gross": float(ticks["gross"].max()),
            "mean_net": float(ticks["net"].mean()),
            "max_net": float(ticks["net"].max()),
        },
        "var": {
            "ticks_with_var": len(var),
            "max_var": float(var.max()) if len(var) else None,
            "max_cvar": float(ticks["cvar"].dropna().max()) if len(var) else None,
        },
        "limits": {k: str(v) for k, v in run.settings.risk.model_dump().items()},
        "risk_violations": sum(len(row["violations"]) for row in run.ticks),
        "persona_grounding_errors": sum(len(row["grounding_errors"]) for row in run.ticks),
        "ticks_over_a_limit_by_prices": sum(
            1 for row in run.ticks if row["over_limits"] and not row["violations"]
        ),
        "llm_calls_per_symbol_per_tick": {
            "max": max(calls) if calls else 0,
            "mean": float(np.mean(calls)) if calls else 0.0,
        },
        "tick_wall_s": {
            "median": float(ticks["wall_s"].median()),
            "max": float(ticks["wall_s"].max()),
        },
        "elapsed_s": run.elapsed_s,
        "models": run.models,
    }


def buy_and_hold(ticks: pd.DataFrame, start_cash: float) -> np.ndarray:
    """Equity of an equal-weight buy-and-hold of the book's symbols from the first tick."""
    prices = pd.DataFrame(list(ticks["prices"])).ffill().bfill()
    if prices.empty:
        return np.full(len(ticks), start_cash)
    relative = prices / prices.iloc[0]
    return (relative.mean(axis=1) * start_cash).to_numpy(dtype=float)


def write_portfolio_report(run: PortfolioRun, out: Path) -> dict[str, Any]:
    """Write the run's report files into ``out``; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    summary = portfolio_summary(run)
    (out / "report.json").write_text(
        json.dumps({"summary": summary, "ticks": run.ticks}, indent=2, default=str),
        encoding="utf-8",
    )
    pd.DataFrame(run.ticks).to_csv(out / "ticks.csv", index=False)
    pd.DataFrame(run.decisions).to_csv(out / "decisions.csv", index=False)
    plot_portfolio(run, summary, out / "portfolio.png")
    (out / "report.md").write_text(markdown(summary), encoding="utf-8")
    return summary


def plot_portfolio(run: PortfolioRun, summary: dict[str, Any], path: Path) -> None:
    """Equity, exposure, VaR and per-symbol P&L, one panel each."""
    ticks = pd.DataFrame(run.ticks)
    when = pd.to_datetime(ticks["at"])
    start_cash = float(run.settings.broker.starting_cash)
    limits = run.settings.risk
    figure, axes = new_figure("Portfolio")
    figure.set_size_inches(11, 11)
    figure.delaxes(axes)
    panels = figure.subplots(4, 1)
    panels[0].plot(when, ticks["equity"] / start_cash, label="desk", linewidth=2)
    panels[0].plot(when, buy_and_hold(ticks, start_cash) / start_cash, label="equal-weight hold")
    panels[0].set_title("Equity (1.0 = starting cash)")
    panels[1].plot(when, ticks["gross"] * 100, label="gross")
    panels[1].plot(when, ticks["net"] * 100, label="net")
    panels[1].axhline(float(limits.max_gross_exposure_pct) * 100, linestyle="--", color="grey")
    panels[1].set_title("Exposure (% of equity; dashed: gross cap)")
    panels[2].plot(when, ticks["var"] * 100, label="VaR 95% 1d")
    panels[2].plot(when, ticks["cvar"] * 100, label="CVaR 95% 1d")
    panels[2].axhline(float(limits.max_var_pct) * 100, linestyle="--", color="C0")
    panels[2].axhline(float(limits.max_cvar_pct) * 100, linestyle=":", color="C1")
    panels[2].set_title("Historical VaR and CVaR (% of equity; lines: limits)")
    pnl = summary["symbol_pnl"]
    panels[3].bar(list(pnl), list(pnl.values()))
    panels[3].set_title("P&L by symbol (quote currency, fees included)")
    for panel in panels[:3]:
        panel.grid(True, alpha=0.3)
        panel.legend(loc="best")
        panel.tick_params(axis="x", labelrotation=20)
    figure.tight_layout()
    figure.savefig(path, bbox_inches="tight")


def markdown(summary: dict[str, Any]) -> str:
    """The summary for people."""
    window = summary["window"]
    lines = [
        f"# Portfolio run: {', '.join(window['symbols'])}",
        "",
        f"{window['start']} to {window['end']}, every {window['every']}, {summary['ticks']} ticks.",
        "",
        "| metric | value |",
        "|---|---|",
        f"| total return | {summary['total_return']:.2%} |",
        f"| equal-weight buy and hold | {summary['buy_and_hold_return']:.2%} |",
        f"| Sharpe (annualised) | {_num(summary['sharpe'])} |",
        f"| max drawdown | {summary['max_drawdown']:.2%} |",
        f"| fills | {summary['fills']} |",
        f"| fees | {summary['fees']:.2f} |",
        f"| borrow paid | {summary['borrow_paid']:.2f} |",
        f"| mean / max gross exposure | {summary['exposure']['mean_gross']:.1%} / "
        f"{summary['exposure']['max_gross']:.1%} |",
        f"| mean / max net exposure | {summary['exposure']['mean_net']:.1%} / "
        f"{summary['exposure']['max_net']:.1%} |",
        f"| max VaR / CVaR (95%, 1 day) | {_pct(summary['var']['max_var'])} / "
        f"{_pct(summary['var']['max_cvar'])} |",
        f"| risk violations (re-checked) | {summary['risk_violations']} |",
        f"| ungrounded persona sentences | {summary['persona_grounding_errors']} |",
        f"| ticks past a limit by prices alone | {summary['ticks_over_a_limit_by_prices']} |",
        f"| LLM calls per symbol per tick (max / mean) | "
        f"{summary['llm_calls_per_symbol_per_tick']['max']} / "
        f"{summary['llm_calls_per_symbol_per_tick']['mean']:.2f} |",
        "",
        "## P&L by symbol",
        "",
        "| symbol | P&L |",
        "|---|---|",
        *[f"| {symbol} | {value:.2f} |" for symbol, value in summary["symbol_pnl"].items()],
        "",
        "![portfolio](portfolio.png)",
        "",
    ]
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"

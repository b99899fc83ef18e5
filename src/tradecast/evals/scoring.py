"""Scores a finished run: the desk's returns and risk, decision quality, cost and latency,
and the rule baselines on the same window, cadence and costs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from tradecast.evals import metrics
from tradecast.evals.baselines import window_baselines
from tradecast.evals.ledger import (
    TradeRow,
    closed_trade_pnls,
    equity_curve,
    price_grid,
    trade_log,
)
from tradecast.evals.runner import EvalError, EvalRun
from tradecast.settings import BrokerConfig

BPS = Decimal(10_000)


@dataclass
class Scores:
    """A run's scores and the series behind them."""

    metrics: dict[str, Any]
    baselines: dict[str, dict[str, Any]]
    trades: list[TradeRow]
    curves: pd.DataFrame
    """Equity of the desk and of every baseline, plus the desk's position, per bar close."""
    counts: dict[str, int]


def baseline_cost_bps(config: BrokerConfig) -> float:
    """The paper broker's cost of one all-in trade of the starting cash, in bps: fee plus
    slippage plus size impact at that notional (the same cost model the desk pays)."""
    impact = config.slippage_impact_bps_per_1k * config.starting_cash / Decimal(1000)
    return float(config.fee_bps + config.slippage_bps + impact)


def score(run: EvalRun) -> Scores:
    """Every metric of ``run`` and its baselines."""
    spec, dataset = run.spec, run.spec.dataset
    broker = run.settings.broker
    trades = trade_log(run.fills, run.orders, broker.starting_cash)
    _check_books(trades, run)
    prices = price_grid(dataset.frame, dataset.interval, spec.start, _curve_end(run))
    curve = equity_curve(trades, prices, broker.starting_cash)
    desk = metrics.performance(
        curve["equity"], curve["position"], closed_trade_pnls(trades), dataset.interval
    )
    closes = pd.Series(
        dataset.frame["close"].to_numpy(), index=dataset.frame.index + dataset.interval
    )
    decided = pd.DatetimeIndex([pd.Timestamp(r["at"]) for r in run.rows])
    cost_bps = baseline_cost_bps(broker)
    rules = window_baselines(closes, prices.index, decided, float(broker.starting_cash), cost_bps)
    baselines = {}
    curves = pd.DataFrame(
        {"desk": curve["equity"], "position": curve["position"], "price": curve["price"]},
        index=prices.index,
    )
    for name, result in rules.items():
        scores = metrics.performance(
            result["equity"], result["positions"], result["trade_returns"], dataset.interval
        )
        scores["trades"] = int(np.count_nonzero(np.diff(result["positions"], prepend=0.0)))
        scores["final_equity"] = float(result["equity"][-1])
        scores["cost_bps_per_trade"] = cost_bps
        baselines[name] = scores
        curves[name] = result["equity"]
    forward = forward_returns(run.rows, closes, spec.horizon)
    for row, value in zip(run.rows, forward, strict=True):
        row["forward_return"] = value
    scored = {**desk, **decision_quality(run.rows, forward), **cost_and_latency(run.rows)}
    scored["trades"] = len(trades)
    scored["desk_orders"] = sum(1 for t in trades if t.trigger == "desk")
    scored["final_equity"] = float(curve["equity"].iloc[-1])
    scored["fees_paid"] = float(sum((t.fee for t in trades), Decimal(0)))
    counts = {
        action: sum(1 for r in run.rows if r["action"] == action)
        for action in ("BUY", "SELL", "HOLD")
    }
    return Scores(metrics=scored, baselines=baselines, trades=trades, curves=curves, counts=counts)


def _curve_end(run: EvalRun) -> datetime:
    """Where the curves end: the spec's end, or one cadence after the last decision of a run
    a budget stopped (its later bars were never traded, so they are not scored)."""
    end = run.spec.curve_end()
    if run.stopped is None or not run.rows:
        return end
    return min(end, datetime.fromisoformat(run.rows[-1]["at"]) + run.spec.every)


def forward_returns(
    rows: list[dict[str, Any]], closes: pd.Series, horizon: timedelta
) -> list[float | None]:
    """Return from the last close known at each decision to the last close known one
    ``horizon`` later (None when that is past the data)."""
    out: list[float | None] = []
    last_known = closes.index[-1]
    for row in rows:
        at = pd.Timestamp(datetime.fromisoformat(row["at"]))
        later = at + horizon
        if later > last_known:
            out.append(None)
            continue
        now_i = closes.index.searchsorted(at, side="right") - 1
        later_i = closes.index.searchsorted(later, side="right") - 1
        out.append(float(closes.iloc[later_i] / closes.iloc[now_i] - 1.0))
    return out


def decision_quality(rows: list[dict[str, Any]], forward: list[float | None]) -> dict[str, Any]:
    """Directional accuracy, schema-valid rate and the two must-be-zero counts."""
    accuracy, scored = metrics.directional_accuracy([r["action"] for r in rows], forward)
    schema_calls = sum(r["schema_calls"] for r in rows)
    return {
        "directional_accuracy": accuracy,
        "directional_decisions": scored,
        "schema_valid_rate": metrics.share(sum(r["schema_valid"] for r in rows), schema_calls),
        "risk_violations": sum(len(r["risk_violations"]) for r in rows),
        "persona_grounding_errors": sum(len(r["grounding_errors"]) for r in rows),
    }


def cost_and_latency(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """LLM calls and tokens per decision, failed calls, and tick latency percentiles."""
    count = len(rows)
    latency = [r["latency_ms"] for r in rows]
    return {
        "decisions": count,
        "calls_per_decision": sum(r["llm_calls"] for r in rows) / count,
        "tokens_per_decision": sum(r["prompt_tokens"] + r["completion_tokens"] for r in rows)
        / count,
        "prompt_tokens_per_decision": sum(r["prompt_tokens"] for r in rows) / count,
        "completion_tokens_per_decision": sum(r["completion_tokens"] for r in rows) / count,
        "llm_failed_calls": sum(r["llm_failed"] for r in rows),
        "latency_p50_ms": metrics.percentile(latency, 50),
        "latency_p95_ms": metrics.percentile(latency, 95),
    }


def _check_books(trades: list[TradeRow], run: EvalRun) -> None:
    """The rebuilt ledger must end where the broker's books end."""
    cash = trades[-1].cash_after if trades else run.settings.broker.starting_cash
    held = trades[-1].position_after if trades else Decimal(0)
    position = run.portfolio.position(run.spec.dataset.symbol)
    broker_held = position.quantity if position else Decimal(0)
    if abs(cash - run.portfolio.cash) > Decimal("0.0001") or held != broker_held:
        raise EvalError(
            f"the trade log does not add up to the broker's books: cash {cash} vs "
            f"{run.portfolio.cash}, position {held} vs {broker_held}"
        )

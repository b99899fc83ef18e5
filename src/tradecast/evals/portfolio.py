"""A portfolio replay: several datasets traded as one book by the portfolio desk.

``tradecast eval --portfolio --dataset A --dataset B`` opens the desk as :mod:`tradecast.evals.
runner` does (its own data dir, the run's memory, the tick's instant as the clock), with every
dataset in the replay market and ``desk.symbols`` set to their symbols, and ticks the portfolio
graph (:mod:`tradecast.graphs.portfolio`) at each instant: all symbols decided together,
reconciled against the one paper account, sent through the portfolio check and the per-order
gate.

Each tick records the book (equity, cash, exposure, VaR and CVaR), each symbol's decision and
what the broker did, and re-checks the limits after the fact
(:mod:`tradecast.evals.portfolio_checks`). Orders fill at the decision's close; a portfolio
run refuses ``--fill next_open``, which the fill wrapper supports for one dataset only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from langchain_core.caches import BaseCache
from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from tradecast.bootstrap.run_memory import MemoryKind
from tradecast.desk.loop import DeskLoop
from tradecast.desk.runtime import DeskRuntime
from tradecast.desk.timeline import ReplayTimeline
from tradecast.domain import Fill, Order, Portfolio
from tradecast.errors import EvalError
from tradecast.evals.checks import grounding_errors, risk_violations
from tradecast.evals.datasets import Dataset, decision_times
from tradecast.evals.portfolio_checks import over_limits, portfolio_violations
from tradecast.evals.runner import describe_models, prepare_run, warm_embeddings
from tradecast.graphs.portfolio_plan import headline_state, per_symbol_calls
from tradecast.graphs.portfolio_runner import PortfolioRunner
from tradecast.graphs.portfolio_state import PortfolioState
from tradecast.graphs.runner import TickResult
from tradecast.logs import get_logger
from tradecast.memory.embeddings import Embedder
from tradecast.risk.book_exposure import book_exposure
from tradecast.settings import AgentRole, Settings

log = get_logger(__name__)

Progress = Callable[[int, int, dict[str, Any]], None]
"""Called after each tick with (done, total, the tick's row)."""


@dataclass(frozen=True)
class PortfolioSpec:
    """What to replay as one book: several datasets over one window, at one cadence."""

    datasets: tuple[Dataset, ...]
    start: datetime
    end: datetime
    every: timedelta
    out_dir: Path

    @property
    def symbols(self) -> tuple[str, ...]:
        """The book's symbols, in the order given."""
        return tuple(d.symbol for d in self.datasets)

    def times(self) -> list[datetime]:
        """The decision instants, validated against every dataset."""
        if len(self.datasets) < 2:
            raise EvalError(
                "a portfolio run needs two --dataset or more (one alone: drop --portfolio)"
            )
        if len(set(self.symbols)) != len(self.symbols):
            raise EvalError(f"--dataset names one symbol twice: {', '.join(self.symbols)}")
        timeframes = {d.timeframe for d in self.datasets}
        if len(timeframes) > 1:
            raise EvalError(f"a portfolio's datasets need one bar length (got {timeframes})")
        times = [decision_times(d, self.start, self.end, self.every) for d in self.datasets]
        return times[0]

    def describe(self) -> dict[str, Any]:
        """The window as the report records it."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "every": f"{self.every.total_seconds() / 3600:g}h",
            "decisions": len(self.times()),
            "symbols": list(self.symbols),
        }


@dataclass
class PortfolioRun:
    """Everything a portfolio run produced, before the report."""

    spec: PortfolioSpec
    settings: Settings
    ticks: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    fills: list[Fill]
    orders: list[Order]
    portfolio: Portfolio
    elapsed_s: float
    models: dict[str, dict[str, Any]] = field(default_factory=dict)


def portfolio_settings(settings: Settings, spec: PortfolioSpec) -> Settings:
    """``settings`` for a portfolio run: its own data dir, every dataset in the replay market,
    the desk on their symbols, no approvals and no live news."""
    if settings.evals.fill != "close":
        raise EvalError("a portfolio run fills at the close: --fill next_open is one dataset's")
    market = settings.market
    for dataset in spec.datasets:
        market = dataset.market_config(market)
    desk = settings.desk.model_copy(
        update={
            "symbols": spec.symbols,
            "symbol": spec.symbols[0],
            "require_approval": False,
        }
    )
    news = settings.news.model_copy(update={"feeds": (), "cryptopanic_token": SecretStr("")})
    return settings.model_copy(
        update={"data_dir": spec.out_dir / "data", "market": market, "desk": desk, "news": news}
    )


async def run_portfolio_eval(
    spec: PortfolioSpec,
    settings: Settings,
    *,
    models: Mapping[AgentRole, BaseChatModel] | None = None,
    embedder: Embedder | None = None,
    llm_cache: BaseCache | None = None,
    progress: Progress | None = None,
    memory_kind: MemoryKind = "exact",
) -> PortfolioRun:
    """Replay ``spec`` through the portfolio desk built from ``settings``.

    Args:
        spec: the datasets and the window.
        settings: the desk's settings (limits, sizing, margin, models).
        models: chat models (default: the configured backends); ``llm_cache`` is set on each.
        embedder: the sentence model for the memory (default: the configured one).
        progress: called after each tick.
        memory_kind: the run's memory, "exact" or "chroma".

    Returns:
        The run's ticks, decisions, fills and final book.

    Raises:
        EvalError: the datasets or the window cannot be replayed together.
    """
    times = spec.times()
    run_settings = portfolio_settings(settings, spec)
    setup = prepare_run(
        run_settings,
        models=models,
        embedder=embedder,
        llm_cache=llm_cache,
        memory_kind=memory_kind,
    )
    try:
        async with setup.open_desk(run_settings) as desk:
            for symbol in spec.symbols:
                await warm_embeddings(desk.market, symbol, run_settings, times, setup.vectors)
            started = time.perf_counter()
            desk.runner.durability = "exit"
            ticks, decisions = await _replay(desk, spec.symbols, times, spec.every, progress)
            elapsed = time.perf_counter() - started
            fills, orders = desk.broker.fills(), desk.broker.orders()
            portfolio = desk.broker.portfolio()
        memory_dir = run_settings.data_dir / "memory"  # as the one-symbol eval keeps it
        await asyncio.to_thread(setup.memory.save, setup.vectors, memory_dir)
    finally:
        setup.memory.close()
    log.info("eval.portfolio_finished", ticks=len(ticks), fills=len(fills), seconds=elapsed)
    return PortfolioRun(
        spec=spec,
        settings=run_settings,
        ticks=ticks,
        decisions=decisions,
        fills=fills,
        orders=orders,
        portfolio=portfolio,
        elapsed_s=elapsed,
        models=describe_models(setup.models),
    )


async def _replay(
    desk: DeskRuntime,
    symbols: Sequence[str],
    times: Sequence[datetime],
    every: timedelta,
    progress: Progress | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Tick the desk's portfolio runner through ``times`` with the desk loop, as the one-symbol
    eval does, reading each tick's graph state for its rows."""
    if not isinstance(desk.runner, PortfolioRunner):
        raise EvalError("the desk was not opened as a portfolio desk")
    ticks: list[dict[str, Any]] = []
    decisions: list[dict[str, Any]] = []

    async def record(_: datetime, result: TickResult) -> None:
        state = cast("PortfolioState", await desk.runner.state(result.thread_id))
        row = await _tick_row(desk, state, result.latency_ms.get("total", 0.0) / 1000)
        ticks.append(row)
        decisions.extend(decision_rows(state))
        if progress is not None:
            progress(len(ticks), len(times), row)

    timeline = ReplayTimeline(every, times[0], times[-1])
    await DeskLoop(desk.runner, symbols[0], timeline).run(record)
    return ticks, decisions


async def _tick_row(desk: DeskRuntime, state: PortfolioState, wall_s: float) -> dict[str, Any]:
    """The book after the tick, measured and re-checked independently of the graph."""
    review = state["review"]
    book = desk.broker.portfolio()
    bar = desk.deps.bar if desk.deps is not None else timedelta(hours=1)
    limits = desk.executor.limits
    exposure = await book_exposure(desk.market, bar, book, state["at"], limits)
    calls = state.get("llm_calls") or []
    all_calls = [c for p in state["proposals"] for c in p.llm_calls] + list(calls)
    return {
        "at": state["at"].isoformat(),
        "equity": float(book.equity),
        "cash": float(book.cash),
        "prices": {s: float(p) for s, p in book.prices.items()},
        "values": {s: float(v) for s, v in exposure.values.items()},
        "gross": float(exposure.gross),
        "net": float(exposure.net),
        "var": None if exposure.var is None else float(exposure.var),
        "cvar": None if exposure.cvar is None else float(exposure.cvar),
        "var_days": exposure.days,
        "groups": [list(g) for g in exposure.groups],
        "scale": review.scale,
        "notes": list(review.notes),
        "violations": [
            *portfolio_violations(state, exposure, limits),
            *_order_violations(desk, state),
        ],
        "over_limits": over_limits(exposure, limits),
        "llm_calls": per_symbol_calls(state),
        "prompt_tokens": sum(c.prompt_tokens for c in all_calls),
        "completion_tokens": sum(c.completion_tokens for c in all_calls),
        "persona": " ".join(line.text for line in state.get("persona") or []),
        "grounding_errors": _grounding_errors(state),
        "headline": state.get("headline"),
        "wall_s": round(wall_s, 3),
        "latency_ms": dict(state.get("latency_ms") or {}),
    }


def _order_violations(desk: DeskRuntime, state: PortfolioState) -> list[str]:
    """Each executed order re-checked as the one-symbol eval does (the pure gate and the
    independent checks), on the book as it was when the order was sent."""
    limits, costs = desk.executor.limits, desk.broker.cost_model
    contexts = {p.symbol: p.context for p in state["proposals"]}
    found = []
    for outcome in state.get("outcomes") or []:
        context = contexts[outcome.symbol]
        if outcome.judged_on is not None:
            context = context.model_copy(update={"portfolio": outcome.judged_on})
        order_state = {"execution": outcome.execution, "context": context, "at": state["at"]}
        rules = desk.broker.market_rules(outcome.symbol)
        for problem in risk_violations(order_state, limits, rules, costs, desk.executor.margin):
            found.append(f"{outcome.symbol} {outcome.intent.client_order_id}: {problem}")
    return found


def _grounding_errors(state: PortfolioState) -> list[str]:
    """The persona's sentences checked against the facts of the symbol it talked about."""
    headline = headline_state(state)
    if headline is None:
        return []
    return grounding_errors({**headline, "persona": state.get("persona") or []})


def decision_rows(state: PortfolioState) -> list[dict[str, Any]]:
    """One row per symbol of a tick: the decision, the targets and what was filled."""
    review = state["review"]
    outcomes = state.get("outcomes") or []
    rows = []
    for proposal in state["proposals"]:
        decision, symbol = proposal.decision, proposal.symbol
        fills = [
            f
            for o in outcomes
            if o.symbol == symbol and o.execution is not None
            for f in o.execution.fills
        ]
        refused = [o.error for o in outcomes if o.symbol == symbol and o.execution is None]
        rows.append(
            {
                "at": state["at"].isoformat(),
                "symbol": symbol,
                "decision_id": decision.id,
                "action": decision.action.value,
                "quantity": float(decision.quantity),
                "price": float(decision.price),
                "confidence": decision.confidence,
                "held": float(review.current.get(symbol, Decimal(0))),
                "asked": float(review.asked.get(symbol, Decimal(0))),
                "approved": float(review.approved.get(symbol, Decimal(0))),
                "reasons": list(review.reasons.get(symbol, ())),
                "filled": float(sum((f.quantity for f in fills), Decimal(0))),
                "fill_notional": float(sum((f.quantity * f.price for f in fills), Decimal(0))),
                "refused": [r for r in refused if r],
                "llm_calls": len(proposal.llm_calls),
                "rationale": decision.rationale,
            }
        )
    return rows

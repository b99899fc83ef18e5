"""Replays a dataset through the live desk graph, one decision at a time, and collects it.

The run opens the desk exactly as ``tradecast run`` does (:func:`tradecast.bootstrap.open_desk`:
same graph, agents, consensus, risk gate, paper broker), with three differences that keep it
scoped and reproducible:

- its data dir is ``OUT/data`` (journal, checkpoints, the memory saved at the end), so a
  run never sees another run's trades or memories;
- the clock is each decision's instant (the desk's ``TickClock``) and the market is the
  dataset behind the desk's closed-bars view: a decision at t sees only bars closed by t;
- the memory lives in the process for the run (by default
  :class:`~tradecast.memory.inprocess.InProcessDecisionMemory`, the same DecisionMemory
  contract as Chroma with exact search; or an in-process Chroma collection) and is saved
  as a Chroma store in ``OUT/data/memory`` when the run ends; checkpoints are written once
  per tick (LangGraph durability "exit"), because a replay that dies is run again from the
  start.

Decisions run strictly in time order: the portfolio is path dependent.

Orders fill at the price the run's ``evals.fill`` picks, the decision's close or the next
bar's open: :func:`~tradecast.evals.fills.fill_broker` wraps the broker ``open_desk`` builds.
The decision itself is the same either way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from langchain_core.caches import BaseCache
from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from tradecast.bootstrap import (
    DeskRuntime,
    build_desk_models,
    build_embedder,
    open_desk,
    open_run_checkpointer,
)
from tradecast.bootstrap.run_memory import MemoryKind, RunMemory, open_run_memory
from tradecast.broker.paper import Broker
from tradecast.desk.loop import DeskLoop
from tradecast.desk.timeline import ReplayTimeline
from tradecast.domain import Fill, Order, Portfolio
from tradecast.errors import EvalError
from tradecast.evals.budget import TokenBudget, TokenBudgetExceeded
from tradecast.evals.checks import grounding_errors, risk_violations
from tradecast.evals.datasets import Dataset, decision_times
from tradecast.evals.fills import fill_broker
from tradecast.graphs.runner import TickResult
from tradecast.llm.cache import use_cache
from tradecast.logs import get_logger
from tradecast.market.base import MarketData
from tradecast.memory.base import clean_situation
from tradecast.memory.embedding_cache import PersistentEmbeddingCache
from tradecast.memory.embeddings import Embedder
from tradecast.memory.situation import describe_situation
from tradecast.news.view import NewsView
from tradecast.settings import AgentRole, Settings

log = get_logger(__name__)

Progress = Callable[[int, int, dict[str, Any]], None]
"""Called after each decision with (done, total, the decision's row)."""


@dataclass(frozen=True)
class EvalSpec:
    """What to replay: a dataset over a window, at a cadence, scored at a horizon."""

    dataset: Dataset
    start: datetime
    end: datetime
    every: timedelta
    horizon: timedelta
    out_dir: Path
    marked_until: datetime | None = None
    """The last instant the equity curves are marked at (default ``end``): a walk-forward
    test window is marked until the next window starts, so the windows tile the bars."""

    def curve_end(self) -> datetime:
        """The last instant of the equity curves (never past the data)."""
        return min(self.marked_until or self.end, self.dataset.last_close)

    def times(self) -> list[datetime]:
        """The decision instants (validated against the data)."""
        return decision_times(self.dataset, self.start, self.end, self.every)

    def describe(self) -> dict[str, Any]:
        """The window as the report and the manifest record it."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "every": _duration(self.every),
            "horizon": _duration(self.horizon),
            "decisions": len(self.times()),
            "marked_until": self.curve_end().isoformat(),
        }


@dataclass
class EvalRun:
    """Everything a run produced, before scoring."""

    spec: EvalSpec
    settings: Settings
    rows: list[dict[str, Any]]
    fills: list[Fill]
    orders: list[Order]
    portfolio: Portfolio
    elapsed_s: float
    """Wall time from the first tick to the end of the last (the desk already open)."""
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    cache: dict[str, Any] | None = None
    embeddings: dict[str, Any] | None = None
    stopped: str | None = None
    """Why the run ended before its last instant (a token budget), None when it did not."""
    news: dict[str, Any] | None = None
    """The news sources read, what they left out and why (None: no news)."""


@dataclass(frozen=True)
class RunSetup:
    """What a replay run's desk is built with: the chat models, the embeddings cache, the
    run's memory, and the caches' counts when the run started."""

    models: dict[AgentRole, BaseChatModel]
    vectors: PersistentEmbeddingCache
    memory: RunMemory
    before: tuple[tuple[int, int], tuple[int, int]]
    """The LLM cache's and the embeddings cache's (hits, misses) before the run."""

    def open_desk(
        self, run_settings: Settings, wrap_broker: Callable[[Broker], Broker] | None = None
    ) -> AbstractAsyncContextManager[DeskRuntime]:
        """The desk from ``run_settings`` on these models and memory, with the run's
        checkpoints (``wrap_broker`` as :func:`tradecast.bootstrap.open_desk` takes it)."""
        return open_desk(
            run_settings,
            models=self.models,
            memory=self.memory.store,
            wrap_broker=wrap_broker,
            checkpointer=open_run_checkpointer,
            memory_calls=self.memory.calls,
            embedder=self.vectors,
        )


def prepare_run(
    run_settings: Settings,
    *,
    models: Mapping[AgentRole, BaseChatModel] | None,
    embedder: Embedder | None,
    llm_cache: BaseCache | None,
    memory_kind: MemoryKind,
    memory: RunMemory | None = None,
) -> RunSetup:
    """The models (default: the configured backends; ``llm_cache`` is set on each), the
    embeddings cache (``embedder``, default the configured sentence model, unless it is one
    already) and the memory (``memory``, else a new one of ``memory_kind``) of one run."""
    chat_models = dict(models) if models is not None else build_desk_models(run_settings)
    use_cache(list(chat_models.values()), llm_cache)
    vectors = (
        embedder
        if isinstance(embedder, PersistentEmbeddingCache)
        else PersistentEmbeddingCache(embedder or build_embedder(run_settings))
    )
    before = _counts(llm_cache), _counts(vectors)
    run_memory = memory or open_run_memory(memory_kind, vectors)
    return RunSetup(chat_models, vectors, run_memory, before)


def eval_settings(settings: Settings, spec: EvalSpec) -> Settings:
    """``settings`` for one run: its own data dir, the dataset as the market, no approvals
    (nobody is there to approve a replayed order), and no live news source (a replay reads
    the news file only: polling today's feeds would make a run depend on the day)."""
    desk = settings.desk.model_copy(update={"require_approval": False})
    news = settings.news.model_copy(update={"feeds": (), "cryptopanic_token": SecretStr("")})
    return settings.model_copy(
        update={
            "data_dir": spec.out_dir / "data",
            "market": spec.dataset.market_config(settings.market),
            "desk": desk,
            "news": news,
        }
    )


async def run_eval(
    spec: EvalSpec,
    settings: Settings,
    *,
    models: Mapping[AgentRole, BaseChatModel] | None = None,
    embedder: Embedder | None = None,
    llm_cache: BaseCache | None = None,
    progress: Progress | None = None,
    memory_kind: MemoryKind = "exact",
    memory: RunMemory | None = None,
    budget: TokenBudget | None = None,
) -> EvalRun:
    """Replay ``spec`` through the desk built from ``settings`` and collect every decision.

    ``models`` default to the configured backends; ``llm_cache`` (if any) is set on each of
    them; ``embedder`` defaults to the configured sentence model. ``memory_kind`` picks the
    run's memory: "exact" (in-process numpy) or "chroma" (an in-process Chroma collection);
    ``memory``, if given, is used instead and left open (a walk-forward window's test run
    reads what its training run recorded). A run whose LLM tokens exceed ``budget`` stops
    after the tick that went over, and says so in ``stopped``.
    """
    times = spec.times()
    run_settings = eval_settings(settings, spec)
    setup = prepare_run(
        run_settings,
        models=models,
        embedder=embedder,
        llm_cache=llm_cache,
        memory_kind=memory_kind,
        memory=memory,
    )
    vectors, run_memory, before = setup.vectors, setup.memory, setup.before
    try:
        fills_at = fill_broker(run_settings.evals.fill, spec.dataset)
        async with setup.open_desk(run_settings, wrap_broker=fills_at) as desk:
            await warm_embeddings(desk.market, spec.dataset.symbol, run_settings, times, vectors)
            if desk.news is not None:
                await _warm_news(desk.news, times, run_settings, vectors)
            desk.runner.durability = "exit"
            started = time.perf_counter()
            rows, stopped = await _decide(
                desk, spec.dataset.symbol, times, spec.every, progress, budget
            )
            elapsed = time.perf_counter() - started
            fills, orders = desk.broker.fills(), desk.broker.orders()
            portfolio = desk.broker.portfolio()
            news = _news_summary(desk.news, rows) if desk.news is not None else None
        await asyncio.to_thread(run_memory.save, vectors, run_settings.data_dir / "memory")
    finally:
        if memory is None:
            run_memory.close()
    log.info(
        "eval.finished",
        dataset=spec.dataset.name,
        decisions=len(rows),
        seconds=round(elapsed, 2),
        fills=len(fills),
    )
    return EvalRun(
        spec=spec,
        settings=run_settings,
        rows=rows,
        fills=fills,
        orders=orders,
        portfolio=portfolio,
        elapsed_s=elapsed,
        models=describe_models(setup.models),
        cache=_usage(llm_cache, before[0]),
        embeddings=_usage(vectors, before[1]),
        stopped=stopped,
        news=news,
    )


async def _decide(
    desk: DeskRuntime,
    symbol: str,
    times: Sequence[datetime],
    step: timedelta,
    progress: Progress | None,
    budget: TokenBudget | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Tick at each instant in order (the desk loop over ``times``, which are ``step``
    apart), and record and check each decision; stop early when ``budget`` runs out.
    Returns the rows and why the run stopped early (None when it did not)."""
    limits = desk.executor.limits
    rules, costs = desk.broker.market_rules(symbol), desk.broker.cost_model
    rows: list[dict[str, Any]] = []

    async def record(_: datetime, result: TickResult) -> None:
        state = await desk.runner.state(result.thread_id)
        row = decision_row(result, state)
        row["risk_violations"] = risk_violations(state, limits, rules, costs, desk.executor.margin)
        row["grounding_errors"] = grounding_errors(state)
        rows.append(row)
        if progress is not None:
            progress(len(rows), len(times), row)
        if budget is not None:
            budget.charge(row["prompt_tokens"] + row["completion_tokens"])

    timeline = ReplayTimeline(step, times[0], times[-1])
    try:
        await DeskLoop(desk.runner, symbol, timeline).run(record)
    except TokenBudgetExceeded as exc:
        log.warning("eval.token_budget_exceeded", decisions=len(rows), reason=str(exc))
        return rows, str(exc)
    return rows, None


async def run_evals(
    specs: Sequence[EvalSpec],
    settings: Settings,
    *,
    concurrency: int = 1,
    models_for: Callable[[EvalSpec], Mapping[AgentRole, BaseChatModel] | None] | None = None,
    embedder: Embedder | None = None,
    llm_cache_for: Callable[[EvalSpec], BaseCache | None] | None = None,
    progress_for: Callable[[EvalSpec], Progress | None] | None = None,
    memory_kind: MemoryKind = "exact",
    budget: TokenBudget | None = None,
) -> list[EvalRun]:
    """Several independent runs (each its own desk, portfolio and memory), at most
    ``concurrency`` at a time in this process. They overlap only where a run waits: an LLM
    server answering several requests at once, SQLite, Chroma; calls into the embedded
    llama.cpp model queue on its lock. ``llm_cache_for`` gives each run its cache (separate
    instances on one file keep each run's hit counts apart). All runs draw on one ``budget``:
    a run not started before it was spent is left out of the result."""
    if concurrency < 1:
        raise EvalError(f"--concurrency must be at least 1 (got {concurrency})")
    gate = asyncio.Semaphore(concurrency)

    async def one(spec: EvalSpec) -> EvalRun | None:
        async with gate:
            if budget is not None and budget.used > budget.limit:
                log.warning("eval.not_started", dataset=spec.dataset.name, reason="token budget")
                return None
            return await run_eval(
                spec,
                settings,
                models=models_for(spec) if models_for else None,
                embedder=embedder,
                llm_cache=llm_cache_for(spec) if llm_cache_for else None,
                progress=progress_for(spec) if progress_for else None,
                memory_kind=memory_kind,
                budget=budget,
            )

    runs = await asyncio.gather(*(one(spec) for spec in specs))
    return [run for run in runs if run is not None]


def decision_row(result: TickResult, state: Mapping[str, Any]) -> dict[str, Any]:
    """One decision as the decision log records it (JSON-ready: read from the report's JSON,
    so quantities and prices stay the decimal strings the API shows)."""
    report = result.model_dump(mode="json")
    decision = report["decision"] or {}
    llm, persona = report["llm"], report["persona"]
    calls = llm["by_agent"]
    structured = [c for c in calls if c["agent"] != "persona"]
    context = state.get("context")
    return {
        "at": state["at"].isoformat(),
        "decision_id": decision.get("id"),
        "action": decision.get("action"),
        "quantity": decision.get("quantity"),
        "price": decision.get("price"),
        "confidence": decision.get("confidence"),
        "attribution": [
            {
                k: row[k]
                for k in ("agent", "action", "confidence", "weight", "abstained", "weight_note")
            }
            for row in decision.get("attribution", [])
        ],
        "regime": decision.get("regime"),
        "sizing": decision.get("sizing"),
        "memory_hits": len(decision.get("memory_hits", [])),
        "approved": report["risk"]["approved"],
        "risk_reasons": report["risk"]["reasons"],
        "executed": bool(result.fills),
        "order_id": (report["order"] or {}).get("id"),
        "fills": [{k: f[k] for k in ("side", "quantity", "price", "fee")} for f in report["fills"]],
        "equity_before": str(context.portfolio.equity) if context is not None else None,
        "persona": persona["text"],
        "emotion": persona["emotion"],
        "news": [
            {k: item[k] for k in ("id", "title", "published_at", "sentiment")}
            for item in decision.get("news", [])
        ],
        "analyst_prompt_tokens": sum(c["prompt_tokens"] for c in calls if c["agent"] == "analyst"),
        "llm_calls": llm["calls"],
        "llm_failed": llm["failed"],
        "schema_calls": len(structured),
        "schema_valid": sum(1 for c in structured if c["ok"]),
        "prompt_tokens": llm["prompt_tokens"],
        "completion_tokens": llm["completion_tokens"],
        "llm_errors": [f"{c['agent']}: {c['error']}" for c in calls if not c["ok"]],
        "llm_seconds": round(sum(c["latency_ms"] for c in calls) / 1000, 4),
        "latency_ms": result.latency_ms.get("total", 0.0),
        "node_latency_ms": {k: v for k, v in result.latency_ms.items() if k != "total"},
    }


def describe_models(models: Mapping[AgentRole, BaseChatModel]) -> dict[str, dict[str, Any]]:
    """Per role: backend, model and the parameters that shape its answers (for the manifest)."""
    described: dict[str, dict[str, Any]] = {}
    for role, model in models.items():
        params = dict(getattr(model, "_identifying_params", {}) or {})
        name = getattr(model, "model_name", None) or getattr(model, "model", None)
        described[role] = {
            "backend": model._llm_type,
            "model": str(name) if name else None,
            "temperature": getattr(model, "temperature", params.get("temperature")),
            "seed": getattr(model, "seed", params.get("seed")),
            "max_tokens": getattr(model, "max_tokens", None) or getattr(model, "num_predict", None),
            "params": {k: str(v) for k, v in params.items()},
        }
    return described


async def warm_embeddings(
    market: MarketData,
    symbol: str,
    settings: Settings,
    times: Sequence[datetime],
    vectors: PersistentEmbeddingCache,
) -> None:
    """Embed every decision's situation text in batches before the run.

    The texts come from the desk's own closed-bars view, so they depend only on the bars
    closed by each instant (the desk describes them the same way), and a vector is looked up
    by its exact text, so no decision can see anything of a later one; batching is just
    faster than one encode per tick.
    """
    texts = []
    for at in times:
        candles = await market.candles(symbol, until=at, limit=settings.desk.candles)
        if len(candles) >= 2:
            texts.append(clean_situation(describe_situation(candles)))
    computed = await asyncio.to_thread(vectors.warm, texts)
    log.info("eval.embeddings_warmed", texts=len(texts), computed=computed)


async def _warm_news(
    news: NewsView, times: Sequence[datetime], settings: Settings, vectors: PersistentEmbeddingCache
) -> None:
    """Embed every item the run could read before it starts, one batch per decision instant:
    the items that become readable by it and not by the one before. A vector's last bits
    depend on the texts it was batched with, so no item shares a batch with one that is not
    yet readable when it is first read."""
    since = times[0] - timedelta(hours=settings.news.lookback_h)
    delay = timedelta(seconds=settings.news.ingestion_delay_s)
    pending = sorted(
        await news.published_between(since, times[-1]), key=lambda i: i.visible_from(delay)
    )
    computed = taken = 0
    for at in times:
        batch = []
        while taken < len(pending) and pending[taken].visible_from(delay) <= at:
            batch.append(pending[taken])
            taken += 1
        if batch:
            computed += await asyncio.to_thread(vectors.warm, news.item_texts(batch))
    log.info("eval.news_warmed", items=taken, computed=computed)


def _news_summary(news: NewsView, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    read = {item["id"] for row in rows for item in row["news"]}
    return {
        "sources": news.sources,
        "dropped": news.dropped(),
        "items_read": len(read),
        "decisions_with_news": sum(1 for row in rows if row["news"]),
    }


def _counts(cache: Any) -> tuple[int, int]:
    return (getattr(cache, "hits", 0), getattr(cache, "misses", 0)) if cache is not None else (0, 0)


def _usage(cache: Any, before: tuple[int, int]) -> dict[str, Any] | None:
    """The cache's stats with this run's hits and misses (not the process's)."""
    stats = getattr(cache, "stats", None)
    if not callable(stats):
        return None
    hits, misses = _counts(cache)
    return {**stats(), "hits": hits - before[0], "misses": misses - before[1]}


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    for unit, size in (("d", 1440), ("h", 60)):
        if minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"

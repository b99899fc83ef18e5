"""Walk-forward evaluation: train windows fill the memory, the test windows after them are
scored, for every ablation of the desk, each (ablation, window) pair independent of the others.

A window's training run replays its train instants through the desk with an empty memory;
its test run then replays the test instants through a fresh desk (fresh cash, fresh book)
that reads that memory. Both runs see only bars closed by each decision's instant, and the
memory answers only outcomes known by then, so nothing of a test window reaches its own
decisions before their time. Windows do not share anything but the answer caches, so they
run in parallel processes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from tradecast.bootstrap.run_memory import open_run_memory
from tradecast.errors import EvalError
from tradecast.evals.ablations import Ablation, ablated_settings, reads_memory
from tradecast.evals.budget import TokenBudget
from tradecast.evals.datasets import Dataset, decision_times
from tradecast.evals.runner import EvalRun, EvalSpec, run_eval
from tradecast.logs import get_logger
from tradecast.memory.embedding_cache import PersistentEmbeddingCache
from tradecast.memory.embeddings import Embedder
from tradecast.settings import AgentRole, Settings

log = get_logger(__name__)

MAX_WINDOWS = 1000
MAX_WORKERS = 64

ModelsFactory = Callable[[Settings], Mapping[AgentRole, BaseChatModel]]
"""Builds a process's chat models from the run's settings (a module-level function, so a
worker process can be handed it)."""


@dataclass(frozen=True)
class Window:
    """One walk-forward window: decision instants to train on, then to score (inclusive)."""

    index: int
    train: tuple[datetime, datetime] | None
    test: tuple[datetime, datetime]

    def describe(self) -> dict[str, Any]:
        """The window as the report records it."""
        train = None if self.train is None else [t.isoformat() for t in self.train]
        return {"index": self.index, "train": train, "test": [t.isoformat() for t in self.test]}


def plan_windows(
    dataset: Dataset,
    start: datetime,
    end: datetime,
    every: timedelta,
    *,
    train: timedelta,
    test: timedelta,
    step: timedelta | None = None,
    anchored: bool = False,
) -> list[Window]:
    """Rolling (or anchored) windows from ``start``: ``train`` of decisions, then ``test``.

    The first test window starts at ``start + train``; each next one ``step`` (default
    ``test``) later, while its last decision is at or before ``end``. A rolling window trains
    on the ``train`` before its test; an anchored one on everything since ``start``.

    Raises:
        EvalError: lengths that are not whole multiples of ``every``, overlapping test
            windows, no window fitting, or more than ``MAX_WINDOWS``.
    """
    step = test if step is None else step
    for name, length in (("--train", train), ("--test", test), ("--step", step)):
        if length <= timedelta(0) or length % every:
            raise EvalError(f"{name} must be a positive multiple of --every ({every})")
    if test < 2 * dataset.interval:
        raise EvalError(f"--test must span at least 2 bars of {dataset.name} to be scored")
    if step < test:
        raise EvalError(
            "--step must be at least --test: overlapping test windows would count bars twice"
        )
    windows: list[Window] = []
    test_start = start + train
    while test_start + test - every <= end:
        if len(windows) == MAX_WINDOWS:
            raise EvalError(f"more than {MAX_WINDOWS} windows: use a longer --step or --test")
        first = start if anchored else test_start - train
        windows.append(
            Window(
                len(windows), (first, test_start - every), (test_start, test_start + test - every)
            )
        )
        test_start += step
    if not windows:
        raise EvalError(
            f"no window fits from {start.isoformat()} to {end.isoformat()} with --train "
            f"{train} and --test {test}"
        )
    decision_times(dataset, start, windows[-1].test[1], every)  # inside the data, or it says why
    return windows


@dataclass(frozen=True)
class WalkForwardSpec:
    """What to walk forward: a dataset, its windows and the ablations to run on each."""

    dataset: Dataset
    windows: tuple[Window, ...]
    every: timedelta
    horizon: timedelta
    ablations: tuple[Ablation, ...]
    out_dir: Path
    train: timedelta
    test: timedelta
    step: timedelta
    anchored: bool = False

    def describe(self) -> dict[str, Any]:
        """The plan as the report records it."""
        return {
            "every": _text(self.every),
            "horizon": _text(self.horizon),
            "train": _text(self.train),
            "test": _text(self.test),
            "step": _text(self.step),
            "anchored": self.anchored,
            "windows": len(self.windows),
        }

    def jobs(self) -> list[tuple[Ablation, Window]]:
        """Every (ablation, window) pair, each an independent run, window by window (so a
        spent budget leaves every configuration on the same windows)."""
        return [(a, w) for w in self.windows for a in self.ablations]

    def run_dir(self, ablation: Ablation, window: Window) -> Path:
        """Where a pair's runs write (``train/`` and ``test/`` inside)."""
        return self.out_dir / ablation / f"window-{window.index:03d}"


@dataclass
class WindowResult:
    """One scored test window of one ablation (picklable: it crosses process boundaries)."""

    ablation: Ablation
    window: int
    test_dir: str
    metrics: dict[str, Any]
    baselines: dict[str, dict[str, Any]]
    times: list[str]
    """The bar closes of the test window's curves (ISO-8601)."""
    equity: dict[str, list[float]]
    """Equity per bar close of the desk and of every baseline."""
    cost: dict[str, float]
    """Train and test decisions, tokens and LLM seconds."""
    stopped: str | None = None
    must_be_zero: dict[str, int] = field(default_factory=dict)
    """Risk violations and ungrounded persona sentences of the training and test runs."""

    @property
    def scored(self) -> bool:
        """Whether the test run made decisions (a budget can stop a pair in training)."""
        return bool(self.times)


@dataclass
class _Resources:
    """What one process reuses across its windows: models, caches, the budget."""

    settings: Settings
    cache_dir: Path | None
    budget: TokenBudget | None
    models_factory: ModelsFactory | None = None
    models: Mapping[AgentRole, BaseChatModel] | None = None
    embedder: PersistentEmbeddingCache | None = None
    llm_cache: Any = None
    argv: list[str] = field(default_factory=list)

    def chat_models(self, settings: Settings) -> Mapping[AgentRole, BaseChatModel]:
        if self.models is None:
            if self.models_factory is not None:
                self.models = self.models_factory(settings)
            else:
                from tradecast.bootstrap import build_desk_models

                self.models = build_desk_models(settings)
        return self.models

    def vectors(self) -> PersistentEmbeddingCache:
        if self.embedder is None:
            from tradecast.bootstrap import build_embedder
            from tradecast.memory.embedding_cache import EMBEDDING_CACHE_FILENAME

            path = None if self.cache_dir is None else self.cache_dir / EMBEDDING_CACHE_FILENAME
            self.embedder = PersistentEmbeddingCache(build_embedder(self.settings), path)
        return self.embedder

    def answers(self) -> Any:
        if self.llm_cache is None and self.cache_dir is not None:
            from tradecast.llm.cache import CACHE_FILENAME, SqliteLLMCache

            self.llm_cache = SqliteLLMCache(self.cache_dir / CACHE_FILENAME)
        return self.llm_cache


async def run_window(
    spec: WalkForwardSpec, ablation: Ablation, window: Window, resources: _Resources
) -> WindowResult:
    """Train (when the ablation reads memory) and test one window; score the test run. When
    the token budget runs out in training, the result holds the training only (unscored)."""
    from tradecast.evals.manifest import build_manifest
    from tradecast.evals.report import write_decisions, write_run
    from tradecast.evals.scoring import score

    settings = ablated_settings(resources.settings, ablation)
    vectors = resources.vectors()
    memory = open_run_memory("exact", vectors)
    folder = spec.run_dir(ablation, window)
    common: dict[str, Any] = {
        "models": resources.chat_models(settings),
        "embedder": vectors,
        "llm_cache": resources.answers(),
        "memory": memory,
        "budget": resources.budget,
    }
    try:
        trained = None
        if window.train is not None and reads_memory(settings):
            trained = await run_eval(
                _spec(spec, window.train, folder / "train"), settings, **common
            )
            write_decisions(folder / "train", trained.rows)
        tested = None
        if trained is None or trained.stopped is None:
            test = _spec(
                spec, window.test, folder / "test", marked_until=window.test[1] + spec.every
            )
            tested = await run_eval(test, settings, **common)
    finally:
        memory.close()
    if tested is None or not tested.rows:
        return _unscored(ablation, window, folder, trained, tested)
    scores = score(tested)
    manifest = build_manifest(
        tested, argv=resources.argv, cache_enabled=resources.cache_dir is not None
    )
    manifest["walk_forward"] = {"ablation": ablation, "window": window.describe()}
    write_run(folder / "test", tested, scores, manifest, plots=False)
    curves = scores.curves.drop(columns=["position", "price"])
    return WindowResult(
        ablation=ablation,
        window=window.index,
        test_dir=str(folder / "test"),
        metrics=scores.metrics,
        baselines=scores.baselines,
        times=[t.isoformat() for t in curves.index],
        equity={name: curves[name].astype(float).tolist() for name in curves.columns},
        cost=_cost(trained, tested),
        stopped=tested.stopped,
        must_be_zero=_must_be_zero(trained, tested),
    )


def _unscored(
    ablation: Ablation,
    window: Window,
    folder: Path,
    trained: EvalRun | None,
    tested: EvalRun | None,
) -> WindowResult:
    last = tested or trained
    stopped = last.stopped if last is not None else None
    return WindowResult(
        ablation=ablation,
        window=window.index,
        test_dir=str(folder / "test"),
        metrics={},
        baselines={},
        times=[],
        equity={},
        cost=_cost(trained, tested),
        stopped=f"window {window.index} not scored: {stopped or 'no test decision'}",
        must_be_zero=_must_be_zero(trained, tested),
    )


def _must_be_zero(*runs: EvalRun | None) -> dict[str, int]:
    rows = [row for run in runs if run is not None for row in run.rows]
    return {
        "risk_violations": sum(len(r["risk_violations"]) for r in rows),
        "persona_grounding_errors": sum(len(r["grounding_errors"]) for r in rows),
    }


def _text(delta: timedelta) -> str:
    hours = delta / timedelta(hours=1)
    return f"{hours / 24:g}d" if hours % 24 == 0 else f"{hours:g}h"


def _spec(
    spec: WalkForwardSpec,
    span: tuple[datetime, datetime],
    out: Path,
    marked_until: datetime | None = None,
) -> EvalSpec:
    return EvalSpec(spec.dataset, span[0], span[1], spec.every, spec.horizon, out, marked_until)


def _cost(trained: EvalRun | None, tested: EvalRun | None) -> dict[str, float]:
    """Decisions, tokens and LLM seconds of the window's runs (training is a real cost)."""
    cost: dict[str, float] = {}
    for phase, run in (("train", trained), ("test", tested)):
        rows = run.rows if run is not None else []
        cost[f"{phase}_decisions"] = len(rows)
        cost[f"{phase}_prompt_tokens"] = sum(r["prompt_tokens"] for r in rows)
        cost[f"{phase}_completion_tokens"] = sum(r["completion_tokens"] for r in rows)
        cost[f"{phase}_llm_calls"] = sum(r["llm_calls"] for r in rows)
        cost[f"{phase}_llm_seconds"] = round(sum(r["llm_seconds"] for r in rows), 3)
        cost[f"{phase}_seconds"] = round(sum(r["latency_ms"] for r in rows) / 1000, 3)
    return cost


# --- running the windows -------------------------------------------------------------------

Progress = Callable[[WindowResult | None, str], None]
"""Called as each (ablation, window) finishes: its result (None if skipped) and a label."""


def walk_forward(
    spec: WalkForwardSpec,
    settings: Settings,
    *,
    workers: int = 1,
    cache_dir: Path | None = None,
    token_budget: int | None = None,
    models: Mapping[AgentRole, BaseChatModel] | None = None,
    models_factory: ModelsFactory | None = None,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
    argv: list[str] | None = None,
) -> tuple[list[WindowResult], list[str]]:
    """Run every (ablation, window) pair; returns the results and the pairs not run.

    ``workers`` 1 runs them in this process (``models`` may then be given); more runs them in
    that many processes (``spawn``: no inherited threads), each building its own models (from
    ``models_factory``, default the configured backends) and caches (``embedder``, in this
    process only, replaces the configured sentence model). With ``token_budget``,
    all processes draw on one count; once it is spent, no new pair starts.

    Raises:
        EvalError: a bad worker count, or models given for several processes.
    """
    if not 1 <= workers <= MAX_WORKERS:
        raise EvalError(f"--workers must be 1 to {MAX_WORKERS} (got {workers})")
    if (models is not None or embedder is not None) and workers > 1:
        raise EvalError("in-process models cannot be shared with worker processes")
    if workers == 1:
        budget = TokenBudget(token_budget) if token_budget else None
        resources = _Resources(settings, cache_dir, budget, models_factory, models, argv=argv or [])
        if embedder is not None:
            resources.embedder = PersistentEmbeddingCache(embedder)
        return asyncio.run(_in_process(spec, resources, progress))
    return _in_pool(
        spec, settings, workers, cache_dir, token_budget, models_factory, progress, argv or []
    )


async def _in_process(
    spec: WalkForwardSpec, resources: _Resources, progress: Progress | None
) -> tuple[list[WindowResult], list[str]]:
    results: list[WindowResult] = []
    skipped: list[str] = []
    try:
        for ablation, window in spec.jobs():
            result = await _one(spec, ablation, window, resources)
            _collect(result, f"{ablation}/window-{window.index:03d}", results, skipped, progress)
    finally:
        _close(resources)
    return results, skipped


async def _one(
    spec: WalkForwardSpec, ablation: Ablation, window: Window, resources: _Resources
) -> WindowResult | None:
    """A pair's result, or None when the budget was spent before it could start."""
    if resources.budget is not None and resources.budget.used > resources.budget.limit:
        return None
    return await run_window(spec, ablation, window, resources)


def _collect(
    result: WindowResult | None,
    label: str,
    results: list[WindowResult],
    skipped: list[str],
    progress: Progress | None,
) -> None:
    if result is None:
        skipped.append(label)
    else:
        results.append(result)
    if progress is not None:
        progress(result, label)


def _close(resources: _Resources) -> None:
    for resource in (resources.llm_cache, resources.embedder):
        if resource is not None:
            resource.close()


_WORKER: dict[str, Any] = {}


def _init_worker(
    settings: Settings,
    cache_dir: Path | None,
    limit: int | None,
    used: Any,
    factory: ModelsFactory | None,
    argv: list[str],
) -> None:
    from tradecast.logs import configure_logging

    configure_logging("warning", settings.log_format)
    budget = TokenBudget(limit, used) if limit else None
    _WORKER["resources"] = _Resources(settings, cache_dir, budget, factory, argv=argv)


def _run_in_worker(
    spec: WalkForwardSpec, ablation: Ablation, window: Window
) -> WindowResult | None:
    return asyncio.run(_one(spec, ablation, window, _WORKER["resources"]))


def _in_pool(
    spec: WalkForwardSpec,
    settings: Settings,
    workers: int,
    cache_dir: Path | None,
    token_budget: int | None,
    factory: ModelsFactory | None,
    progress: Progress | None,
    argv: list[str],
) -> tuple[list[WindowResult], list[str]]:
    context = multiprocessing.get_context("spawn")
    used = context.Value("q", 0)
    results: list[WindowResult] = []
    skipped: list[str] = []
    initargs = (settings, cache_dir, token_budget, used, factory, argv)
    with ProcessPoolExecutor(workers, context, _init_worker, initargs) as pool:
        futures = {
            pool.submit(_run_in_worker, spec, a, w): f"{a}/window-{w.index:03d}"
            for a, w in spec.jobs()
        }
        for future in as_completed(futures):
            _collect(future.result(), futures[future], results, skipped, progress)
    order = {(a, w.index): i for i, (a, w) in enumerate(spec.jobs())}
    results.sort(key=lambda r: order[(r.ablation, r.window)])
    log.info("walk_forward.finished", pairs=len(results), skipped=len(skipped), workers=workers)
    return results, skipped

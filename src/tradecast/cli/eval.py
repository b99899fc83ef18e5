"""``tradecast eval``: replay a dataset through the desk and write a report;
``tradecast eval compare A B``: two reports side by side."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from tradecast.cli.common import fail, keep_data_private, preflight_or_exit, print_json
from tradecast.cli.desk import parse_instant
from tradecast.errors import TradecastError
from tradecast.evals.budget import MAX_TOKEN_BUDGET
from tradecast.logs import configure_logging
from tradecast.market.closed_bars import parse_timeframe
from tradecast.settings import AGENT_ROLES, LLMBackend, LLMConfig, RoleLLMConfig, Settings

eval_app = typer.Typer(
    help="Replay history through the desk graph and score it against baselines.",
    invoke_without_command=True,
    add_completion=False,
)

_EVAL_FILES = frozenset(
    {
        "report.json",
        "report.md",
        "manifest.json",
        "decisions.jsonl",
        "trades.csv",
        "curves.csv",
        "equity.png",
        "drawdown.png",
        "data",
        # a walk-forward's own files; its runs are folders of evals (train/, test/)
        "report.html",
        "oos.csv",
        "windows.csv",
        "oos_equity.png",
        "contributions.png",
        "regimes.png",
        # the twin run without news (eval --news), an eval folder of its own
        "without-news",
    }
)

_FILLS = {"close": "close", "next-open": "next_open"}
"""``--fill`` values and the ``evals.fill`` setting (``EvalFill``) each one is."""


@dataclass(frozen=True)
class EvalOptions:
    """The command line, checked."""

    datasets: list[str]
    symbol: str | None
    start: datetime
    end: datetime
    every: timedelta
    horizon: timedelta
    out: Path
    force: bool
    concurrency: int
    cache_dir: Path | None
    progress: bool
    memory: Literal["exact", "chroma"]
    token_budget: int | None = None
    news: bool = False
    """Each window is also run without news, and the report compares the two."""


@eval_app.callback()
def eval_main(
    ctx: typer.Context,
    dataset: list[str] | None = typer.Option(
        None,
        "--dataset",
        help="bundled name (btc-usdt-1h, eth-busd-1h) or a CSV path with "
        "columns timestamp,open,high,low,close,volume; repeat for several independent runs",
    ),
    symbol: str | None = typer.Option(
        None, "--symbol", help="symbol of a CSV dataset (default: from a BASE-QUOTE-1h.csv name)"
    ),
    start: str | None = typer.Option(None, "--start", help="first decision, ISO-8601 (UTC)"),
    end: str | None = typer.Option(None, "--end", help="last decision at or before, ISO-8601"),
    every: str | None = typer.Option(
        None, "--every", help="decision cadence, e.g. 4h or 24h (default: desk.every)"
    ),
    horizon: str | None = typer.Option(
        None, "--horizon", help="directional accuracy horizon, e.g. 24h (default: --every)"
    ),
    out: Path | None = typer.Option(None, "--out", help="directory for the report and the run"),
    force: bool = typer.Option(False, "--force", help="replace an earlier eval in --out"),
    backend: LLMBackend | None = typer.Option(None, "--backend", help="LLM backend of all roles"),
    model: str | None = typer.Option(
        None, "--model", help="model of all roles (GGUF path/name, or an Ollama model)"
    ),
    temperature: float | None = typer.Option(None, "--temperature", help="sampling temperature"),
    seed: int | None = typer.Option(None, "--seed", help="sampling seed"),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="answer token limit"),
    concurrency: int = typer.Option(
        1,
        "--concurrency",
        help="datasets evaluated at once (decisions within one dataset are "
        "always sequential: the portfolio is path dependent)",
    ),
    no_cache: bool = typer.Option(
        False, "--no-cache", help="ask the models again (no LLM answer or embedding cache)"
    ),
    cache_dir: Path | None = typer.Option(
        None,
        "--cache-dir",
        help="where cached LLM answers and embeddings live (default: DATA_DIR/cache)",
    ),
    memory: str = typer.Option(
        "exact",
        "--memory",
        help="the run's decision memory: 'exact' (in-process, exact "
        "search) or 'chroma' (the desk's Chroma store, in process); saved to OUT/data/memory",
    ),
    token_budget: int | None = typer.Option(
        None,
        "--token-budget",
        help="stop cleanly after the decision that takes the LLM tokens over this many",
    ),
    fill: str | None = typer.Option(
        None,
        "--fill",
        help="the price replayed orders fill at, before slippage and fees: 'close' (the last "
        "close known at the decision) or 'next-open' (the next bar's open, the first price "
        "after it) (default: TRADECAST_EVALS__FILL, else close)",
    ),
    news: Path | None = typer.Option(
        None,
        "--news",
        help="timestamped news items (JSONL or CSV, docs/NEWS.md) the analyst reads as they "
        "are published; each window also runs without them and the report compares the two",
    ),
    portfolio: bool = typer.Option(
        False,
        "--portfolio",
        help="trade every --dataset as one book with the portfolio desk (one report, with "
        "exposure, VaR and P&L by symbol) instead of independent runs",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bar"),
    as_json: bool = typer.Option(False, "--json", help="print the report(s) as JSON"),
) -> None:
    """Replay DATASET from --start to --end through the desk and write OUT/report.json,
    report.md and plots. `tradecast eval compare A B` compares two runs."""
    if ctx.invoked_subcommand is not None:
        return
    settings: Settings = ctx.obj
    if not dataset:
        typer.echo(ctx.get_help())
        fail("--dataset is required (e.g. --dataset btc-usdt-1h)", code=2)
    if memory not in ("exact", "chroma"):
        fail(f"--memory must be 'exact' or 'chroma' (got {memory!r})", code=2)
    options = _options(
        settings,
        dataset,
        symbol,
        start,
        end,
        every,
        horizon,
        out,
        force,
        concurrency,
        None if no_cache else cache_dir or settings.data_dir / "cache",
        progress,
        memory,
    )
    if token_budget is not None:
        if not 1 <= token_budget <= MAX_TOKEN_BUDGET:
            fail(f"--token-budget must be 1 to {MAX_TOKEN_BUDGET:,} (got {token_budget})", code=2)
        options = replace(options, token_budget=token_budget)
    if news is not None:
        settings = with_news_file(settings, news)
        options = replace(options, news=True)
    overrides = ModelOverrides(backend, model, temperature, seed, max_tokens)
    settings = ready_settings(settings, overrides, fill, progress)
    if portfolio:
        _portfolio(settings, options, as_json)
        return
    try:
        reports = _run(settings, options)
    except TradecastError as exc:
        fail(str(exc))
    if as_json:
        print_json(reports[0] if len(reports) == 1 else reports)
    else:
        _print_summary(Console(), reports, options)
    bad = [
        r
        for r in reports
        if r["metrics"]["risk_violations"] or r["metrics"]["persona_grounding_errors"]
    ]
    if bad:
        fail(
            "risk violations or ungrounded persona sentences found (they must be 0); see "
            "decisions.jsonl",
            code=3,
        )


def _options(
    settings: Settings,
    datasets: list[str],
    symbol: str | None,
    start: str | None,
    end: str | None,
    every: str | None,
    horizon: str | None,
    out: Path | None,
    force: bool,
    concurrency: int,
    cache_dir: Path | None,
    progress: bool,
    memory: str,
) -> EvalOptions:
    if start is None or end is None:
        fail("--start and --end are required (ISO-8601, e.g. 2021-01-01)", code=2)
    if out is None:
        fail("--out is required: the directory the report is written to", code=2)
    if concurrency < 1:
        fail(f"--concurrency must be at least 1 (got {concurrency})", code=2)
    first, last = parse_instant(start, "--start"), parse_instant(end, "--end")
    if last < first:
        fail(f"--end {last.isoformat()} is before --start {first.isoformat()}", code=2)
    cadence = duration_option(every or settings.desk.every, "--every")
    return EvalOptions(
        datasets=datasets,
        symbol=symbol,
        start=first,
        end=last,
        every=cadence,
        horizon=duration_option(horizon, "--horizon") if horizon else cadence,
        out=out,
        force=force,
        concurrency=concurrency,
        cache_dir=cache_dir,
        progress=progress,
        memory=memory,  # type: ignore[arg-type]
    )


def duration_option(text: str, option: str) -> timedelta:
    try:
        return parse_timeframe(text)
    except ValueError as exc:
        fail(f"{option}: {exc}", code=2)


@dataclass(frozen=True)
class ModelOverrides:
    """``--backend``, ``--model``, ``--temperature``, ``--seed``, ``--max-tokens``."""

    backend: LLMBackend | None
    model: str | None
    temperature: float | None
    seed: int | None
    max_tokens: int | None


def ready_settings(
    settings: Settings, overrides: ModelOverrides, fill: str | None, progress: bool
) -> Settings:
    """The run's settings with the command line applied, the data dir private, the embedded
    model probed (exit 1 if it crashes here) and per-tick logs quiet under a progress bar."""
    o = overrides
    changed = with_llm_overrides(settings, o.backend, o.model, o.temperature, o.seed, o.max_tokens)
    settings = with_fill(changed, fill)
    keep_data_private(settings)
    preflight_or_exit(settings)
    if progress and settings.log_level == "info":
        # a log line per tick would tear the progress bar apart; warnings still show
        configure_logging("warning", settings.log_format)
    return settings


def with_fill(settings: Settings, fill: str | None) -> Settings:
    """``settings`` with ``--fill`` applied (exit 2 on an unknown value)."""
    if fill is None:
        return settings
    if fill not in _FILLS:
        fail(f"--fill must be 'close' or 'next-open' (got {fill!r})", code=2)
    evals = settings.evals.model_copy(update={"fill": _FILLS[fill]})
    return settings.model_copy(update={"evals": evals})


def with_news_file(settings: Settings, path: Path) -> Settings:
    """``settings`` reading news from ``path`` (exit 2 if it is not a usable news file)."""
    from tradecast.news.replay import ReplayNewsSource

    try:
        items = len(ReplayNewsSource.from_file(path))
    except TradecastError as exc:
        fail(f"--news: {exc}", code=2)
    if items == 0:
        fail(f"--news: {path} holds no item with a trustworthy published_at", code=2)
    return settings.model_copy(update={"news": settings.news.model_copy(update={"file": path})})


def with_llm_overrides(
    settings: Settings,
    backend: LLMBackend | None,
    model: str | None,
    temperature: float | None,
    seed: int | None,
    max_tokens: int | None,
) -> Settings:
    changes: dict[str, Any] = {
        "temperature": temperature,
        "seed": seed,
        "max_tokens": max_tokens,
        "backend": backend,
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    if backend is not None or model is not None:
        # one backend and model for every role: per-role settings would hide the option
        role = RoleLLMConfig(backend=backend, model=model)
        changes |= {name: role.model_dump() for name in AGENT_ROLES}
    if not changes:
        return settings
    try:
        llm = LLMConfig.model_validate({**settings.llm.model_dump(), **changes})
    except ValueError as exc:
        fail(f"invalid model option: {exc}", code=2)
    return settings.model_copy(update={"llm": llm})


def _slug(name: str) -> str:
    stem = name.removesuffix(".csv").lower()
    return re.sub(r"[^a-z0-9]+", "-", stem).strip("-") or "dataset"


def prepare_out(out: Path, force: bool) -> None:
    """An empty --out, or one holding only an earlier eval that --force may replace."""
    if out.exists() and not out.is_dir():
        fail(f"--out {out} exists and is not a directory")
    if not out.exists() or not any(out.iterdir()):
        return
    if not force:
        fail(
            f"--out {out} is not empty; pass --force to replace the eval in it, or pick "
            "another directory (runs are never mixed)"
        )
    if not _looks_like_eval(out):
        fail(
            f"--out {out} holds files that are not an eval's; refusing to delete them even "
            "with --force"
        )
    shutil.rmtree(out)


def _looks_like_eval(folder: Path) -> bool:
    """Whether ``folder`` holds only what an eval writes (a finished or an aborted run), or
    only such folders (several datasets), or a walk-forward's files beside such folders."""
    entries = list(folder.iterdir())
    names = {e.name for e in entries}
    if names and names <= _EVAL_FILES:
        data = folder / "data"
        run_data = data.is_dir() and bool(
            {"journal.sqlite", "checkpoints.sqlite"} & {e.name for e in data.iterdir()}
        )
        return bool({"report.json", "manifest.json"} & names) or run_data
    folders = [e for e in entries if e.name not in _EVAL_FILES]
    files = [e for e in entries if e.name in _EVAL_FILES]
    # files beside run folders: a walk-forward's, which always writes report.json
    return (
        bool(folders)
        and all(e.is_dir() and _looks_like_eval(e) for e in folders)
        and (not files or "report.json" in names)
        and all(e.is_file() or e.name == "data" for e in files)
    )


def _portfolio(settings: Settings, options: EvalOptions, as_json: bool) -> None:
    from tradecast.cli.eval_portfolio import print_portfolio, run_portfolio

    if options.news or options.token_budget is not None:
        fail("--portfolio does not take --news or --token-budget yet", code=2)
    try:
        summary = run_portfolio(settings, options)
    except TradecastError as exc:
        fail(str(exc))
    if as_json:
        print_json(summary)
    else:
        print_portfolio(summary)
    if summary["risk_violations"] or summary["persona_grounding_errors"]:
        fail(
            "portfolio risk violations or ungrounded persona sentences found (they must be "
            "0); see report.json",
            code=3,
        )


def _run(settings: Settings, options: EvalOptions) -> list[dict[str, Any]]:
    from tradecast.evals.datasets import resolve_dataset
    from tradecast.evals.runner import EvalSpec

    datasets = [resolve_dataset(spec, options.symbol) for spec in options.datasets]
    several = len(datasets) > 1
    if several and len({_slug(d.name) for d in datasets}) < len(datasets):
        fail("--dataset names the same dataset twice")
    specs = [
        EvalSpec(
            dataset=d,
            start=options.start,
            end=options.end,
            every=options.every,
            horizon=options.horizon,
            out_dir=options.out / _slug(d.name) if several else options.out,
        )
        for d in datasets
    ]
    for spec in specs:
        spec.times()  # a bad window fails before anything is written
    prepare_out(options.out, options.force)
    return asyncio.run(_evaluate(settings, specs, options))


async def _evaluate(settings: Settings, specs: list[Any], options: EvalOptions) -> list[dict]:
    from tqdm import tqdm

    from tradecast.bootstrap import build_embedder
    from tradecast.evals.ablations import without_news
    from tradecast.evals.budget import TokenBudget
    from tradecast.evals.runner import run_evals
    from tradecast.llm.cache import CACHE_FILENAME, SqliteLLMCache
    from tradecast.memory.embedding_cache import (
        EMBEDDING_CACHE_FILENAME,
        PersistentEmbeddingCache,
    )

    caches: list[SqliteLLMCache] = []
    vectors = None
    if options.cache_dir is not None:
        vectors = PersistentEmbeddingCache(
            build_embedder(settings), options.cache_dir / EMBEDDING_CACHE_FILENAME
        )

    def cache_for(spec: Any) -> SqliteLLMCache | None:
        if options.cache_dir is None:
            return None
        caches.append(SqliteLLMCache(options.cache_dir / CACHE_FILENAME))
        return caches[-1]

    # with --news, every window runs again without it, in OUT[/dataset]/without-news
    plain = [replace(s, out_dir=s.out_dir / WITHOUT_NEWS) for s in specs] if options.news else []
    bars = {
        id(spec): tqdm(
            total=len(spec.times()),
            desc=spec.dataset.name + (" (without news)" if spec in plain else ""),
            unit="decision",
            file=sys.stderr,
            disable=not options.progress,
            position=i,
            leave=True,
        )
        for i, spec in enumerate([*specs, *plain])
    }

    def progress_for(spec: Any) -> Any:
        bar = bars[id(spec)]

        def advance(done: int, total: int, row: dict[str, Any]) -> None:
            bar.set_postfix_str(f"{row['at'][:16]} {row['action']}", refresh=False)
            bar.update(1)

        return advance

    budget = TokenBudget(options.token_budget) if options.token_budget else None
    try:
        run_sets = []
        for chosen, run_settings in ((specs, settings), (plain, without_news(settings))):
            run_sets.append(
                await run_evals(
                    chosen,
                    run_settings,
                    concurrency=options.concurrency,
                    embedder=vectors,
                    llm_cache_for=cache_for,
                    progress_for=progress_for,
                    memory_kind=options.memory,
                    budget=budget,
                )
                if chosen
                else []
            )
    finally:
        for bar in bars.values():
            bar.close()
        for cache in caches:
            cache.close()
        if vectors is not None:
            vectors.close()
    runs, plain_runs = run_sets
    if len(runs) + len(plain_runs) < len(specs) + len(plain):
        typer.secho(
            f"{len(specs) + len(plain) - len(runs) - len(plain_runs)} run(s) not made: the "
            "token budget was spent",
            fg=typer.colors.YELLOW,
            err=True,
        )
    return _write_reports(runs, plain_runs, options)


WITHOUT_NEWS = "without-news"
"""The folder of a run's twin without news (``tradecast eval --news``)."""


def _write_reports(runs: list[Any], plain_runs: list[Any], options: EvalOptions) -> list[dict]:
    """Write each run's report; a run with news gets the comparison with its twin without."""
    from tradecast.evals.manifest import build_manifest
    from tradecast.evals.news_ablation import news_ablation
    from tradecast.evals.report import write_run
    from tradecast.evals.scoring import score

    def written(run: Any, ablation: dict[str, Any] | None = None) -> dict[str, Any]:
        manifest = build_manifest(run, cache_enabled=options.cache_dir is not None)
        report = write_run(run.spec.out_dir, run, scored[id(run)], manifest, news_ablation=ablation)
        return report | {"out_dir": str(run.spec.out_dir)}

    scored = {id(run): score(run) for run in [*runs, *plain_runs]}
    twins = {run.spec.out_dir.parent: run for run in plain_runs}
    for twin in plain_runs:
        written(twin)
    reports = []
    for run in runs:
        twin = twins.get(run.spec.out_dir)
        ablation = news_ablation(run, scored[id(run)], twin, scored[id(twin)]) if twin else None
        reports.append(written(run, ablation))
    return reports


def _print_summary(console: Console, reports: list[dict[str, Any]], options: EvalOptions) -> None:
    from tradecast.evals.report import fmt

    for report in reports:
        m = report["metrics"]
        console.print(
            f"[bold]{report['dataset']['name']}[/]: {m['decisions']} decisions, "
            f"report in {Path(report['out_dir']) / 'report.md'}"
        )
        if report["run"].get("stopped"):
            console.print(f"[yellow]stopped early:[/] {report['run']['stopped']}")
        table = Table("strategy", "return", "sharpe", "max drawdown", "win rate", "exposure")
        for name, scores in [("desk", m), *report["baselines"].items()]:
            table.add_row(
                name,
                *(
                    fmt(k, scores.get(k))
                    for k in ("cumulative_return", "sharpe", "max_drawdown", "win_rate", "exposure")
                ),
            )
        console.print(table)
        console.print(
            f"directional accuracy {fmt('directional_accuracy', m['directional_accuracy'])} "
            f"({m['directional_decisions']} scored), schema-valid "
            f"{fmt('schema_valid_rate', m['schema_valid_rate'])}, risk violations "
            f"{m['risk_violations']}, grounding errors {m['persona_grounding_errors']}, "
            f"{m['calls_per_decision']:.1f} LLM calls and {m['tokens_per_decision']:.0f} tokens "
            f"per decision, latency p50 {fmt('latency', m['latency_p50_ms'])} ms"
        )
        if report.get("news_ablation"):
            _print_news(console, report["news_ablation"])


def _print_news(console: Console, ablation: dict[str, Any]) -> None:
    from tradecast.evals.report import fmt

    if not ablation["comparable"]:
        console.print(
            f"[yellow]news ablation not comparable:[/] {ablation['not_comparable_because']}"
        )
    rows = {row["metric"]: row for row in ablation["rows"]}
    sharpe, tokens = rows["sharpe"], rows["analyst_prompt_tokens_per_decision"]
    console.print(
        f"news: {ablation['decisions_with_news']} of {ablation['decisions_compared']} decisions "
        f"read news; {ablation['decisions_changed']} changed action; Sharpe "
        f"{fmt('sharpe', sharpe['with'])} with news, {fmt('sharpe', sharpe['without'])} without; "
        "analyst "
        f"prompt {tokens['with']:.0f} tokens with news, {tokens['without']:.0f} without"
    )


@eval_app.command("compare")
def compare(
    runs: list[Path] = typer.Argument(
        ..., help="eval or walk-forward --out directories (2 or more)"
    ),
    out: Path | None = typer.Option(
        None, "--out", help="write leaderboard.json, .md, .html and .png here"
    ),
    draws: int = typer.Option(
        2000, "--bootstrap-draws", help="bootstrap resamples (100 to 100,000)"
    ),
    stats_seed: int = typer.Option(7, "--stats-seed", help="seed of the bootstrap"),
    as_json: bool = typer.Option(False, "--json", help="print the comparison as JSON"),
) -> None:
    """Rank runs by Sharpe with intervals and significance; with two runs, also every metric
    side by side (B minus A) and whether they made the same trades."""
    from tradecast.evals.compare import compare_runs, is_single_eval
    from tradecast.evals.leaderboard import leaderboard, table_rows, write_leaderboard

    if not 100 <= draws <= 100_000:
        fail(f"--bootstrap-draws must be 100 to 100,000 (got {draws})", code=2)
    if not 0 <= stats_seed < 2**32:
        fail(f"--stats-seed must be 0 to {2**32 - 1} (got {stats_seed})", code=2)
    if out is not None:
        _check_board_out(out)
    board: dict[str, Any] | None = None
    result: dict[str, Any] = {}
    unranked = ""
    try:
        pair = len(runs) == 2 and all(is_single_eval(run) for run in runs)
        result = compare_runs(runs[0], runs[1]) if pair else {}
        board = leaderboard(runs, draws=draws, seed=stats_seed)
    except ValueError as exc:
        if not result:
            fail(str(exc))
        unranked = str(exc)  # two evals stay comparable metric by metric
    if board is not None and out is not None:
        write_leaderboard(board, out)
    if as_json:
        sys.stdout.write(json.dumps(result | {"leaderboard": board}, indent=2) + "\n")
        return
    console = Console()
    if result:
        _print_pair(console, result)
    if board is None:
        console.print(f"no ranking: {unranked}")
        return
    table = Table(
        "rank",
        "run",
        "model",
        "bars",
        "sharpe [95% CI]",
        "return [95% CI]",
        "max drawdown",
        "vs leader (p leader better)",
    )
    for row in table_rows(board):
        table.add_row(*row)
    console.print(table)
    if out is not None:
        console.print(f"leaderboard written to {out / 'leaderboard.html'}")


def _check_board_out(out: Path) -> None:
    """``--out`` of compare: new, empty, or an earlier leaderboard (nothing else is mixed)."""
    if out.exists() and not out.is_dir():
        fail(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(not e.name.startswith("leaderboard.") for e in out.iterdir()):
        fail(f"--out {out} holds files that are not a leaderboard's; pick another directory")


def _print_pair(console: Console, result: dict[str, Any]) -> None:
    from tradecast.evals.report import fmt

    table = Table("metric", "A", "B", "B - A")
    for row in result["rows"]:
        name = row["metric"].split(".")[-1]
        delta = "" if row["delta"] is None else fmt(name, row["delta"])
        table.add_row(row["metric"], fmt(name, row["a"]), fmt(name, row["b"]), delta)
    console.print(table)
    for key, label in (
        ("same_dataset", "same dataset"),
        ("same_window", "same window"),
        ("same_fill", "same fill price"),
        ("same_decisions", "same decisions"),
        ("same_trades", "same trade log"),
    ):
        value = result[key]
        console.print(f"{label}: {'unknown' if value is None else 'yes' if value else 'no'}")

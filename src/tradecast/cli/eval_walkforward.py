"""``tradecast eval walk-forward``: rolling or anchored windows, ablations, intervals."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from tradecast.cli.common import fail, print_json
from tradecast.cli.desk import parse_instant
from tradecast.cli.eval import ModelOverrides, duration_option, prepare_out, ready_settings
from tradecast.errors import TradecastError
from tradecast.evals.budget import MAX_TOKEN_BUDGET
from tradecast.settings import LLMBackend, Settings

MAX_PRICE_PER_MTOK = 1_000_000.0
MAX_TRIALS = 1_000_000
MAX_DRAWS = 100_000


def walk_forward_command(
    ctx: typer.Context,
    dataset: str = typer.Option(..., "--dataset", help="bundled name or a CSV path"),
    symbol: str | None = typer.Option(None, "--symbol", help="symbol of a CSV dataset"),
    start: str = typer.Option(..., "--start", help="first training decision, ISO-8601 (UTC)"),
    end: str = typer.Option(..., "--end", help="last test decision at or before, ISO-8601"),
    every: str | None = typer.Option(
        None, "--every", help="decision cadence (default: desk.every)"
    ),
    horizon: str | None = typer.Option(
        None, "--horizon", help="accuracy horizon (default: --every)"
    ),
    train: str = typer.Option(..., "--train", help="training length per window, e.g. 14d"),
    test: str = typer.Option(..., "--test", help="scored length per window, e.g. 7d"),
    step: str | None = typer.Option(
        None, "--step", help="from one test window to the next (default: --test)"
    ),
    anchored: bool = typer.Option(False, "--anchored", help="train on everything since --start"),
    ablations: str = typer.Option(
        "full",
        "--ablations",
        help="configurations on the same windows: 'all', 'strategies' or a list of full, "
        "rules_only, no_memory, no_analyst, no_risk, no_trader, no_news, no_trend, "
        "no_mean_reversion, no_breakout, no_dca, fixed_weights, sizing_volatility, "
        "sizing_kelly, sizing_fixed, exits_trader",
    ),
    workers: int = typer.Option(
        1, "--workers", help="windows run at once, each in its own process"
    ),
    token_budget: int | None = typer.Option(
        None, "--token-budget", help="stop cleanly once this many LLM tokens are spent"
    ),
    price: float | None = typer.Option(
        None, "--price-per-mtok", help="price of a million prompt tokens (money per decision)"
    ),
    completion_price: float | None = typer.Option(
        None,
        "--completion-price-per-mtok",
        help="price of a million completion tokens (default: --price-per-mtok)",
    ),
    trials: int | None = typer.Option(
        None,
        "--trials",
        help="configurations tried in all, for the deflated Sharpe ratio "
        "(default: the ablations run)",
    ),
    draws: int = typer.Option(2000, "--bootstrap-draws", help="bootstrap resamples per interval"),
    stats_seed: int = typer.Option(7, "--stats-seed", help="seed of the bootstrap"),
    fill: str | None = typer.Option(
        None, "--fill", help="'close' or 'next-open': the price replayed orders fill at"
    ),
    out: Path = typer.Option(..., "--out", help="directory for the report and the runs"),
    force: bool = typer.Option(False, "--force", help="replace an earlier eval in --out"),
    backend: LLMBackend | None = typer.Option(None, "--backend", help="LLM backend of all roles"),
    model: str | None = typer.Option(None, "--model", help="model of all roles"),
    temperature: float | None = typer.Option(None, "--temperature", help="sampling temperature"),
    seed: int | None = typer.Option(None, "--seed", help="sampling seed"),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="answer token limit"),
    no_cache: bool = typer.Option(False, "--no-cache", help="ask the models again"),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="cached answers (default DATA_DIR/cache)"
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bar"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Walk DATASET forward: each window trains the memory, then its test part is scored;
    every ablation runs on the same windows. Writes OUT/report.json, report.md, report.html."""
    from tradecast.evals.ablations import ablated_settings, parse_ablations
    from tradecast.evals.costs import Prices
    from tradecast.evals.datasets import resolve_dataset
    from tradecast.evals.walkforward import MAX_WORKERS, WalkForwardSpec, plan_windows

    settings: Settings = ctx.obj
    cadence = duration_option(every or settings.desk.every, "--every")
    first, last = parse_instant(start, "--start"), parse_instant(end, "--end")
    _bounded("--bootstrap-draws", draws, 100, MAX_DRAWS)
    _bounded("--workers", workers, 1, MAX_WORKERS)
    _bounded("--stats-seed", stats_seed, 0, 2**32 - 1)
    if trials is not None:
        _bounded("--trials", trials, 1, MAX_TRIALS)
    if token_budget is not None:
        _bounded("--token-budget", token_budget, 1, MAX_TOKEN_BUDGET)
    try:
        prices = Prices.of(price, completion_price, MAX_PRICE_PER_MTOK)
        chosen = parse_ablations(ablations)
        for ablation in chosen:  # e.g. no_news without a news file: refused before any run
            ablated_settings(settings, ablation)
        if trials is not None and trials < len(chosen):
            fail(f"--trials {trials} is fewer than the {len(chosen)} configurations run", code=2)
        data = resolve_dataset(dataset, symbol)
        lengths = {
            "train": duration_option(train, "--train"),
            "test": duration_option(test, "--test"),
            "step": duration_option(step, "--step") if step else duration_option(test, "--test"),
        }
        windows = plan_windows(data, first, last, cadence, anchored=anchored, **lengths)
    except (TradecastError, ValueError) as exc:
        fail(str(exc), code=2)
    spec = WalkForwardSpec(
        dataset=data,
        windows=tuple(windows),
        every=cadence,
        horizon=duration_option(horizon, "--horizon") if horizon else cadence,
        ablations=chosen,
        out_dir=out,
        anchored=anchored,
        **lengths,
    )
    overrides = ModelOverrides(backend, model, temperature, seed, max_tokens)
    settings = ready_settings(settings, overrides, fill, progress)
    prepare_out(out, force)
    options = {
        "workers": workers,
        "cache_dir": None if no_cache else cache_dir or settings.data_dir / "cache",
        "token_budget": token_budget,
        "prices": prices,
        "trials": trials,
        "draws": draws,
        "stats_seed": stats_seed,
        "progress": progress,
    }
    try:
        report = _run(spec, settings, options)
    except TradecastError as exc:
        fail(str(exc))
    if as_json:
        print_json(report)
    else:
        _print_summary(Console(), report)
    if (
        report["must_be_zero"]["risk_violations"]
        or report["must_be_zero"]["persona_grounding_errors"]
    ):
        fail("risk violations or ungrounded persona sentences found (they must be 0)", code=3)


def _bounded(option: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        fail(f"{option} must be {low} to {high:,} (got {value})", code=2)


def _run(spec: Any, settings: Settings, options: dict[str, Any]) -> dict[str, Any]:
    from tqdm import tqdm

    from tradecast.evals.walkforward import walk_forward
    from tradecast.evals.walkforward_report import write_walk_forward

    bar = tqdm(
        total=len(spec.jobs()),
        desc=f"{spec.dataset.name} walk-forward",
        unit="window",
        file=sys.stderr,
        disable=not options["progress"],
    )

    def advance(result: Any, label: str) -> None:
        bar.set_postfix_str(label if result is not None else f"{label} skipped", refresh=False)
        bar.update(1)

    try:
        results, skipped = walk_forward(
            spec,
            settings,
            workers=options["workers"],
            cache_dir=options["cache_dir"],
            token_budget=options["token_budget"],
            progress=advance,
            argv=list(sys.argv),
        )
    finally:
        bar.close()
    return write_walk_forward(
        spec,
        results,
        skipped,
        prices=options["prices"],
        trials=options["trials"],
        draws=options["draws"],
        seed=options["stats_seed"],
        token_budget=options["token_budget"],
        fill=settings.evals.fill,
    )


def _print_summary(console: Console, report: dict[str, Any]) -> None:
    from tradecast.evals.report import fmt, fmt_interval

    console.print(
        f"[bold]{report['dataset']['name']}[/] walk-forward: {len(report['windows'])} windows, "
        f"report in {Path(report['out_dir']) / 'report.md'}"
    )
    table = Table(
        "configuration", "return [95% CI]", "sharpe [95% CI]", "max drawdown", "p vs buy & hold"
    )
    for name, row in report["configurations"].items():
        table.add_row(
            name,
            fmt_interval("cumulative_return", row["cumulative_return"]),
            fmt_interval("sharpe", row["sharpe"]),
            fmt("max_drawdown", row["max_drawdown"]["estimate"]),
            fmt("p", row["versus"].get("buy_and_hold", {}).get("p_value")),
        )
    console.print(table)
    if report.get("stopped"):
        console.print(f"[yellow]stopped early:[/] {report['stopped']}")

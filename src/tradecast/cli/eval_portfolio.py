"""``tradecast eval --portfolio``: several datasets traded as one book by the portfolio desk,
with portfolio metrics, exposure, VaR over time and per-symbol P&L in the report."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from tradecast.cli.eval import EvalOptions
    from tradecast.settings import Settings


def run_portfolio(settings: Settings, options: EvalOptions) -> dict[str, Any]:
    """Replay ``options.datasets`` as one book and write the report into ``options.out``.

    Raises:
        TradecastError: the datasets, the window or the settings cannot make a portfolio run.
    """
    from tradecast.cli.eval import prepare_out
    from tradecast.evals.datasets import resolve_dataset
    from tradecast.evals.portfolio import PortfolioSpec, portfolio_settings

    datasets = tuple(resolve_dataset(spec, options.symbol) for spec in options.datasets)
    spec = PortfolioSpec(datasets, options.start, options.end, options.every, options.out)
    spec.times()  # a bad window or bad settings fail before anything is written
    portfolio_settings(settings, spec)
    prepare_out(options.out, options.force)
    return asyncio.run(_evaluate(settings, spec, options))


async def _evaluate(settings: Settings, spec: Any, options: EvalOptions) -> dict[str, Any]:
    from tqdm import tqdm

    from tradecast.bootstrap import build_embedder
    from tradecast.evals.portfolio import run_portfolio_eval
    from tradecast.evals.portfolio_report import write_portfolio_report
    from tradecast.llm.cache import CACHE_FILENAME, SqliteLLMCache
    from tradecast.memory.embedding_cache import (
        EMBEDDING_CACHE_FILENAME,
        PersistentEmbeddingCache,
    )

    cache = vectors = None
    if options.cache_dir is not None:
        cache = SqliteLLMCache(options.cache_dir / CACHE_FILENAME)
        vectors = PersistentEmbeddingCache(
            build_embedder(settings), options.cache_dir / EMBEDDING_CACHE_FILENAME
        )
    bar = tqdm(
        total=len(spec.times()),
        desc="portfolio " + "+".join(spec.symbols),
        unit="tick",
        file=sys.stderr,
        disable=not options.progress,
    )

    def advance(done: int, total: int, row: dict[str, Any]) -> None:
        bar.set_postfix_str(f"{row['at'][:16]} equity {row['equity']:.0f}", refresh=False)
        bar.update(1)

    try:
        run = await run_portfolio_eval(
            spec,
            settings,
            embedder=vectors,
            llm_cache=cache,
            progress=advance,
            memory_kind=options.memory,
        )
    finally:
        bar.close()
        if cache is not None:
            cache.close()
        if vectors is not None:
            vectors.close()
    return write_portfolio_report(run, options.out)


def print_portfolio(summary: dict[str, Any]) -> None:
    """The run's headline figures on the terminal."""
    console = Console()
    pnl = ", ".join(f"{s} {v:+.2f}" for s, v in summary["symbol_pnl"].items())
    console.print(
        f"[bold]portfolio {', '.join(summary['window']['symbols'])}[/]: {summary['ticks']} "
        f"ticks, return {summary['total_return']:.2%} (equal-weight hold "
        f"{summary['buy_and_hold_return']:.2%}), max drawdown {summary['max_drawdown']:.2%}, "
        f"max gross {summary['exposure']['max_gross']:.1%}, "
        f"risk violations {summary['risk_violations']}"
    )
    console.print(f"P&L by symbol: {pnl}")

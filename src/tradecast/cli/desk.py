"""``tradecast tick`` and ``tradecast run``: the desk from the terminal."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import typer
from rich.console import Console

from tradecast.bootstrap import open_desk
from tradecast.cli.common import fail, keep_data_private, preflight_or_exit, print_json
from tradecast.desk.loop import DeskLoop
from tradecast.desk.timeline import ReplayTimeline
from tradecast.domain import StreamEvent, canonical_symbol
from tradecast.errors import TradecastError
from tradecast.graphs.runner import TickResult
from tradecast.market.closed_bars import parse_timeframe
from tradecast.settings import Settings


def parse_instant(text: str, option: str) -> datetime:
    """An ISO-8601 instant (UTC when no zone is given), or a CLI error naming the option."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option} {text!r} is not an ISO-8601 time, e.g. 2021-01-05T12:00:00Z")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _latest_close(settings: Settings, symbol: str) -> datetime:
    from tradecast.bootstrap import build_market_data

    market = build_market_data(settings)
    try:
        bars = await market.candles(symbol, None, 1)
    finally:
        await market.aclose()
    if not bars:
        raise TradecastError(f"no {symbol} bars")
    return bars[-1].timestamp + parse_timeframe(settings.market.timeframe)


async def _tick(settings: Settings, symbol: str, at: datetime | None) -> TickResult:
    moment = at or await _latest_close(settings, symbol)
    async with open_desk(settings) as desk:
        return await desk.runner.tick(symbol, moment)


def tick(
    ctx: typer.Context,
    symbol: str = typer.Option(..., "--symbol", help="market symbol, e.g. BTC/USDT"),
    at: str | None = typer.Option(None, "--at", help="decision time, ISO-8601 (default: now)"),
    as_json: bool = typer.Option(False, "--json", help="print the tick as one JSON object"),
) -> None:
    """Run one decision of the desk at a time (the latest closed bar by default); a portfolio
    desk (TRADECAST_DESK__SYMBOLS) decides every symbol and prints each one's report."""
    settings: Settings = ctx.obj
    moment = parse_instant(at, "--at") if at else None
    symbols = settings.desk.desk_symbols
    portfolio = len(symbols) > 1
    if portfolio and canonical(symbol) not in symbols:
        fail(f"--symbol {symbol}: the desk decides {', '.join(symbols)} (TRADECAST_DESK__SYMBOLS)")
    keep_data_private(settings)
    preflight_or_exit(settings)
    try:
        result = asyncio.run(_tick(settings, symbol, moment))
    except TradecastError as exc:
        fail(str(exc))
    if as_json and portfolio:  # every symbol's report of the one tick
        print_json({"reports": [r.model_dump(mode="json") for r in result.reports()]})
    elif as_json:
        print_json(result.model_dump(mode="json"))
    else:
        for report in result.reports():
            _print_tick(Console(), report)


def canonical(symbol: str) -> str:
    """``symbol`` as the desk spells it ('eth/busd' is ETH/BUSD; unchanged if it is not one)."""
    try:
        return canonical_symbol(symbol)
    except ValueError:
        return symbol


def _print_tick(console: Console, result: TickResult) -> None:
    decision = result.decision
    if decision is None:
        console.print("[bold]?[/] ? [bold cyan]?[/] qty None @ None conf None")
    else:
        console.print(
            f"[bold]{decision.model_dump(mode='json')['decided_at']}[/] {decision.symbol} "
            f"[bold cyan]{decision.action}[/] qty {decision.quantity} "
            f"@ {decision.price} conf {decision.confidence}"
        )
    risk = result.risk
    verdict = "[green]approved[/]" if risk.approved else "[red]not approved[/]"
    console.print(f"  risk gate: {verdict} {'; '.join(risk.reasons)}")
    for row in decision.attribution if decision else ():
        console.print(
            f"  {row.agent:<8} {row.action:<4} conf {row.confidence:.2f} "
            f"weight {row.weight:.1f} {row.note[:70]}"
        )
    for item in decision.news if decision else ():
        console.print(
            f"  news     tone {item.sentiment:+.2f} {item.published_at:%Y-%m-%d %H:%M} "
            f"{item.source[:20]}: {item.title[:80]}",
            markup=False,
            highlight=False,
        )
    if result.order:
        console.print(f"  order {result.order.id} {result.order.status}")
    console.print(f"  persona ({result.persona.emotion}): {result.persona.text}")
    llm = result.llm
    console.print(
        f"  llm calls {llm.calls}, tokens {llm.prompt_tokens}+{llm.completion_tokens}, "
        f"{result.latency_ms['total']:.0f} ms"
    )


def run(
    ctx: typer.Context,
    symbol: str = typer.Option(..., "--symbol", help="market symbol, e.g. BTC/USDT"),
    every: str = typer.Option("1h", "--every", help="decision cadence, e.g. 1h, 4h, 1d"),
    start: str | None = typer.Option(None, "--from", help="replay from this time (ISO-8601)"),
    ticks: int = typer.Option(0, "--ticks", help="stop after N ticks (0: run on)"),
    speed: float = typer.Option(
        0.0, "--speed", help="replay seconds per tick to wait (0: as fast as possible)"
    ),
) -> None:
    """The desk loop, headless, with a live view in the terminal (Ctrl-C stops it)."""
    settings: Settings = ctx.obj
    try:
        step = parse_timeframe(every)
    except ValueError as exc:
        fail(f"--every: {exc}")
    first = parse_instant(start, "--from") if start else None
    keep_data_private(settings)
    preflight_or_exit(settings)
    try:
        asyncio.run(_loop(settings, symbol, step, first, ticks, speed))
    except KeyboardInterrupt:
        pass
    except TradecastError as exc:
        fail(str(exc))


async def _loop(
    settings: Settings,
    symbol: str,
    step: timedelta,
    first: datetime | None,
    ticks: int,
    speed: float,
) -> None:
    console = Console()
    last = await _latest_close(settings, symbol)

    async def show(event: StreamEvent) -> None:
        _print_event(console, event)

    async def shown(_: datetime, result: TickResult) -> None:
        for report in result.reports():  # one per symbol on a portfolio desk
            _print_tick(console, report)

    async with open_desk(settings, sink=show) as desk:
        loop = DeskLoop(desk.runner, symbol, ReplayTimeline(step, first or last, last))
        await loop.run(shown, limit=ticks, pace_s=speed)


def _print_event(console: Console, event: StreamEvent) -> None:
    data: dict[str, Any] = event.data
    if event.channel == "persona" and event.event == "sentence":
        console.print(f"  [magenta]{data.get('emotion')}[/] {data.get('text')}")
    elif event.channel == "desk" and event.event in ("fill", "risk_rejection"):
        detail = data.get("reasons") or (
            f"{data.get('side')} {data.get('quantity')} @ {data.get('price')}"
        )
        console.print(f"  [yellow]{event.event}[/] {detail}")

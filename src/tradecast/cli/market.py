"""``tradecast market``: look at the market data the desk sees (replay or ccxt, per settings)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.table import Table

from tradecast.cli.common import fail, print_json
from tradecast.domain import Candle
from tradecast.errors import MarketDataError
from tradecast.settings import Settings

market_app = typer.Typer(
    name="market",
    help="Inspect market data: candles up to a time, from the configured source.",
    no_args_is_help=True,
)


def parse_until(text: str) -> datetime:
    """An ISO-8601 time ('2021-01-01', '2021-01-01T12:00Z', ...); no offset means UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--until {text!r} is not an ISO-8601 time; try e.g. 2021-01-01T12:00Z"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def _fetch_candles(
    settings: Settings, symbol: str, until: datetime | None, limit: int
) -> Sequence[Candle]:
    from tradecast.bootstrap import build_market_data

    market = build_market_data(settings)
    try:
        return await market.candles(symbol, until=until, limit=limit)
    finally:
        await market.aclose()


def _candle_row(candle: Candle) -> dict[str, str]:
    return {
        "timestamp": candle.timestamp.isoformat().replace("+00:00", "Z"),
        "open": str(candle.open),
        "high": str(candle.high),
        "low": str(candle.low),
        "close": str(candle.close),
        "volume": str(candle.volume),
    }


def _print_table(symbol: str, rows: list[dict[str, str]], source: str) -> None:
    table = Table(title=f"{symbol} ({source}, {len(rows)} bars)")
    table.add_column("open time (UTC)", no_wrap=True)
    for name in ("open", "high", "low", "close", "volume"):
        table.add_column(name, justify="right")
    for row in rows:
        stamp = datetime.fromisoformat(row["timestamp"]).strftime("%Y-%m-%d %H:%M")
        table.add_row(stamp, *(row[name] for name in ("open", "high", "low", "close", "volume")))
    Console().print(table)


@market_app.command("candles")
def candles(
    ctx: typer.Context,
    symbol: str = typer.Argument(..., help="BASE/QUOTE, e.g. BTC/USDT"),
    until: str | None = typer.Option(
        None, help="ISO-8601 time; only bars that opened at or before it (default: now)"
    ),
    limit: int = typer.Option(20, help="how many bars, the latest last"),
    as_json: bool = typer.Option(False, "--json", help="print a JSON list instead of a table"),
) -> None:
    """Print the last LIMIT candles of SYMBOL that opened at or before --until."""
    settings: Settings = ctx.obj
    if limit < 1:
        fail(f"--limit must be at least 1 (got {limit})", code=2)
    try:
        moment = parse_until(until) if until is not None else None
    except ValueError as exc:
        fail(str(exc), code=2)
    try:
        bars = asyncio.run(_fetch_candles(settings, symbol, moment, limit))
    except MarketDataError as exc:
        fail(str(exc))
    rows = [_candle_row(c) for c in bars]
    if as_json:
        print_json(rows)
    else:
        _print_table(symbol.upper(), rows, settings.market.source)

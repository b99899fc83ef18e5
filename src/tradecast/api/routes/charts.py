"""What the console's charts read: candles up to what the desk has seen, decision and fill
markers, and the equity curve (:mod:`tradecast.api.chart_views`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query

from tradecast.api.auth import Principal
from tradecast.api.chart_views import (
    CandleList,
    EquityHistory,
    MarkerList,
    SymbolTrades,
    candle_bars,
    decision_marks,
    equity_points,
    fill_marks,
    opening_cash,
)
from tradecast.api.deps import ApiContext, get_context, viewer
from tradecast.api.errors import ERROR_RESPONSES, ApiError
from tradecast.domain import Candle, Fill, canonical_symbol
from tradecast.errors import MarketDataError

router = APIRouter(prefix="/v1")
MAX_BARS = 20_000
MAX_MARKERS = 10_000
SYMBOL = Query(None, max_length=40, description="default: the desk's symbol")


def _symbol(ctx: ApiContext, symbol: str | None) -> str:
    """The asked symbol, normalised like the desk's ('btc/usdt' is BTC/USDT), or 422."""
    if symbol is None:
        return ctx.desk.symbol
    try:
        return canonical_symbol(symbol)
    except ValueError as exc:
        raise ApiError(422, "validation_error", f"symbol: {exc}") from None


async def _candles(
    ctx: ApiContext, symbol: str, until: datetime | None, limit: int
) -> list[Candle]:
    try:
        return list(await ctx.desk.runtime.market.candles(symbol, until, limit))
    except MarketDataError as exc:
        raise ApiError(422, "validation_error", f"symbol: {exc}") from None


def _traded(symbols: Sequence[str], fills: Sequence[Fill]) -> list[str]:
    """The desk's symbols, then any other symbol the account has traded (in the order of its
    first fill), so the curve is the whole account's."""
    others = dict.fromkeys(f.symbol for f in fills if f.symbol not in symbols)
    return [*symbols, *others]


def _fills_until(fills: Sequence[Fill], symbol: str, until: datetime | None) -> list[Fill]:
    """The fills on ``symbol`` in time order, none after ``until`` (a replay started again
    earlier must not show the fills of its previous run's future)."""
    on_symbol = sorted((f for f in fills if f.symbol == symbol), key=lambda f: f.timestamp)
    return [f for f in on_symbol if until is None or f.timestamp <= until]


@router.get(
    "/market/candles", tags=["streams"], response_model=CandleList, responses=ERROR_RESPONSES
)
async def candles(
    symbol: str | None = SYMBOL,
    limit: int = Query(1000, ge=1, le=MAX_BARS),
    _: Principal = Depends(viewer),
    ctx: ApiContext = Depends(get_context),
) -> dict[str, Any]:
    """The last ``limit`` closed bars the desk has seen (a replay shows nothing past its last
    tick), oldest first; ``t`` is the bar's open time in epoch seconds."""
    name = _symbol(ctx, symbol)
    bars = await _candles(ctx, name, ctx.desk.seen_until(), limit)
    return {
        "symbol": name,
        "timeframe": ctx.settings.market.timeframe,
        "items": candle_bars(bars),
    }


@router.get(
    "/decisions/markers",
    tags=["decisions"],
    response_model=MarkerList,
    responses=ERROR_RESPONSES,
)
async def markers(
    symbol: str | None = SYMBOL,
    limit: int = Query(2000, ge=1, le=MAX_MARKERS),
    _: Principal = Depends(viewer),
    ctx: ApiContext = Depends(get_context),
) -> dict[str, Any]:
    """The latest ``limit`` decisions on a symbol as chart markers (oldest first), each with
    its outcome (filled, rejected, hold, waiting, unfilled), and the broker's fills on it with
    their trigger (the desk, or a stop-loss / take-profit / time-stop exit)."""
    name, until = _symbol(ctx, symbol), ctx.desk.seen_until()
    reports = ctx.desk.store.decision_reports(limit, name, until)
    broker = ctx.desk.current_broker()
    fills = _fills_until(broker.fills(), name, until)[-limit:]
    return {
        "items": decision_marks(reports),
        "fills": fill_marks(fills, broker.orders(symbol=name)),
    }


@router.get(
    "/portfolio/history",
    tags=["portfolio"],
    response_model=EquityHistory,
    responses=ERROR_RESPONSES,
)
async def portfolio_history(
    _: Principal = Depends(viewer), ctx: ApiContext = Depends(get_context)
) -> dict[str, Any]:
    """Equity at each bar's close from the desk's first decision on (the broker's fills on
    every symbol marked at the close, from the account's opening cash; a margin account's
    borrow fees are left out), beside buying and holding the desk's symbols in equal shares
    from the same close, and the drawdown from equity's running peak (at most the last 20,000
    bars)."""
    name, until = ctx.desk.symbol, ctx.desk.seen_until()
    broker = ctx.desk.current_broker()
    every_fill = broker.fills()
    account = broker.portfolio()
    # borrow fees are not fills: add them back to find the cash the account opened with
    cash = opening_cash(account.cash + account.borrow_paid, every_fill)
    start = ctx.desk.store.first_decided_at(name, until)
    if start is None:
        return {"symbol": name, "start_equity": str(cash), "items": []}
    end = until or ctx.desk.runtime.clock()
    bars = min(max(int((end - start) / ctx.desk.bar) + 2, 2), MAX_BARS)
    book = [
        SymbolTrades(
            fills=_fills_until(every_fill, symbol, until),
            orders=broker.orders(symbol=symbol),
            candles=await _candles(ctx, symbol, until, bars),
        )
        for symbol in _traded(ctx.desk.config.desk_symbols, every_fill)
    ]
    points = equity_points(
        book,
        bar=ctx.desk.bar,
        start=start,
        starting_cash=cash,
        fee_bps=float(ctx.settings.broker.fee_bps),
    )
    return {"symbol": name, "start_equity": str(cash), "items": points}

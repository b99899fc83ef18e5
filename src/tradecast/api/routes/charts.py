"""What the console's charts read: candles up to what the desk has seen, decision and fill
markers, and the equity curve (:mod:`tradecast.api.chart_views`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from tradecast.api.auth import Principal
from tradecast.api.chart_views import (
    CandleList,
    EquityHistory,
    MarkerList,
    candle_bars,
    decision_marks,
    equity_points,
    fill_marks,
)
from tradecast.api.deps import ApiContext, get_context, viewer
from tradecast.api.errors import ERROR_RESPONSES, ApiError
from tradecast.domain import Candle
from tradecast.errors import BrokerError, MarketDataError

router = APIRouter(prefix="/v1")
MAX_BARS = 20_000
MAX_MARKERS = 10_000
SYMBOL = Query(None, max_length=40, description="default: the desk's symbol")


async def _candles(ctx: ApiContext, symbol: str, limit: int) -> list[Candle]:
    try:
        return list(await ctx.desk.runtime.market.candles(symbol, ctx.desk.seen_until(), limit))
    except MarketDataError as exc:
        raise ApiError(422, "validation_error", f"symbol: {exc}") from None


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
    name = symbol or ctx.desk.symbol
    bars = await _candles(ctx, name, limit)
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
    name = symbol or ctx.desk.symbol
    reports = ctx.desk.store.decision_reports(limit, name)
    broker = ctx.desk.current_broker()
    try:
        orders = broker.orders(symbol=name)
    except BrokerError as exc:  # a symbol that is not BASE/QUOTE
        raise ApiError(422, "validation_error", f"symbol: {exc}") from None
    fills = [f for f in broker.fills() if f.symbol == name][-limit:]
    return {"items": decision_marks(reports), "fills": fill_marks(fills, orders)}


@router.get(
    "/portfolio/history",
    tags=["portfolio"],
    response_model=EquityHistory,
    responses=ERROR_RESPONSES,
)
async def portfolio_history(
    _: Principal = Depends(viewer), ctx: ApiContext = Depends(get_context)
) -> dict[str, Any]:
    """Equity at each bar's close from the desk's first decision on (the broker's fills
    marked at the close), beside buying and holding the desk's symbol from the same close,
    and the drawdown from equity's running peak (at most the last 20,000 bars)."""
    name = ctx.desk.symbol
    cash = ctx.settings.broker.starting_cash
    start = ctx.desk.store.first_decided_at(name)
    if start is None:
        return {"symbol": name, "start_equity": str(cash), "items": []}
    until = ctx.desk.seen_until() or ctx.desk.runtime.clock()
    bars = int((until - start) / ctx.desk.bar) + 2
    broker = ctx.desk.current_broker()
    points = equity_points(
        [f for f in broker.fills() if f.symbol == name],
        broker.orders(symbol=name),
        await _candles(ctx, name, min(max(bars, 2), MAX_BARS)),
        bar=ctx.desk.bar,
        start=start,
        starting_cash=cash,
        fee_bps=float(ctx.settings.broker.fee_bps),
    )
    return {"symbol": name, "start_equity": str(cash), "items": points}

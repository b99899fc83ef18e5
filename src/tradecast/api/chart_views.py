"""What the console draws, in the compact JSON a chart takes: candles, decision and fill
markers, and the equity curve against buy-and-hold.

Times are epoch seconds (UTC), what chart libraries index by; decimals stay strings. The equity
curve is rebuilt from the broker's fills marked at each bar's close, with the same ledger the
eval harness scores (:mod:`tradecast.evals.ledger`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, Field

from tradecast.domain import Candle, Fill, Order
from tradecast.evals.baselines import buy_and_hold_equity
from tradecast.evals.ledger import ZERO, equity_curve, price_grid, trade_log, trigger_of
from tradecast.evals.metrics import drawdowns

Outcome = Literal["filled", "rejected", "hold", "waiting", "unfilled"]


class CandleBar(BaseModel):
    """One bar: open time (epoch s) and OHLCV as decimal strings."""

    t: int
    o: str
    h: str
    l: str  # noqa: E741 - the OHLC letters are the format
    c: str
    v: str


class CandleList(BaseModel):
    """Closed bars up to what the desk has seen, oldest first."""

    symbol: str
    timeframe: str
    items: list[CandleBar]


class FillMark(BaseModel):
    """A fill on the chart: who placed its order (``desk`` or a broker exit)."""

    t: int
    side: str
    price: str
    quantity: str
    trigger: str


class DecisionMark(BaseModel):
    """A decision on the chart, with what came of it."""

    id: str
    t: int
    decided_at: str
    symbol: str
    action: str
    status: str
    outcome: Outcome
    quantity: str
    price: str
    confidence: float


class MarkerList(BaseModel):
    """The decisions (oldest first) and the broker's fills on a symbol."""

    items: list[DecisionMark]
    fills: list[FillMark]


class EquityPoint(BaseModel):
    """The account at one bar's close, beside buying and holding from the start."""

    t: int
    equity: str
    buy_and_hold: str
    drawdown: str = Field(description="fall of equity from its running peak (0.05 = 5%)")


class EquityHistory(BaseModel):
    """One point per bar from the first decision to what the desk has seen."""

    symbol: str
    start_equity: str
    items: list[EquityPoint]


def epoch(instant: datetime) -> int:
    """Whole seconds since 1970 (UTC)."""
    return int(instant.timestamp())


def candle_bars(candles: Sequence[Candle]) -> list[dict[str, Any]]:
    """Candles as chart bars."""
    return [
        {
            "t": epoch(c.timestamp),
            "o": str(c.open),
            "h": str(c.high),
            "l": str(c.low),
            "c": str(c.close),
            "v": str(c.volume),
        }
        for c in candles
    ]


def outcome_of(report: dict[str, Any]) -> Outcome:
    """What came of a tick: filled, refused by the gate or a human, held, waiting, unfilled."""
    if report["status"] == "awaiting_approval":
        return "waiting"
    if report["decision"]["action"] == "HOLD":
        return "hold"
    if report["fills"]:
        return "filled"
    if not report["risk"]["approved"] or report["risk"]["approval"] == "rejected":
        return "rejected"
    return "unfilled"


def decision_marks(reports: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tick reports (JSON, oldest first) as chart markers; ticks without a decision are left
    out."""
    marks = []
    for report in reports:
        decision = report.get("decision")
        if not decision:
            continue
        decided_at = datetime.fromisoformat(decision["decided_at"])
        marks.append(
            {
                "id": report["id"],
                "t": epoch(decided_at),
                "decided_at": decision["decided_at"],
                "symbol": decision["symbol"],
                "action": decision["action"],
                "status": report["status"],
                "outcome": outcome_of(report),
                "quantity": decision["quantity"],
                "price": decision["price"],
                "confidence": decision["confidence"],
            }
        )
    return marks


def fill_marks(fills: Sequence[Fill], orders: Sequence[Order]) -> list[dict[str, Any]]:
    """Fills as chart markers, each with the trigger of its order."""
    client_ids = {o.id: o.client_order_id for o in orders}
    return [
        {
            "t": epoch(f.timestamp),
            "side": f.side.value,
            "price": str(f.price),
            "quantity": str(f.quantity),
            "trigger": trigger_of(client_ids.get(f.order_id, "")),
        }
        for f in fills
    ]


def opening_cash(cash_now: Decimal, fills: Sequence[Fill]) -> Decimal:
    """The account's cash before its first fill: today's cash with every fill undone (the
    broker's own rounding of each notional), so the curve starts where the broker did even
    when the starting-cash setting has changed since. The ledger the curve is drawn with
    gives what the fills did to cash."""
    moved = trade_log(fills, (), ZERO)
    return cash_now - moved[-1].cash_after if moved else cash_now


@dataclass(frozen=True)
class SymbolTrades:
    """One symbol's part of the book: its fills, orders and closed bars."""

    fills: Sequence[Fill]
    orders: Sequence[Order]
    candles: Sequence[Candle]


def equity_points(
    book: Sequence[SymbolTrades],
    *,
    bar: timedelta,
    start: datetime,
    starting_cash: Decimal,
    fee_bps: float,
) -> list[dict[str, Any]]:
    """Equity, buy-and-hold and drawdown at each bar close from ``start`` on, for the fills
    of every symbol of the book (the account's cash is ``starting_cash`` before the first).

    Each symbol adds what its fills did to cash and its holding at the close; buy-and-hold
    puts an equal share of the starting cash in each symbol. The first symbol's closes are
    the grid; the others are carried forward onto it."""
    grids = [_prices(part.candles, bar, start) for part in book]
    if not book or grids[0].empty:
        return []
    times = grids[0].index
    equity = pd.Series(float(starting_cash), index=times)
    hold = pd.Series(0.0, index=times)
    share = float(starting_cash) / len(book)
    for part, grid in zip(book, grids, strict=True):
        prices = grid.reindex(times, method="ffill").bfill()
        if prices.isna().all():
            hold += share  # no bars of this symbol yet: its share stays in cash
            continue
        curve = equity_curve(trade_log(part.fills, part.orders, ZERO), prices, ZERO)
        equity += curve["equity"].to_numpy()
        hold += buy_and_hold_equity(prices.to_numpy(), share, fee_bps)
    falls = drawdowns(equity.to_numpy())
    return [
        {
            "t": epoch(instant.to_pydatetime()),
            "equity": f"{value:.2f}",
            "buy_and_hold": f"{held:.2f}",
            "drawdown": f"{fall:.6f}",
        }
        for instant, value, held, fall in zip(times, equity, hold, falls, strict=True)
    ]


def _prices(candles: Sequence[Candle], bar: timedelta, start: datetime) -> pd.Series:
    if not candles:
        return pd.Series(dtype="float64")
    frame = pd.DataFrame(
        {"close": [float(c.close) for c in candles]},
        index=pd.DatetimeIndex([c.timestamp for c in candles]),
    )
    return price_grid(frame, bar, start, candles[-1].timestamp + bar)

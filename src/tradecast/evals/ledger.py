"""The desk's trade log and equity curve, rebuilt from the broker's fills and the prices.

The equity curve is marked at every bar close in the window (not only at decisions), so its
returns, Sharpe and drawdown are on the same grid as the baselines'. A closed trade is a sell
fill; its P&L is net of the sell fee and of the buy fees of the units it closes, against the
average cost (the broker's own accounting).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd

from tradecast.broker.market_rules import money
from tradecast.domain import Fill, Order, Side

ZERO = Decimal(0)


@dataclass(frozen=True)
class TradeRow:
    """One fill as the trade log reports it."""

    time: datetime
    order_id: str
    client_order_id: str
    trigger: str
    """'desk' (an order the desk decided), 'stop_loss', 'take_profit' or 'time_stop' (broker
    exits)."""
    side: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    cash_after: Decimal
    position_after: Decimal
    realized_pnl: Decimal | None
    """Net P&L of a sell (None for buys)."""

    def as_dict(self) -> dict[str, str]:
        """The row with exact decimals as strings (for CSV and JSON)."""
        return {
            "time": self.time.isoformat(),
            "order_id": self.order_id,
            "client_order_id": self.client_order_id,
            "trigger": self.trigger,
            "side": self.side,
            "quantity": f"{self.quantity:f}",
            "price": f"{self.price:f}",
            "fee": f"{self.fee:f}",
            "cash_after": f"{self.cash_after:f}",
            "position_after": f"{self.position_after:f}",
            "realized_pnl": "" if self.realized_pnl is None else f"{self.realized_pnl:f}",
        }


TRADE_COLUMNS = tuple(TradeRow.__dataclass_fields__)


def trigger_of(client_order_id: str) -> str:
    """Who placed an order, from its client order id."""
    for trigger in ("stop_loss", "take_profit", "time_stop"):
        if client_order_id.startswith(trigger):
            return trigger
    return "desk"


def trade_log(fills: Sequence[Fill], orders: Sequence[Order], cash: Decimal) -> list[TradeRow]:
    """The fills in order, with cash, position and net P&L after each (average cost)."""
    client_ids = {o.id: o.client_order_id for o in orders}
    rows: list[TradeRow] = []
    held = cost = ZERO  # units held and what they cost, buy fees included
    for fill in fills:
        notional = money(fill.quantity * fill.price)  # the broker's rounding
        pnl: Decimal | None = None
        if fill.side is Side.BUY:
            cash -= notional + fill.fee
            held += fill.quantity
            cost += notional + fill.fee
        else:
            cash += notional - fill.fee
            unit_cost = cost / held if held else ZERO
            pnl = notional - fill.fee - unit_cost * fill.quantity
            cost -= unit_cost * fill.quantity
            held -= fill.quantity
            if held == 0:
                cost = ZERO
        client_id = client_ids.get(fill.order_id, "")
        rows.append(
            TradeRow(
                time=fill.timestamp,
                order_id=fill.order_id,
                client_order_id=client_id,
                trigger=trigger_of(client_id),
                side=fill.side.value,
                quantity=fill.quantity,
                price=fill.price,
                fee=fill.fee,
                cash_after=cash,
                position_after=held,
                realized_pnl=None if pnl is None else money(pnl),
            )
        )
    return rows


def price_grid(
    frame: pd.DataFrame, interval: timedelta, start: datetime, end: datetime
) -> pd.Series:
    """Closes indexed by the instant each bar closed, from the last close at or before
    ``start`` to ``end`` (the prices a decision in the window could trade at)."""
    closes = pd.Series(frame["close"].to_numpy(), index=frame.index + interval, name="close")
    first = closes.index.searchsorted(pd.Timestamp(start), side="right") - 1
    stop = closes.index.searchsorted(pd.Timestamp(end), side="right")
    return closes.iloc[max(first, 0) : stop]


def equity_curve(
    rows: Sequence[TradeRow], prices: pd.Series, starting_cash: Decimal
) -> pd.DataFrame:
    """Cash, position and equity at each price instant (fills at or before it count)."""
    times = prices.index
    cash = np.full(len(times), float(starting_cash))
    position = np.zeros(len(times))
    if rows:
        fill_times = pd.DatetimeIndex([pd.Timestamp(r.time) for r in rows])
        # index of the last fill at or before each price instant (-1: none yet)
        last = fill_times.searchsorted(times, side="right") - 1
        cash_after = np.array([float(r.cash_after) for r in rows])
        held_after = np.array([float(r.position_after) for r in rows])
        seen = last >= 0
        cash[seen] = cash_after[last[seen]]
        position[seen] = held_after[last[seen]]
    equity = cash + position * prices.to_numpy(dtype="float64")
    return pd.DataFrame(
        {"price": prices.to_numpy(), "cash": cash, "position": position, "equity": equity},
        index=times,
    )


def closed_trade_pnls(rows: Sequence[TradeRow]) -> list[float]:
    """Net P&L of every sell in the log."""
    return [float(r.realized_pnl) for r in rows if r.realized_pnl is not None]

"""Where a BUY's position leaves: stop-loss, take-profit and time-stop, as plain code.

``atr`` (the default) puts the stop ``stop_atr`` daily average true ranges under the price
and the target ``take_profit_atr`` above it, so exits breathe with the market instead of a
fixed percentage that is noise in a wild week and a mile away in a calm one; a time-stop
closes the position ``time_stop_days`` after the buy. ``trader`` keeps the trader agent's
percentages. The broker enforces all three; the gate checks every order as always.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, ROUND_UP, Decimal

from tradecast.settings import StrategyConfig

PRICE_STEP = Decimal("0.01")


@dataclass(frozen=True)
class ExitPlan:
    """A BUY's exits (None: none of that kind)."""

    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    time_stop_at: datetime | None = None

    def for_short(self, price: Decimal) -> ExitPlan:
        """The same distances for a short opened at ``price``: the stop above it, the target
        below it (none where that would be at or below zero)."""
        take = 2 * price - self.take_profit if self.take_profit is not None else None
        return ExitPlan(
            stop_loss=2 * price - self.stop_loss if self.stop_loss is not None else None,
            take_profit=take if take is not None and take > 0 else None,
            time_stop_at=self.time_stop_at,
        )


def atr_exits(
    config: StrategyConfig, price: Decimal, daily_atr: float | None, at: datetime
) -> ExitPlan:
    """Stops ``config.stop_atr`` and targets ``config.take_profit_atr`` daily ATRs from
    ``price`` (none without an ATR, or when the stop would fall to zero or below), and a
    time-stop ``config.time_stop_days`` after ``at``."""
    stop = take = None
    if daily_atr is not None and math.isfinite(daily_atr) and daily_atr > 0:
        atr = Decimal(str(daily_atr))
        if config.stop_atr > 0:
            stop = _below(price, price - Decimal(str(config.stop_atr)) * atr)
        if config.take_profit_atr > 0:
            take = _above(price, price + Decimal(str(config.take_profit_atr)) * atr)
    time_stop = at + timedelta(days=config.time_stop_days) if config.time_stop_days > 0 else None
    return ExitPlan(stop_loss=stop, take_profit=take, time_stop_at=time_stop)


def trader_exits(price: Decimal, *, stop_loss_pct: float, take_profit_pct: float) -> ExitPlan:
    """The trader agent's exits, as fractions of ``price`` (a stop of 0 or 100% or more is
    no stop)."""
    stop = (
        _below(price, price * (1 - Decimal(str(stop_loss_pct)))) if 0 < stop_loss_pct < 1 else None
    )
    take = (
        _above(price, price * (1 + Decimal(str(take_profit_pct)))) if take_profit_pct > 0 else None
    )
    return ExitPlan(stop_loss=stop, take_profit=take)


def _below(price: Decimal, level: Decimal) -> Decimal | None:
    """A stop rounded down to the price step; None unless strictly between 0 and ``price``
    (a stop on the price would refuse the very buy it protects)."""
    rounded = level.quantize(PRICE_STEP, rounding=ROUND_DOWN)
    return rounded if 0 < rounded < price else None


def _above(price: Decimal, level: Decimal) -> Decimal | None:
    """A target rounded up to the price step; None unless strictly above ``price``."""
    rounded = level.quantize(PRICE_STEP, rounding=ROUND_UP)
    return rounded if rounded > price else None

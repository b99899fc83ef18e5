"""Trend and time-series momentum: long while the price trends up, out when it turns down.

Two moving averages of daily closes set the trend (fast above slow and the close above the
slow one is up), and the 30-day return sets the momentum; they must agree, and the momentum
must be at least half a standard deviation of 30 days of returns (a range's swings are not a
trend). Confidence grows with that t-statistic.
"""

from __future__ import annotations

import math

from tradecast.agents.strategies.inputs import StrategyInputs
from tradecast.agents.strategies.signal import NO_EDGE_CONFIDENCE, too_few_days, vote
from tradecast.domain import Action, AgentSignal

FAST_DAYS = 10
SLOW_DAYS = 30
MOMENTUM_DAYS = 30
MIN_STRENGTH = 0.5


def trend_signal(inputs: StrategyInputs) -> AgentSignal:
    """BUY in an up trend with positive momentum, SELL in a down trend with negative."""
    if not inputs.enough(MOMENTUM_DAYS + 1):
        return too_few_days("trend", MOMENTUM_DAYS + 1, len(inputs.days))
    fast, slow, price = inputs.sma(FAST_DAYS), inputs.sma(SLOW_DAYS), inputs.price
    momentum = inputs.trailing_return(MOMENTUM_DAYS)
    volatility = inputs.daily_volatility() or 0.0
    strength = abs(math.log1p(momentum)) / (volatility * math.sqrt(MOMENTUM_DAYS) or 1.0)
    confidence = 0.5 + 0.4 * math.tanh(strength)
    detail = f"SMA{FAST_DAYS}d/{SLOW_DAYS}d {fast:.6g}/{slow:.6g}, {MOMENTUM_DAYS}d {momentum:+.1%}"
    if strength < MIN_STRENGTH:
        return vote("trend", Action.HOLD, NO_EDGE_CONFIDENCE, f"no clear trend: {detail}")
    if fast > slow and price > slow and momentum > 0:
        return vote("trend", Action.BUY, confidence, f"up trend: {detail}")
    if fast < slow and price < slow and momentum < 0:
        return vote("trend", Action.SELL, confidence, f"down trend: {detail}")
    return vote("trend", Action.HOLD, NO_EDGE_CONFIDENCE, f"no clear trend: {detail}")

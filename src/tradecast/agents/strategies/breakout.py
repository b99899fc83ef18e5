"""Breakout: a close beyond the 20-day Donchian channel starts a move (ATR-scaled).

Above the highest high of the 20 days before is a BUY, below the lowest low a SELL;
confidence grows with the distance past the channel in daily ATRs.
"""

from __future__ import annotations

import math

from tradecast.agents.strategies.inputs import StrategyInputs
from tradecast.agents.strategies.signal import NO_EDGE_CONFIDENCE, too_few_days, vote
from tradecast.domain import Action, AgentSignal

CHANNEL_DAYS = 20
ATR_DAYS = 14


def breakout_signal(inputs: StrategyInputs) -> AgentSignal:
    """BUY on a close above the channel, SELL below it, else a weak HOLD."""
    channel, atr = inputs.channel(CHANNEL_DAYS), inputs.atr(ATR_DAYS)
    if channel is None or atr is None:
        return too_few_days("breakout", CHANNEL_DAYS + 1, len(inputs.days))
    high, low = channel
    price = inputs.price
    detail = f"{CHANNEL_DAYS}d channel {low:.6g}-{high:.6g}, close {price:.6g}"
    if price > high:
        excess = (price - high) / atr if atr > 0 else 1.0
        return vote("breakout", Action.BUY, 0.55 + 0.4 * math.tanh(excess), f"breakout: {detail}")
    if price < low:
        excess = (low - price) / atr if atr > 0 else 1.0
        return vote("breakout", Action.SELL, 0.55 + 0.4 * math.tanh(excess), f"breakdown: {detail}")
    return vote("breakout", Action.HOLD, NO_EDGE_CONFIDENCE, f"inside the channel: {detail}")

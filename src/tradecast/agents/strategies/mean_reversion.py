"""Mean reversion: buy a stretched fall, sell a stretched rise (daily RSI and Bollinger).

Either extreme is enough (RSI14 below 30 or the close under the lower 20-day Bollinger band,
and the mirror image); confidence grows with how far past the line the market is.
"""

from __future__ import annotations

from tradecast.agents.strategies.inputs import StrategyInputs
from tradecast.agents.strategies.signal import NO_EDGE_CONFIDENCE, too_few_days, vote
from tradecast.domain import Action, AgentSignal

RSI_DAYS = 14
BAND_DAYS = 20
OVERSOLD, OVERBOUGHT = 30.0, 70.0


def mean_reversion_signal(inputs: StrategyInputs) -> AgentSignal:
    """BUY when oversold, SELL when overbought, else a weak HOLD."""
    rsi, pct_b = inputs.rsi(RSI_DAYS), inputs.bollinger_pct_b(BAND_DAYS)
    if rsi is None or pct_b is None:
        return too_few_days("mean_reversion", 2 * RSI_DAYS + 1, len(inputs.days))
    detail = f"daily RSI{RSI_DAYS} {rsi:.1f}, Bollinger %b {pct_b:.2f}"
    low = max((OVERSOLD - rsi) / 30, -pct_b)
    if rsi < OVERSOLD or pct_b < 0:
        return vote("mean_reversion", Action.BUY, 0.5 + low, f"oversold: {detail}")
    high = max((rsi - OVERBOUGHT) / 30, pct_b - 1)
    if rsi > OVERBOUGHT or pct_b > 1:
        return vote("mean_reversion", Action.SELL, 0.5 + high, f"overbought: {detail}")
    return vote("mean_reversion", Action.HOLD, NO_EDGE_CONFIDENCE, f"inside the range: {detail}")

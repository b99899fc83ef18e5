"""The deterministic voice in the consensus: a plain indicator rule, no LLM.

Small local models are weak traders; this rule (RSI mean reversion, else trend following)
keeps the desk's decisions anchored in the data and is the same every time.
"""

from __future__ import annotations

from tradecast.domain import Action, AgentSignal
from tradecast.market.indicators import IndicatorSummary

OVERSOLD = 30.0
OVERBOUGHT = 70.0


def rules_signal(summary: IndicatorSummary) -> AgentSignal:
    """RSI extremes revert; otherwise follow the SMA trend when MACD agrees."""
    if summary.rsi_14 is None or summary.trend is None:
        return AgentSignal.abstain("rules", f"too few bars for indicators ({summary.bars})")
    rsi = summary.rsi_14
    if rsi < OVERSOLD:
        strength = min(1.0, 0.5 + (OVERSOLD - rsi) / 40)
        return _signal(Action.BUY, strength, f"RSI {rsi:.1f} is oversold")
    if rsi > OVERBOUGHT:
        strength = min(1.0, 0.5 + (rsi - OVERBOUGHT) / 40)
        return _signal(Action.SELL, strength, f"RSI {rsi:.1f} is overbought")
    hist = summary.macd_hist or 0.0
    if summary.trend == "up" and hist > 0:
        return _signal(Action.BUY, 0.55, "uptrend above SMA20/SMA50 with positive MACD")
    if summary.trend == "down" and hist < 0:
        return _signal(Action.SELL, 0.55, "downtrend below SMA20/SMA50 with negative MACD")
    return _signal(Action.HOLD, 0.4, f"no edge: trend {summary.trend}, RSI {rsi:.1f}")


def _signal(action: Action, confidence: float, rationale: str) -> AgentSignal:
    return AgentSignal(
        agent="rules", action=action, confidence=round(confidence, 3), rationale=rationale
    )

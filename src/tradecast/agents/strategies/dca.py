"""Dollar-cost averaging as an accumulation policy: build a core position in small steps.

While the position is under its accumulation target, every decision backs a small buy
(a quarter of the allowed size), a little more keenly below the 30-day average; at the
target it steps aside. It never sells: exits belong to the other agents, stops and the gate.
"""

from __future__ import annotations

from tradecast.agents.strategies.inputs import StrategyInputs
from tradecast.agents.strategies.signal import NO_EDGE_CONFIDENCE, too_few_days, vote
from tradecast.domain import Action, AgentSignal

TARGET_WEIGHT = 0.05
"""The core position, as a share of equity (the risk limits cap it anyway)."""
STEP_FRACTION = 0.25
AVERAGE_DAYS = 30


def dca_signal(inputs: StrategyInputs) -> AgentSignal:
    """A small BUY while under the target weight, else a weak HOLD."""
    if not inputs.enough(AVERAGE_DAYS):
        return too_few_days("dca", AVERAGE_DAYS, len(inputs.days))
    held = inputs.held_weight
    if held >= TARGET_WEIGHT:
        return vote("dca", Action.HOLD, NO_EDGE_CONFIDENCE, f"core position built ({held:.1%})")
    discount = inputs.price / inputs.sma(AVERAGE_DAYS) - 1.0
    confidence = 0.45 + (0.15 if discount < 0 else 0.0)
    return vote(
        "dca",
        Action.BUY,
        confidence,
        f"accumulating: {held:.1%} of {TARGET_WEIGHT:.0%}, {discount:+.1%} vs {AVERAGE_DAYS}d avg",
        size_fraction=STEP_FRACTION,
    )

"""The signal every strategy agent returns: the desk's AgentSignal, with a bounded confidence."""

from __future__ import annotations

from tradecast.domain import Action, AgentSignal
from tradecast.settings import StrategyName

NO_EDGE_CONFIDENCE = 0.2
"""A strategy without a setup votes HOLD this weakly, so the others decide."""


def vote(
    agent: StrategyName,
    action: Action,
    confidence: float,
    rationale: str,
    size_fraction: float = 1.0,
) -> AgentSignal:
    """``agent``'s vote with its confidence clipped to [0, 1] and rounded."""
    return AgentSignal(
        agent=agent,
        action=action,
        confidence=round(min(1.0, max(0.0, confidence)), 3),
        rationale=rationale,
        size_fraction=size_fraction,
    )


def too_few_days(agent: StrategyName, needed: int, have: int) -> AgentSignal:
    """An explained abstention: not enough history yet."""
    return AgentSignal.abstain(agent, f"needs {needed} days of bars, has {have}")

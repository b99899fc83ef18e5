"""Deterministic strategy agents beside the rules agent: pure functions of the closed bars,
each returning the desk's AgentSignal with a confidence and a rationale, at no LLM cost."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from tradecast.agents.strategies.breakout import breakout_signal
from tradecast.agents.strategies.dca import dca_signal
from tradecast.agents.strategies.inputs import StrategyInputs
from tradecast.agents.strategies.mean_reversion import mean_reversion_signal
from tradecast.agents.strategies.trend import trend_signal
from tradecast.domain import AgentSignal
from tradecast.settings import StrategyName

Strategy = Callable[[StrategyInputs], AgentSignal]

STRATEGIES: dict[StrategyName, Strategy] = {
    "trend": trend_signal,
    "mean_reversion": mean_reversion_signal,
    "breakout": breakout_signal,
    "dca": dca_signal,
}

HISTORY_DAYS = 45
"""Daily bars the strategies need at most (the longest lookback, with room)."""


def strategy_signals(inputs: StrategyInputs, enabled: Iterable[StrategyName]) -> list[AgentSignal]:
    """The votes of the ``enabled`` strategies, in a fixed order."""
    chosen = set(enabled)
    return [strategy(inputs) for name, strategy in STRATEGIES.items() if name in chosen]


__all__ = ["HISTORY_DAYS", "STRATEGIES", "StrategyInputs", "strategy_signals"]

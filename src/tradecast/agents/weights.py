"""Consensus weights that adapt: to the market regime known at the decision, and to each
agent's own recent track record read from the memory's outcomes.

weight = base x regime factor x record factor. The regime factors favour the strategies
built for the regime (trend and breakout in a trend, mean reversion in a range) and damp the
rest; the LLM agents and the rules agent are not regime specialists (factor 1). The record
factor is twice the agent's decayed hit rate, shrunk toward 50% with few scored votes, so an
agent right half the time keeps its base weight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tradecast.agents.strategies.inputs import StrategyInputs
from tradecast.domain import Action, AgentName, AgentWeight, MemoryHit
from tradecast.market.regimes import (
    HIGH_VOLATILITY,
    SIDEWAYS,
    TREND_DOWN,
    TREND_UP,
    UNKNOWN,
    label_regimes,
)
from tradecast.settings import DeskConfig

REGIME_FACTORS: Mapping[str, Mapping[str, float]] = {
    TREND_UP: {"trend": 1.5, "breakout": 1.25, "mean_reversion": 0.5, "dca": 1.0},
    TREND_DOWN: {"trend": 1.5, "breakout": 1.25, "mean_reversion": 0.5, "dca": 0.5},
    SIDEWAYS: {"trend": 0.5, "breakout": 0.75, "mean_reversion": 1.5, "dca": 1.0},
    HIGH_VOLATILITY: {"trend": 1.0, "breakout": 0.75, "mean_reversion": 0.5, "dca": 0.5},
    UNKNOWN: {},
}
RECORD_FACTOR_BOUNDS = (0.25, 1.75)
# Regimes of daily bars: a 20-day trend, and 7-day volatility against the median of the
# readings before it (the desk reads about 45 days, so the median has some 20 to learn from).
TREND_DAYS, VOL_DAYS, VOL_HISTORY_DAYS = 20.0, 7.0, 20.0


def current_regime(inputs: StrategyInputs) -> str:
    """The regime of the latest daily bar, from daily closes up to it only."""
    closes = inputs.days.close
    if len(closes) < 2 or not np.all(closes > 0):
        return UNKNOWN
    labels = label_regimes(
        closes,
        1.0,
        lookback_days=TREND_DAYS,
        vol_window_days=VOL_DAYS,
        vol_history_days=VOL_HISTORY_DAYS,
    )
    return str(labels[-1])


@dataclass(frozen=True)
class TrackRecord:
    """An agent's decayed hit rate over its scored votes, shrunk toward 50%."""

    hit_rate: float
    scored_votes: int


def track_records(
    hits: Sequence[MemoryHit], *, horizon: str, half_life: float, prior: float
) -> dict[str, TrackRecord]:
    """Each agent's record over ``hits`` (newest first): a BUY vote scores when the price
    rose over ``horizon``, a SELL when it fell; a vote ``half_life`` decisions old counts
    half; ``prior`` pseudo-votes at 50% shrink the rate of an agent with few votes."""
    right: dict[str, float] = {}
    counted: dict[str, float] = {}
    votes: dict[str, int] = {}
    for age, hit in enumerate(hits):
        outcome = hit.outcome_returns.get(horizon)
        if outcome is None or outcome == 0:
            continue
        decay = 0.5 ** (age / half_life)
        for agent, action in hit.votes.items():
            correct = (action is Action.BUY) == (outcome > 0)
            right[agent] = right.get(agent, 0.0) + decay * correct
            counted[agent] = counted.get(agent, 0.0) + decay
            votes[agent] = votes.get(agent, 0) + 1
    return {
        agent: TrackRecord(
            hit_rate=(right[agent] + 0.5 * prior) / (counted[agent] + prior),
            scored_votes=votes[agent],
        )
        for agent in counted
        if counted[agent] + prior > 0
    }


def base_weights(config: DeskConfig) -> dict[AgentName, float]:
    """Every voter's configured weight (the strategies that are switched on)."""
    weights: dict[AgentName, float] = {
        "analyst": config.analyst_weight,
        "trader": config.trader_weight,
        "rules": config.rules_weight,
    }
    for name in sorted(config.strategy.strategies):
        weights[name] = config.strategy.strategy_weight
    return weights


def agent_weights(
    config: DeskConfig, regime: str, records: Mapping[str, TrackRecord]
) -> tuple[AgentWeight, ...]:
    """Each voter's weight for this decision, with the factors that made it."""
    adaptive = config.strategy.adaptive_weights
    rows = []
    for agent, base in base_weights(config).items():
        if not adaptive:
            rows.append(AgentWeight(agent=agent, weight=base, base=base, note="fixed weight"))
            continue
        regime_factor = REGIME_FACTORS.get(regime, {}).get(agent, 1.0)
        record = records.get(agent)
        rate = record.hit_rate if record else 0.5
        low, high = RECORD_FACTOR_BOUNDS
        record_factor = min(high, max(low, 2 * rate))
        weight = base * regime_factor * record_factor
        votes = record.scored_votes if record else 0
        rows.append(
            AgentWeight(
                agent=agent,
                weight=round(weight, 4),
                base=base,
                regime_factor=regime_factor,
                record_factor=round(record_factor, 4),
                hit_rate=round(rate, 4),
                scored_votes=votes,
                note=f"{base:g} x {regime} {regime_factor:g} x record {rate:.0%} of {votes} "
                f"({record_factor:.2f}) = {weight:.2f}",
            )
        )
    return tuple(rows)

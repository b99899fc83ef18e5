"""Adaptive consensus weights: the regime known at the decision, each agent's decayed and
shrunk hit rate from the memory's outcomes, and fixed weights as a setting."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from tradecast.agents.strategies import StrategyInputs
from tradecast.agents.weights import (
    RECORD_FACTOR_BOUNDS,
    agent_weights,
    current_regime,
    track_records,
)
from tradecast.domain import Action, MemoryHit
from tradecast.settings import DeskConfig, StrategyConfig

AT = datetime(2021, 3, 1, tzinfo=UTC)


def hit(age_days: int, ret: float | None, **votes: Action) -> MemoryHit:
    return MemoryHit(
        decision_id=f"d{age_days}",
        symbol="BTC/USDT",
        decided_at=AT - timedelta(days=age_days),
        action=Action.HOLD,
        situation="s",
        similarity=1.0,
        outcome_returns={} if ret is None else {"24h": ret},
        votes=votes,
    )


def daily(closes: np.ndarray) -> StrategyInputs:
    index = pd.date_range("2021-01-01", periods=len(closes), freq="D", tz="UTC")
    frame = pd.DataFrame({"high": closes, "low": closes, "close": closes}, index=index)
    return StrategyInputs.from_frame(frame, 1.0)


def test_the_regime_is_read_from_daily_closes_up_to_the_decision() -> None:
    days = np.arange(45)
    calm_up = 100 * np.exp(0.01 * days) * (1 + 0.002 * np.sin(days))
    calm_range = 100 * (1 + 0.01 * np.sin(days * 2 * math.pi / 9))
    assert current_regime(daily(calm_up)) == "trend_up"
    assert current_regime(daily(calm_up[::-1])) == "trend_down"
    assert current_regime(daily(calm_range)) == "sideways"
    shock = calm_range.copy()
    shock[-5:] *= np.array([0.85, 1.1, 0.8, 1.15, 0.9])
    assert current_regime(daily(shock)) == "high_volatility"
    assert current_regime(daily(calm_up[:10])) == "unknown"


def test_a_track_record_scores_votes_against_outcomes_decayed_and_shrunk() -> None:
    hits = [
        hit(1, 0.02, trend=Action.BUY, analyst=Action.SELL),
        hit(2, -0.01, trend=Action.SELL, analyst=Action.BUY),
        hit(3, None, trend=Action.SELL),  # outcome not known yet: not scored
        hit(4, 0.0, trend=Action.SELL),  # a flat outcome says nothing
    ]
    records = track_records(hits, horizon="24h", half_life=1.0, prior=0.0)
    assert records["trend"].hit_rate == 1.0 and records["trend"].scored_votes == 2
    assert records["analyst"].hit_rate == 0.0
    shrunk = track_records(hits, horizon="24h", half_life=1.0, prior=2.0)
    # trend: (1 + 0.5 + 0.5 * 2) / (1 + 0.5 + 2) with the second vote decayed to a half
    assert shrunk["trend"].hit_rate == (1.5 + 1.0) / (1.5 + 2.0)


def test_weights_follow_the_regime_and_the_record_within_bounds() -> None:
    config = DeskConfig()
    records = track_records(
        [hit(i, 0.01, trend=Action.SELL, breakout=Action.BUY) for i in range(1, 40)],
        horizon="24h",
        half_life=15.0,
        prior=5.0,
    )
    weights = {w.agent: w for w in agent_weights(config, "sideways", records)}
    low, high = RECORD_FACTOR_BOUNDS
    assert weights["mean_reversion"].weight == 1.5  # no record: factor 1
    assert weights["trend"].record_factor == low and weights["trend"].weight == 0.5 * low
    assert weights["breakout"].record_factor == high  # right every time
    assert weights["breakout"].weight == 0.75 * high  # damped by the regime
    assert weights["analyst"].regime_factor == 1.0 and weights["analyst"].base == 0.25
    assert all("sideways" in w.note for w in weights.values())


def test_fixed_weights_are_the_configured_base_weights() -> None:
    config = DeskConfig(strategy=StrategyConfig(adaptive_weights=False, strategy_weight=2.0))
    records = track_records([hit(1, 0.01, trend=Action.SELL)], horizon="24h", half_life=1, prior=0)
    weights = agent_weights(config, "trend_up", records)
    assert {w.agent: w.weight for w in weights} == {
        "analyst": 0.25,
        "trader": 0.25,
        "rules": 1.0,
        "breakout": 2.0,
        "dca": 2.0,
        "mean_reversion": 2.0,
        "trend": 2.0,
    }
    assert all(w.note == "fixed weight" and w.hit_rate is None for w in weights)

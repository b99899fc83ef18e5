"""Consensus: deterministic, confidence-weighted; the risk agent only shrinks or vetoes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from tradecast.agents.consensus import SizingContext, combine, decision_id
from tradecast.agents.weights import TrackRecord, agent_weights
from tradecast.domain import Action, AgentSignal
from tradecast.market.regimes import UNKNOWN
from tradecast.settings import DeskConfig

AT = datetime(2021, 3, 1, 8, tzinfo=UTC)
SIZING = SizingContext(
    price=Decimal(50000),
    equity=Decimal(10000),
    held_quantity=Decimal("0.02"),
    max_position_pct=Decimal("0.10"),
)


def sig(agent: str, action: Action, confidence: float, size: float = 1.0) -> AgentSignal:
    return AgentSignal(
        agent=agent,
        action=action,
        confidence=confidence,
        size_fraction=size,
        rationale=f"{agent} says {action}",
    )


def risk(size: float) -> AgentSignal:
    return AgentSignal(agent="risk", action=Action.HOLD, confidence=0.8, size_fraction=size)


def decide(signals, risk_signal=None, sizing=SIZING, **config):
    desk = DeskConfig(**{"analyst_weight": 1.0, "trader_weight": 1.0, **config})
    return combine(
        symbol="BTC/USDT",
        at=AT,
        signals=signals,
        risk=risk_signal,
        sizing=sizing,
        config=desk,
        weights=agent_weights(desk, UNKNOWN, {}),
    )


def test_agreement_buys_sized_by_confidence_and_position_limit():
    decision = decide(
        [
            sig("analyst", Action.BUY, 0.8),
            sig("trader", Action.BUY, 0.8),
            sig("rules", Action.BUY, 0.8),
        ],
        risk(1.0),
    )
    assert decision.action is Action.BUY
    assert decision.confidence == 0.8
    # 10% of 10,000 equity x 0.8 confidence / 50,000 price
    assert decision.quantity == Decimal("0.016")
    assert decision.id == decision_id("BTC/USDT", AT) == "BTCUSDT-20210301T0800"


def test_risk_shrinks_size_and_vetoes_but_never_grows_it():
    votes = [sig("analyst", Action.BUY, 0.8), sig("trader", Action.BUY, 0.8)]
    full = decide(votes, risk(1.0))
    half = decide(votes, risk(0.5))
    vetoed = decide(votes, risk(0.0))
    assert half.quantity == full.quantity / 2
    assert vetoed.action is Action.HOLD and vetoed.quantity == 0
    assert "vetoed" in vetoed.rationale
    risk_row = next(a for a in full.attribution if a.agent == "risk")
    assert risk_row.weight == 0.0


def test_abstentions_do_not_vote_and_all_abstaining_holds():
    votes = [AgentSignal.abstain("analyst", "timeout"), sig("rules", Action.SELL, 0.6)]
    decision = decide(votes, risk(1.0))
    assert decision.action is Action.SELL
    assert decision.confidence == 0.6
    nobody = decide(
        [AgentSignal.abstain("analyst", "timeout"), AgentSignal.abstain("trader", "garbage")]
    )
    assert nobody.action is Action.HOLD and nobody.confidence == 0


def test_split_vote_and_low_confidence_hold():
    tie = decide([sig("analyst", Action.BUY, 0.7), sig("trader", Action.SELL, 0.7)])
    assert tie.action is Action.HOLD
    weak = decide(
        [sig("analyst", Action.BUY, 0.2), sig("rules", Action.HOLD, 0.1)], min_confidence=0.5
    )
    assert weak.action is Action.HOLD and "below" in weak.rationale


def test_sell_without_a_position_holds():
    empty = SizingContext(
        price=Decimal(50000),
        equity=Decimal(10000),
        held_quantity=Decimal(0),
        max_position_pct=Decimal("0.1"),
    )
    decision = decide([sig("analyst", Action.SELL, 0.9)], risk(1.0), sizing=empty)
    assert decision.action is Action.HOLD
    assert "nothing held" in decision.rationale


def test_weights_change_the_winner():
    votes = [sig("analyst", Action.BUY, 0.6), sig("rules", Action.SELL, 0.6)]
    assert decide(votes, analyst_weight=2.0).action is Action.BUY
    assert decide(votes, rules_weight=2.0).action is Action.SELL


actions = st.sampled_from(list(Action))
unit = st.floats(min_value=0, max_value=1)


@given(
    st.lists(
        st.tuples(st.sampled_from(["analyst", "trader", "rules"]), actions, unit, unit), max_size=3
    ),
    unit,
    st.decimals(min_value=1, max_value=100000, places=2),
)
def test_consensus_is_deterministic_and_never_exceeds_the_sizing_cap(votes, risk_size, price):
    signals = [sig(agent, action, conf, size) for agent, action, conf, size in votes]
    sizing = SizingContext(
        price=price,
        equity=Decimal(10000),
        held_quantity=Decimal("0.5"),
        max_position_pct=Decimal("0.10"),
    )
    first = decide(signals, risk(risk_size), sizing=sizing)
    assert first == decide(signals, risk(risk_size), sizing=sizing)
    if first.action is Action.BUY:
        assert first.quantity * price <= Decimal(1000)
    if first.action is Action.SELL:
        assert first.quantity <= Decimal("0.5")
    if first.action is Action.HOLD:
        assert first.quantity == 0


def targeted(held: str, target: str = "0.06", note: str = "vol target") -> SizingContext:
    return SizingContext(
        price=Decimal(50000),
        equity=Decimal(10000),
        held_quantity=Decimal(held),
        max_position_pct=Decimal("0.10"),
        target_weight=Decimal(target),
        note=note,
    )


def test_a_buy_brings_the_position_to_its_target_weight_scaled_by_backing_and_risk():
    votes = [sig("trend", Action.BUY, 0.8), sig("dca", Action.BUY, 0.8, size=0.25)]
    decision = decide(votes, risk(0.5), sizing=targeted("0.004"))
    # gap 600 - 200 = 400 quote; backing (1 + 0.25) / 2; the risk agent keeps half
    assert decision.quantity == Decimal("0.0025")
    assert decision.sizing == "vol target"


def test_a_buy_at_its_target_holds_and_a_grown_position_is_trimmed_back():
    votes = [sig("trend", Action.BUY, 0.8)]
    at_target = decide(votes, risk(1.0), sizing=targeted("0.012"))
    assert at_target.action is Action.HOLD
    assert "already at its target weight" in at_target.rationale
    grown = decide([sig("trend", Action.HOLD, 0.5)], risk(1.0), sizing=targeted("0.016"))
    # 800 held against a 600 target (past the 1.25 band): sell 200 quote
    assert grown.action is Action.SELL and grown.quantity == Decimal("0.004")
    assert "trimmed to the target weight" in grown.rationale


def test_a_position_is_not_trimmed_down_to_a_probe_size():
    probe = SizingContext(**{**targeted("0.016").__dict__, "firm": False})
    decision = decide([sig("trend", Action.HOLD, 0.5)], risk(1.0), sizing=probe)
    assert decision.action is Action.HOLD


def test_the_risk_agent_never_holds_back_an_exit():
    votes = [sig("trend", Action.SELL, 0.9)]
    vetoed = decide(votes, risk(0.0), sizing=targeted("0.01"))
    shrunk = decide(votes, risk(0.3), sizing=targeted("0.01"))
    assert vetoed.action is shrunk.action is Action.SELL
    assert vetoed.quantity == shrunk.quantity == Decimal("0.01")


def test_attribution_says_why_each_weight_is_what_it_is():
    desk = DeskConfig()
    records = {"trend": TrackRecord(hit_rate=0.75, scored_votes=12)}
    weights = agent_weights(desk, "trend_up", records)
    decision = combine(
        symbol="BTC/USDT",
        at=AT,
        signals=[sig("trend", Action.BUY, 0.9), sig("mean_reversion", Action.SELL, 0.9)],
        risk=risk(1.0),
        sizing=SIZING,
        config=desk,
        weights=weights,
        regime="trend_up",
    )
    trend = next(a for a in decision.attribution if a.agent == "trend")
    assert decision.action is Action.BUY and decision.regime == "trend_up"
    assert trend.weight == 2.25  # 1 x trend_up 1.5 x record 75% (1.5)
    assert trend.weight_note == "1 x trend_up 1.5 x record 75% of 12 (1.50) = 2.25"

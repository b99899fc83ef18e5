"""Consensus: a deterministic, confidence-weighted vote of the directional agents.

The analyst, trader and rules vote on the direction with weight x confidence; abstentions
do not vote. The risk agent never votes: it can only shrink the size or veto. The result
carries attribution (who said what, with what weight) and the memory hits that were read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from tradecast.domain import Action, AgentSignal, Attribution, Decision, MemoryHit
from tradecast.settings import DeskConfig

QUANTITY_STEP = Decimal("0.000001")


@dataclass(frozen=True)
class SizingContext:
    """What sizing needs to know about the account at decision time."""

    price: Decimal
    equity: Decimal
    held_quantity: Decimal
    max_position_pct: Decimal


def decision_id(symbol: str, at: datetime) -> str:
    """A decision's id, the same for the same symbol and tick time (so retries reuse it)."""
    return f"{symbol.replace('/', '')}-{at:%Y%m%dT%H%M}"


def _weights(config: DeskConfig) -> dict[str, float]:
    return {
        "analyst": config.analyst_weight,
        "trader": config.trader_weight,
        "rules": config.rules_weight,
    }


def _vote(signals: list[AgentSignal], weights: dict[str, float]) -> tuple[Action, float]:
    tally = dict.fromkeys(Action, 0.0)
    total = 0.0
    for signal in signals:
        if signal.abstained:
            continue
        weight = weights.get(signal.agent, 0.0)
        tally[signal.action] += weight * signal.confidence
        total += weight
    if total == 0:
        return Action.HOLD, 0.0
    best = max(tally.values())
    winners = [action for action, score in tally.items() if score == best]
    action = winners[0] if len(winners) == 1 else Action.HOLD
    return action, round(tally[action] / total, 4)


def _risk_fraction(risk: AgentSignal | None, config: DeskConfig) -> float:
    if risk is None or risk.abstained:
        return config.risk_abstain_fraction
    return risk.size_fraction


def _trader_fraction(signals: list[AgentSignal], action: Action) -> float:
    trader = next((s for s in signals if s.agent == "trader" and not s.abstained), None)
    if trader is None or trader.action is not action:
        return 0.5
    return trader.size_fraction


def _quantity(action: Action, fraction: float, confidence: float, sizing: SizingContext) -> Decimal:
    scale = Decimal(str(fraction)) * Decimal(str(confidence))
    if action is Action.BUY:
        notional = sizing.equity * sizing.max_position_pct * scale
        raw = notional / sizing.price
    elif action is Action.SELL:
        raw = sizing.held_quantity * Decimal(str(fraction))
    else:
        return Decimal(0)
    return raw.quantize(QUANTITY_STEP, rounding=ROUND_DOWN)


def combine(
    *,
    symbol: str,
    at: datetime,
    signals: list[AgentSignal],
    risk: AgentSignal | None,
    sizing: SizingContext,
    config: DeskConfig,
    memory_hits: tuple[MemoryHit, ...] = (),
) -> Decision:
    """The desk's decision from the agents' signals; the same inputs give the same decision."""
    weights = _weights(config)
    action, confidence = _vote(signals, weights)
    notes: list[str] = []
    if action is not Action.HOLD and confidence < config.min_confidence:
        notes.append(
            f"{action.value} at confidence {confidence:.2f} is below {config.min_confidence:.2f}"
        )
        action = Action.HOLD
    risk_fraction = _risk_fraction(risk, config)
    if action is not Action.HOLD and risk_fraction == 0:
        notes.append("risk agent vetoed")
        action = Action.HOLD
    if action is Action.SELL and sizing.held_quantity <= 0:
        notes.append("nothing held to sell (spot, long only)")
        action = Action.HOLD
    fraction = _trader_fraction(signals, action) * risk_fraction
    quantity = _quantity(action, fraction, confidence, sizing)
    if action is not Action.HOLD and quantity <= 0:
        notes.append("size rounds to zero")
        action = Action.HOLD
    if action is Action.HOLD:
        quantity = Decimal(0)
    return Decision(
        id=decision_id(symbol, at),
        symbol=symbol,
        action=action,
        quantity=quantity,
        price=sizing.price,
        confidence=confidence,
        decided_at=at,
        attribution=_attribution(signals, risk, weights, risk_fraction),
        memory_hits=memory_hits,
        rationale="; ".join(notes) or _lead_rationale(signals, action),
    )


def _attribution(
    signals: list[AgentSignal],
    risk: AgentSignal | None,
    weights: dict[str, float],
    risk_fraction: float,
) -> tuple[Attribution, ...]:
    rows = [
        Attribution(
            agent=s.agent,
            action=s.action,
            confidence=s.confidence,
            weight=0.0 if s.abstained else weights.get(s.agent, 0.0),
            abstained=s.abstained,
            note=(s.abstain_reason or s.rationale)[:200],
        )
        for s in signals
    ]
    if risk is not None:
        note = risk.abstain_reason or f"kept {risk_fraction:.0%} of size: {risk.rationale}"
        rows.append(
            Attribution(
                agent="risk",
                action=risk.action,
                confidence=risk.confidence,
                weight=0.0,
                abstained=risk.abstained,
                note=note[:200],
            )
        )
    return tuple(rows)


def _lead_rationale(signals: list[AgentSignal], action: Action) -> str:
    backers = [s for s in signals if not s.abstained and s.action is action]
    if not backers:
        return "no agent backed a trade"
    lead = max(backers, key=lambda s: s.confidence)
    return f"{lead.agent}: {lead.rationale}"[:300]

"""Consensus: a deterministic, confidence-weighted vote of the directional agents.

The analyst, trader, rules and strategy agents vote on the direction with weight x
confidence; abstentions do not vote. The weights come with the context (fixed, or adapted
to the regime and track records: :mod:`tradecast.agents.weights`). The risk agent never
votes: it can only shrink or veto a buy or a new short (an exit is never held back). A BUY
brings the position toward the sizing method's target weight (:mod:`tradecast.risk.sizing`),
a SELL closes the position, and a position grown well past its target is trimmed back to it.
On a margin account (``shorts``) a SELL with nothing held opens a short sized as a BUY is,
and a BUY while short covers the whole short first. The
result carries attribution (who said what, with what weight and why) and the memory hits
that were read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from tradecast.domain import Action, AgentSignal, AgentWeight, Attribution, Decision, MemoryHit
from tradecast.settings import DeskConfig

QUANTITY_STEP = Decimal("0.000001")
TRIM_BAND = Decimal("1.25")
"""A position is trimmed back to its target weight once it is this many times the target
(a band, so that small moves of price or volatility do not churn fees)."""


@dataclass(frozen=True)
class SizingContext:
    """What sizing needs to know about the account at decision time."""

    price: Decimal
    equity: Decimal
    held_quantity: Decimal
    max_position_pct: Decimal
    target_weight: Decimal | None = None
    """The weight (position value over equity) a BUY brings the position to; None: the old
    fixed sizing, a share of the cap scaled by confidence and added to what is held."""
    note: str = ""
    firm: bool = True
    """Whether a position above the target is trimmed to it (not for a probe size)."""
    shorts: bool = False
    """Whether a SELL with nothing held opens a short (a margin account)."""
    short_quantity: Decimal = Decimal(0)
    """What is held short (a BUY covers it all, an exit the risk agent cannot shrink)."""

    @property
    def opens_short(self) -> bool:
        """Whether a SELL now would open or add to a short rather than close a long."""
        return self.shorts and self.held_quantity <= 0


def decision_id(symbol: str, at: datetime) -> str:
    """A decision's id, the same for the same symbol and tick time (so retries reuse it)."""
    return f"{symbol.replace('/', '')}-{at:%Y%m%dT%H%M}"


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


def _backing_fraction(
    signals: list[AgentSignal], action: Action, weights: dict[str, float]
) -> float:
    """The share of the allowed size the action's backers stand behind, weighted by their
    weight x confidence (a DCA step backs a quarter, a trend the whole)."""
    backers = [s for s in signals if not s.abstained and s.action is action]
    total = sum(weights.get(s.agent, 0.0) * s.confidence for s in backers)
    if total == 0:
        return 0.0
    backed = sum(weights.get(s.agent, 0.0) * s.confidence * s.size_fraction for s in backers)
    return backed / total


def _quantity(action: Action, fraction: float, confidence: float, sizing: SizingContext) -> Decimal:
    if action is Action.BUY and sizing.short_quantity > 0:
        return sizing.short_quantity  # cover the whole short first
    if action is Action.SELL and sizing.opens_short:
        return _short_quantity(fraction, confidence, sizing)
    if action is Action.SELL:
        raw = sizing.held_quantity * Decimal(str(fraction))
    elif action is Action.BUY and sizing.target_weight is None:
        scale = Decimal(str(fraction)) * Decimal(str(confidence))
        raw = sizing.equity * sizing.max_position_pct * scale / sizing.price
    elif action is Action.BUY and sizing.target_weight is not None:
        target = min(sizing.target_weight, sizing.max_position_pct) * sizing.equity
        gap = target - sizing.held_quantity * sizing.price
        raw = max(Decimal(0), gap) * Decimal(str(fraction)) / sizing.price
    else:
        return Decimal(0)
    return raw.quantize(QUANTITY_STEP, rounding=ROUND_DOWN)


def _short_quantity(fraction: float, confidence: float, sizing: SizingContext) -> Decimal:
    """A short sized as a BUY is: toward the target weight (or a share of the cap)."""
    if sizing.target_weight is None:
        scale = Decimal(str(fraction)) * Decimal(str(confidence))
        raw = sizing.equity * sizing.max_position_pct * scale / sizing.price
    else:
        target = min(sizing.target_weight, sizing.max_position_pct) * sizing.equity
        gap = target - sizing.short_quantity * sizing.price
        raw = max(Decimal(0), gap) * Decimal(str(fraction)) / sizing.price
    return raw.quantize(QUANTITY_STEP, rounding=ROUND_DOWN)


def combine(
    *,
    symbol: str,
    at: datetime,
    signals: list[AgentSignal],
    risk: AgentSignal | None,
    sizing: SizingContext,
    config: DeskConfig,
    weights: tuple[AgentWeight, ...],
    memory_hits: tuple[MemoryHit, ...] = (),
    regime: str | None = None,
) -> Decision:
    """The desk's decision from the agents' signals; the same inputs give the same decision."""
    weight_of: dict[str, float] = {w.agent: w.weight for w in weights}
    action, confidence = _vote(signals, weight_of)
    notes: list[str] = []
    if action is not Action.HOLD and confidence < config.min_confidence:
        notes.append(
            f"{action.value} at confidence {confidence:.2f} is below {config.min_confidence:.2f}"
        )
        action = Action.HOLD
    risk_fraction = _risk_fraction(risk, config)
    opening = _opens_risk(action, sizing)
    if opening and risk_fraction == 0:
        notes.append("risk agent vetoed")
        action = Action.HOLD
    if action is Action.SELL and sizing.held_quantity <= 0 and not sizing.shorts:
        notes.append("nothing held to sell (spot, long only)")
        action = Action.HOLD
    # the risk agent shrinks the risk taken (a buy or a new short), never an exit
    fraction = _backing_fraction(signals, action, weight_of) if opening else 1.0
    quantity = _quantity(action, fraction * (risk_fraction if opening else 1.0), confidence, sizing)
    if action is not Action.HOLD and quantity <= 0:
        at_target = action is Action.BUY and sizing.target_weight is not None
        notes.append(
            "position already at its target weight" if at_target else "size rounds to zero"
        )
        action = Action.HOLD
    excess = _excess(sizing) if action is Action.HOLD else Decimal(0)
    trimmed = excess > 0
    if trimmed:
        action, quantity = Action.SELL, excess
        notes.append(f"trimmed to the target weight {sizing.target_weight:.1%}")
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
        regime=regime,
        sizing=sizing.note if _opens_risk(action, sizing) or trimmed else "",
    )


def _opens_risk(action: Action, sizing: SizingContext) -> bool:
    """Whether ``action`` adds exposure (a buy that covers nothing, or a new short)."""
    if action is Action.BUY:
        return sizing.short_quantity <= 0
    return action is Action.SELL and sizing.opens_short


def _excess(sizing: SizingContext) -> Decimal:
    """What to sell to bring a position grown past ``TRIM_BAND`` x its target weight (by a
    rise in price or in volatility) back to the target; 0 under fixed sizing."""
    if sizing.target_weight is None or not sizing.firm or sizing.held_quantity <= 0:
        return Decimal(0)
    limit = min(sizing.target_weight, sizing.max_position_pct) * sizing.equity
    held = sizing.held_quantity * sizing.price
    if held <= limit * TRIM_BAND:
        return Decimal(0)
    excess = min(sizing.held_quantity, (held - limit) / sizing.price)
    return excess.quantize(QUANTITY_STEP, rounding=ROUND_DOWN)


def _attribution(
    signals: list[AgentSignal],
    risk: AgentSignal | None,
    weights: tuple[AgentWeight, ...],
    risk_fraction: float,
) -> tuple[Attribution, ...]:
    by_agent = {w.agent: w for w in weights}
    rows = [
        Attribution(
            agent=s.agent,
            action=s.action,
            confidence=s.confidence,
            weight=0.0 if s.abstained or s.agent not in by_agent else by_agent[s.agent].weight,
            abstained=s.abstained,
            note=(s.abstain_reason or s.rationale)[:200],
            weight_note=by_agent[s.agent].note[:200] if s.agent in by_agent else "",
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

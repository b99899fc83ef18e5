"""What agents say, what the desk decides, what the gate rules and what the persona says."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from tradecast.domain.base import DomainModel, Money, Price, Quantity, Symbol, UtcDatetime
from tradecast.domain.news import NewsHeadline
from tradecast.domain.orders import OrderIntent


class Action(StrEnum):
    """What the desk does on a tick."""

    BUY = "BUY"
    SELL = "SELL"
    HOLD = "HOLD"


AgentName = Literal[
    "analyst", "risk", "trader", "persona", "rules", "trend", "mean_reversion", "breakout", "dca"
]


class AgentSignal(DomainModel):
    """One agent's view: an action with a confidence, or an explicit abstention."""

    agent: AgentName
    action: Action
    confidence: float = Field(ge=0.0, le=1.0)
    rationale: str = Field(default="", max_length=2000)
    abstained: bool = False
    abstain_reason: str | None = None
    size_fraction: float = Field(
        default=1.0, ge=0.0, le=1.0, description="share of the allowed size this agent backs"
    )

    @model_validator(mode="after")
    def _abstention_explained(self) -> AgentSignal:
        if self.abstained and not self.abstain_reason:
            raise ValueError("an abstention needs abstain_reason")
        return self

    @classmethod
    def abstain(cls, agent: AgentName, reason: str) -> AgentSignal:
        """An explicit, explained abstention (never a silent default trade)."""
        return cls(
            agent=agent,
            action=Action.HOLD,
            confidence=0.0,
            abstained=True,
            abstain_reason=reason,
        )


class AgentWeight(DomainModel):
    """An agent's weight in one decision's vote, and why: its base weight times a factor for
    the market regime and one for its own recent track record."""

    agent: AgentName
    weight: float = Field(ge=0.0)
    base: float = Field(ge=0.0)
    regime_factor: float = Field(default=1.0, ge=0.0)
    record_factor: float = Field(default=1.0, ge=0.0)
    hit_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    """The decayed hit rate, shrunk toward 50% (None: weights are fixed)."""
    scored_votes: int = Field(default=0, ge=0)
    note: str = ""


class Attribution(DomainModel):
    """How much one agent's signal weighed in a decision."""

    agent: AgentName
    action: Action
    confidence: float = Field(ge=0.0, le=1.0)
    weight: float = Field(ge=0.0)
    abstained: bool = False
    note: str = ""
    weight_note: str = ""
    """Why the weight is what it is (regime and track record)."""


class MemoryHit(DomainModel):
    """A similar past situation with what came of it (only outcomes known at query time)."""

    decision_id: str
    symbol: Symbol
    decided_at: UtcDatetime
    action: Action
    situation: str
    similarity: float
    outcome_returns: dict[str, float] = Field(default_factory=dict)
    stop_hit: bool | None = None
    news: tuple[str, ...] = Field(default=(), description="titles of the news it read")
    votes: dict[str, Action] = Field(
        default_factory=dict, description="each agent's directional vote (BUY or SELL)"
    )


class Decision(DomainModel):
    """The desk's combined decision on one tick, with who said what."""

    id: str
    symbol: Symbol
    action: Action
    quantity: Quantity
    price: Price
    confidence: float = Field(ge=0.0, le=1.0)
    decided_at: UtcDatetime
    attribution: tuple[Attribution, ...] = ()
    memory_hits: tuple[MemoryHit, ...] = ()
    news: tuple[NewsHeadline, ...] = ()
    """The news items the analyst read for this decision (all published before it)."""
    rationale: str = ""
    regime: str | None = None
    """The market regime known at the decision (trend_up, sideways, ...), if weighed by it."""
    sizing: str = ""
    """How a BUY's size was reached (method, target weight, caps)."""

    @model_validator(mode="after")
    def _hold_has_no_size(self) -> Decision:
        if self.action is Action.HOLD and self.quantity != 0:
            raise ValueError("a HOLD decision has quantity 0")
        return self


class RiskVerdict(DomainModel):
    """The risk gate's ruling on an order intent; ``intent`` may be shrunk from the request."""

    approved: bool
    intent: OrderIntent | None = None
    reasons: tuple[str, ...] = ()
    shrunk: bool = False


Emotion = Literal["neutral", "happy", "excited", "worried", "thinking", "sad", "smug"]


class PersonaLine(DomainModel):
    """One sentence the persona says, with the emotion it says it with."""

    text: str = Field(min_length=1, max_length=400)
    emotion: Emotion = "neutral"
    decision_id: str | None = None


class PnL(DomainModel):
    """A profit-and-loss snapshot."""

    equity: Money
    cash: Money
    realized: Money
    unrealized: Money
    fees: Money = Decimal(0)

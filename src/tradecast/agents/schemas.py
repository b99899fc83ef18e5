"""What each agent must answer, as small JSON schemas a 135M model can fill reliably.

Bounds are ones the llama.cpp grammar enforces while decoding (unit intervals, string
lengths), so an answer always fits its token budget (``llm.grammar.answer_token_bound``) and
is always complete and valid.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

TradeAction = Literal["BUY", "SELL", "HOLD"]
# One short sentence. The grammar enforces it while decoding; a small model that repeats
# itself ("1.03, 1.03, ...") is cut off here rather than running out of tokens.
RATIONALE_CHARS = 80


class AnalystView(BaseModel):
    """The analyst's read of the market."""

    action: TradeAction
    confidence: float = Field(ge=0, le=1, description="0 = no idea, 1 = certain")
    rationale: str = Field(max_length=RATIONALE_CHARS, description="one short sentence")


class RiskReview(BaseModel):
    """The risk agent's review: it can only approve, shrink or veto."""

    stance: Literal["approve", "shrink", "veto"]
    size_fraction: float = Field(ge=0, le=1, description="share of the planned size to keep")
    confidence: float = Field(ge=0, le=1)
    rationale: str = Field(max_length=RATIONALE_CHARS)


class TraderProposal(BaseModel):
    """The trader's proposal: what to do, how much of the allowed size, and exits."""

    action: TradeAction
    size_fraction: float = Field(ge=0, le=1, description="share of the allowed size")
    confidence: float = Field(ge=0, le=1)
    stop_loss_pct: float = Field(ge=0, le=1, description="stop distance as a fraction of price")
    take_profit_pct: float = Field(ge=0, le=1, description="target as a fraction of price")
    rationale: str = Field(max_length=RATIONALE_CHARS)

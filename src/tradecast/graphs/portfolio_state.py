"""The portfolio desk's state and the records its nodes pass on (checkpointed: each type is in
:data:`tradecast.graphs.checkpoints.CHECKPOINTED_TYPES`)."""

from __future__ import annotations

import operator
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import Field
from typing_extensions import TypedDict  # pydantic draws JSON schemas only of this one on 3.11

from tradecast.agents.calls import LLMCall
from tradecast.broker.paper import Execution
from tradecast.domain import (
    Decision,
    DomainModel,
    OrderIntent,
    PersonaLine,
    Portfolio,
    RiskVerdict,
)
from tradecast.graphs.report import ExposureView
from tradecast.graphs.state import DeskContext, merge_latency


class SymbolProposal(DomainModel):
    """What one symbol's branch decided: the consensus and its proposed order."""

    symbol: str
    context: DeskContext
    decision: Decision
    intent: OrderIntent | None = None
    llm_calls: tuple[LLMCall, ...] = ()
    latency_ms: dict[str, float] = Field(default_factory=dict)


class PlannedOrder(DomainModel):
    """An order the portfolio node sends for one symbol's decision."""

    symbol: str
    decision_id: str
    intent: OrderIntent
    exit: bool
    """Whether it only reduces a position (sent before the orders that add)."""


class PortfolioReview(DomainModel):
    """The portfolio check's ruling on the tick's targets, and the orders it leads to."""

    current: dict[str, Decimal]
    asked: dict[str, Decimal]
    approved: dict[str, Decimal]
    reasons: dict[str, tuple[str, ...]]
    notes: tuple[str, ...] = ()
    scale: float = 1.0
    before: ExposureView
    after: ExposureView
    orders: tuple[PlannedOrder, ...] = ()


class SymbolOutcome(DomainModel):
    """What became of one planned order at the gate and the broker."""

    symbol: str
    decision_id: str
    intent: OrderIntent
    verdict: RiskVerdict
    execution: Execution | None = None
    error: str | None = None
    judged_on: Portfolio | None = None
    """The book as it was when the order was sent (what the per-order gate judged it on)."""


class PortfolioState(TypedDict, total=False):
    """One portfolio tick; each node returns only the keys it changes."""

    at: datetime
    symbols: list[str]
    proposals: Annotated[list[SymbolProposal], operator.add]
    review: PortfolioReview
    outcomes: list[SymbolOutcome]
    book: ExposureView
    """The book measured after the orders (what the account holds, not the plan)."""
    persona: list[PersonaLine]
    headline: str | None
    remembered: bool
    llm_calls: Annotated[list[LLMCall], operator.add]
    latency_ms: Annotated[dict[str, float], merge_latency]


class SymbolInput(TypedDict):
    """What a ``Send`` hands one symbol's branch."""

    symbol: str
    at: datetime

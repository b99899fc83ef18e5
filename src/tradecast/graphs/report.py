"""A tick's report, as the CLI, the API, the desk store and the eval harness read it.

Built from the domain types the graph produced; its JSON (``model_dump(mode="json")``) is what
``GET /v1/decisions`` returns and the desk store keeps.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field

from tradecast.agents.calls import LLMCall
from tradecast.domain import Decision, Fill, Order, PersonaLine
from tradecast.domain.base import DomainModel
from tradecast.domain.decisions import Emotion
from tradecast.graphs.state import ApprovalState

TickStatus = Literal["completed", "awaiting_approval"]


class RiskReport(DomainModel):
    """What the risk gate and the human (if one was asked) made of the decision."""

    approved: bool = Field(description="the gate let an order through")
    reasons: list[str] = Field(description="why it refused or shrank the order")
    shrunk: bool = Field(description="the gate cut the order's size")
    approval: ApprovalState = Field(description="what the operator answered, if asked")


class PersonaReport(DomainModel):
    """What the persona said about the tick."""

    text: str = Field(description="every sentence, joined")
    emotion: Emotion | None = Field(description="the first sentence's emotion")
    lines: list[PersonaLine]


class LLMUsage(DomainModel):
    """The chat-model calls the tick made."""

    calls: int
    failed: int
    prompt_tokens: int
    completion_tokens: int
    by_agent: list[LLMCall]


class ExposureView(DomainModel):
    """The book's exposure as shares of equity (:class:`tradecast.risk.portfolio.Exposure`)."""

    equity: Decimal
    values: dict[str, Decimal] = Field(description="signed position value per symbol")
    gross: Decimal = Field(description="sum of |position value| / equity")
    net: Decimal = Field(description="|longs - shorts| / equity")
    groups: tuple[tuple[str, ...], ...] = Field(description="highly correlated symbols")
    group_net: dict[str, Decimal] = Field(description="|net value| of each group / equity")
    var: Decimal | None = Field(default=None, description="95% one-day historical VaR / equity")
    cvar: Decimal | None = Field(default=None, description="95% one-day CVaR / equity")
    days: int = Field(default=0, description="daily scenarios VaR was computed from")


class PortfolioSummary(DomainModel):
    """A portfolio tick as each of its symbols' reports carries it."""

    symbols: list[str]
    headline: str | None = Field(description="the symbol the persona talked about")
    held: dict[str, Decimal] = Field(description="signed holding per symbol before the tick")
    asked: dict[str, Decimal] = Field(description="the holding each decision asked for")
    approved: dict[str, Decimal] = Field(description="what the portfolio check allowed")
    reasons: dict[str, list[str]] = Field(description="why a symbol's target was cut")
    notes: list[str] = Field(description="book-wide notes of the portfolio check")
    scale: float = Field(description="share of the asked increases allowed")
    before: ExposureView
    after: ExposureView = Field(description="the book as the check planned it")
    book: ExposureView | None = Field(
        default=None, description="the book measured after the orders: what the account holds"
    )
    llm_calls: dict[str, int] = Field(description="LLM calls per symbol (persona: headline)")


class TickResult(DomainModel):
    """One tick: the decision, the gate's verdict, the order and fills, what the persona
    said, the LLM calls and the time each node took."""

    thread_id: str
    status: TickStatus
    decision: Decision | None
    risk: RiskReport
    order: Order | None
    fills: list[Fill]
    persona: PersonaReport
    llm: LLMUsage
    latency_ms: dict[str, float]
    resumed: bool = False
    portfolio: PortfolioSummary | None = Field(
        default=None, description="the portfolio tick this decision was part of, if any"
    )
    companions: list[TickResult] = Field(default_factory=list, exclude=True)
    """The other symbols' reports of the same portfolio tick (not part of this report's
    JSON: each is stored as a report of its own)."""

    def reports(self) -> list[TickResult]:
        """This report and its companions, one per symbol decided."""
        return [self, *self.companions]

    @property
    def decision_id(self) -> str:
        """The decision's id (the thread id when the tick decided nothing)."""
        return self.decision.id if self.decision else self.thread_id

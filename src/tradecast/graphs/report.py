"""A tick's report, as the CLI, the API, the desk store and the eval harness read it.

Built from the domain types the graph produced; its JSON (``model_dump(mode="json")``) is what
``GET /v1/decisions`` returns and the desk store keeps.
"""

from __future__ import annotations

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

    @property
    def decision_id(self) -> str:
        """The decision's id (the thread id when the tick decided nothing)."""
        return self.decision.id if self.decision else self.thread_id

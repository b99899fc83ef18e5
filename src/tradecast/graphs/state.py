"""The desk graph's typed state; list fields merge parallel writes with reducers."""

from __future__ import annotations

import operator
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from typing_extensions import TypedDict  # pydantic draws JSON schemas only of this one on 3.11

from tradecast.agents.calls import LLMCall
from tradecast.broker.paper import Execution
from tradecast.domain import (
    AgentSignal,
    AgentWeight,
    Decision,
    DomainModel,
    MemoryHit,
    NewsHeadline,
    OrderIntent,
    PersonaLine,
    Portfolio,
    RiskVerdict,
)
from tradecast.market.indicators import IndicatorSummary


def merge_latency(left: dict[str, float], right: dict[str, float]) -> dict[str, float]:
    """Per-node latencies from parallel branches, merged."""
    return {**left, **right}


class DeskContext(DomainModel):
    """What every agent sees at the decision instant (only bars closed by then)."""

    symbol: str
    at: datetime
    price: Decimal
    summary: IndicatorSummary
    situation: str
    portfolio: Portfolio
    memory_hits: tuple[MemoryHit, ...] = ()
    memory_text: str = ""
    news: tuple[NewsHeadline, ...] = ()
    news_text: str = ""
    """News lines for the analyst only (empty: no news source); :meth:`as_prompt` leaves
    them out, so the other agents' prompts do not grow."""
    gaps: int = 0
    regime: str | None = None
    """The market regime of the latest daily bar (``agents.weights.current_regime``)."""
    weights: tuple[AgentWeight, ...] = ()
    """Each voter's weight in this decision, and why."""
    daily_volatility: float | None = None
    daily_atr: float | None = None
    """The asset's recent daily volatility (log returns) and average true range (price)."""
    closed_trades: tuple[float, ...] = ()
    """Returns of the desk's latest closed trades in this symbol, oldest first (Kelly)."""

    def as_prompt(self) -> str:
        """The context as compact text for an agent's prompt."""
        position = self.portfolio.position(self.symbol)
        held = f"{position.quantity} at avg {position.avg_price}" if position else "none"
        return "\n".join(
            [
                f"Symbol: {self.symbol}. Time: {self.at:%Y-%m-%d %H:%M} UTC. Price: {self.price}.",
                f"Indicators: {self.summary.as_prompt_text()}",
                f"Situation: {self.situation}",
                f"Account: equity {self.portfolio.equity:.2f}, cash {self.portfolio.cash:.2f}, "
                f"position {held}.",
                self.memory_text,
            ]
        )


class TraderExits(DomainModel):
    """The trader's exit distances, as fractions of the price."""

    stop_loss_pct: float = 0.0
    take_profit_pct: float = 0.0


ApprovalState = Literal["not_required", "pending", "approved", "rejected"]


class DeskState(TypedDict, total=False):
    """Everything one tick knows; each node returns only the keys it changes."""

    symbol: str
    at: datetime
    context: DeskContext
    signals: Annotated[list[AgentSignal], operator.add]
    risk_review: AgentSignal
    exits: TraderExits
    decision: Decision
    intent: OrderIntent | None
    verdict: RiskVerdict
    approval: ApprovalState
    execution: Execution | None
    execution_error: str | None
    persona: list[PersonaLine]
    remembered: bool
    llm_calls: Annotated[list[LLMCall], operator.add]
    latency_ms: Annotated[dict[str, float], merge_latency]

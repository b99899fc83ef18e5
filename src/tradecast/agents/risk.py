"""The risk agent: reviews the setup and may only approve, shrink or veto the size."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel

from tradecast.agents.calls import LLMCall, ask_structured, load_prompt, role_messages
from tradecast.agents.schemas import RiskReview
from tradecast.domain import Action, AgentSignal


def size_fraction_of(review: RiskReview) -> float:
    """The share of the planned size the review keeps: veto 0, approve 1, shrink below 1."""
    if review.stance == "veto":
        return 0.0
    if review.stance == "approve":
        return 1.0
    return min(review.size_fraction, 0.99)


async def review_risk(model: BaseChatModel, context: str) -> tuple[AgentSignal, LLMCall]:
    """The risk agent's review as a non-directional signal (HOLD with a size fraction)."""
    messages = role_messages(context, load_prompt("risk"))
    review, call = await ask_structured("risk", model, RiskReview, messages)
    if review is None:
        return AgentSignal.abstain("risk", call.error or "no answer"), call
    signal = AgentSignal(
        agent="risk",
        action=Action.HOLD,
        confidence=review.confidence,
        size_fraction=size_fraction_of(review),
        rationale=f"{review.stance}: {review.rationale}",
    )
    return signal, call

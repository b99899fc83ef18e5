"""The analyst: reads the market context and votes BUY, SELL or HOLD with a confidence."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel

from tradecast.agents.calls import LLMCall, ask_structured, load_prompt, role_messages
from tradecast.agents.schemas import AnalystView
from tradecast.domain import Action, AgentSignal


async def analyse(model: BaseChatModel, symbol: str, context: str) -> tuple[AgentSignal, LLMCall]:
    """The analyst's signal; an LLM failure is an explained abstention."""
    messages = role_messages(context, load_prompt("analyst").format(symbol=symbol))
    view, call = await ask_structured("analyst", model, AnalystView, messages)
    if view is None:
        return AgentSignal.abstain("analyst", call.error or "no answer"), call
    signal = AgentSignal(
        agent="analyst",
        action=Action(view.action),
        confidence=view.confidence,
        rationale=view.rationale,
    )
    return signal, call

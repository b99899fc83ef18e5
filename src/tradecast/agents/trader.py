"""The trader: may look things up with read-only tools, then proposes an action and exits.

The trader never places orders: its proposal goes through consensus and the risk gate.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import BaseTool

from tradecast.agents.calls import (
    LLMCall,
    ask_structured,
    load_prompt,
    role_messages,
    usage_of,
)
from tradecast.agents.schemas import TraderProposal
from tradecast.domain import Action, AgentSignal
from tradecast.errors import LLMError

MAX_TOOL_CALLS_PER_STEP = 3
MAX_TOOL_CALL_CHARS = 200


def _tool_call_text(name: str, args: dict[str, Any]) -> str:
    """A tool call as the tick's report shows it: ``get_price({"symbol": "BTC/USDT"})``."""
    return f"{name}({json.dumps(args, sort_keys=True, default=str)})"[:MAX_TOOL_CALL_CHARS]


async def _tool_round(
    model: BaseChatModel, tools: Sequence[BaseTool], messages: list[BaseMessage]
) -> tuple[list[BaseMessage], LLMCall]:
    """One turn where the model may call tools; returns the messages to append."""
    started = time.perf_counter()
    try:
        reply = await model.bind_tools(list(tools), tool_choice="auto").ainvoke(messages)
    except LLMError as exc:
        elapsed = round((time.perf_counter() - started) * 1000, 2)
        return [], LLMCall(agent="trader", ok=False, latency_ms=elapsed, error=str(exc)[:500])
    prompt_tokens, completion_tokens = usage_of(reply)
    call = LLMCall(
        agent="trader",
        ok=True,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_ms=round((time.perf_counter() - started) * 1000, 2),
    )
    if not isinstance(reply, AIMessage) or not reply.tool_calls:
        return [], call
    asked = reply.tool_calls[:MAX_TOOL_CALLS_PER_STEP]
    call = call.model_copy(
        update={"tool_calls": tuple(_tool_call_text(c["name"], c["args"]) for c in asked)}
    )
    by_name = {tool.name: tool for tool in tools}
    results: list[BaseMessage] = []
    for tool_call in asked:
        tool = by_name.get(tool_call["name"])
        if tool is not None:
            results.append(await tool.ainvoke(tool_call))
    kept = reply.model_copy(update={"tool_calls": asked})
    return [kept, *results] if results else [], call


async def propose(
    model: BaseChatModel,
    symbol: str,
    context: str,
    tools: Sequence[BaseTool],
    tool_steps: int,
) -> tuple[AgentSignal, TraderProposal | None, list[LLMCall]]:
    """The trader's signal and proposal (exits), after at most ``tool_steps`` tool rounds."""
    messages = role_messages(context, load_prompt("trader").format(symbol=symbol))
    calls: list[LLMCall] = []
    for _ in range(tool_steps if tools else 0):
        extra, call = await _tool_round(model, tools, messages)
        calls.append(call)
        if not extra:
            break
        messages.extend(extra)
    proposal, call = await ask_structured("trader", model, TraderProposal, messages)
    calls.append(call)
    if proposal is None:
        return AgentSignal.abstain("trader", call.error or "no answer"), None, calls
    signal = AgentSignal(
        agent="trader",
        action=Action(proposal.action),
        confidence=proposal.confidence,
        size_fraction=proposal.size_fraction,
        rationale=proposal.rationale,
    )
    return signal, proposal, calls

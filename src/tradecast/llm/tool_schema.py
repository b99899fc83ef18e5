"""Tool calling by constrained decoding: the model writes one JSON object that is either a
call of a bound tool (name + arguments fitting that tool's schema) or a plain answer."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, ToolCall
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from tradecast.errors import LLMError

ANSWER_KEY = "answer"
# A reply instead of a call is one short sentence: a small model given 600 characters filled
# them with "1.03, 1.03, ..." (a token per character: seconds of decoding for nothing).
ANSWER_MAX_CHARS = 80


def openai_tools(tools: Sequence[dict[str, Any] | type | Any | BaseTool]) -> list[dict[str, Any]]:
    """Tools in OpenAI function format (what both backends and the prompt describe)."""
    return [convert_to_openai_tool(tool) for tool in tools]


def tool_names(tools: list[dict[str, Any]]) -> list[str]:
    """The function names of OpenAI-format tools."""
    return [tool["function"]["name"] for tool in tools]


def _call_schema(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool["function"]
    parameters = function.get("parameters") or {"type": "object", "properties": {}}
    return {
        "type": "object",
        "properties": {"name": {"const": function["name"]}, "arguments": parameters},
        "required": ["name", "arguments"],
    }


def tool_call_schema(tools: list[dict[str, Any]], tool_choice: str | None) -> dict[str, Any]:
    """JSON schema of one turn: a call of one of ``tools``, or (``auto``) a plain answer.

    ``tool_choice`` follows LangChain: None/"auto" lets the model answer instead, "any" or
    "required" forces some tool call, a tool's name forces that tool.
    """
    calls = [_call_schema(t) for t in tools]
    if tool_choice in (None, "auto"):
        answer = {
            "type": "object",
            "properties": {ANSWER_KEY: {"type": "string", "maxLength": ANSWER_MAX_CHARS}},
            "required": [ANSWER_KEY],
        }
        return {"oneOf": [*calls, answer]}
    if tool_choice in ("any", "required"):
        return {"oneOf": calls} if len(calls) > 1 else calls[0]
    forced = [c for c, t in zip(calls, tools, strict=True) if t["function"]["name"] == tool_choice]
    if not forced:
        raise ValueError(f"tool_choice {tool_choice!r} names no bound tool: {tool_names(tools)}")
    return forced[0]


def tool_prompt(tools: list[dict[str, Any]], tool_choice: str | None) -> str:
    """The system-prompt text that describes the tools to a model without native tool support."""
    lines = [
        "You can call these tools. To call one, answer with JSON "
        '{"name": <tool name>, "arguments": {...}}.'
    ]
    for tool in tools:
        # name(arguments): description; argument schemas are left to the grammar, which
        # admits only valid calls (a small model's prompt tokens are the tick's cost)
        function = tool["function"]
        params = ", ".join(function.get("parameters", {}).get("properties", {}))
        lines.append(f"- {function['name']}({params}): {function.get('description', '')}")
    if tool_choice in (None, "auto"):
        lines.append(f'If no tool is needed, answer with JSON {{"{ANSWER_KEY}": <your reply>}}.')
    return "\n".join(lines)


def message_from_tool_turn(text: str, usage: dict[str, Any] | None = None) -> AIMessage:
    """Turn the model's constrained JSON into an AIMessage with ``tool_calls`` or content."""
    try:
        # strict=False: the grammar's string rule admits raw control characters (a newline
        # inside a string), which strict JSON refuses although the structure is valid
        data = json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        raise LLMError(
            "unparseable", f"tool-call answer is not JSON ({exc.msg}): {text[:200]!r}"
        ) from None
    if isinstance(data, dict) and "name" in data and "arguments" in data:
        call = ToolCall(
            name=str(data["name"]),
            args=data["arguments"] if isinstance(data["arguments"], dict) else {},
            id=f"call_{uuid.uuid4().hex[:12]}",
            type="tool_call",
        )
        return AIMessage(content="", tool_calls=[call], usage_metadata=usage)
    if isinstance(data, dict) and ANSWER_KEY in data:
        return AIMessage(content=str(data[ANSWER_KEY]), usage_metadata=usage)
    raise LLMError(
        "unparseable", f"tool-call answer has neither a call nor an answer: {text[:200]!r}"
    )

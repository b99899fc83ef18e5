"""One LLM call made by an agent, recorded; failures become explicit abstentions."""

from __future__ import annotations

import functools
import time
from importlib import resources
from typing import Any, TypeVar, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from tradecast.domain import AgentName, DomainModel
from tradecast.errors import LLMError
from tradecast.logs import get_logger

log = get_logger(__name__)
Schema = TypeVar("Schema", bound=BaseModel)


class LLMCall(DomainModel):
    """Telemetry of one chat-model call made while deciding."""

    agent: AgentName
    ok: bool
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    latency_ms: float = Field(default=0.0, ge=0)
    error: str | None = None
    tool_calls: tuple[str, ...] = Field(
        default=(), description="the tools the model asked for, as name(arguments)"
    )


@functools.cache  # read on every agent call otherwise; package files do not change
def load_prompt(name: str) -> str:
    """A prompt template that lives beside the agents (``prompts/NAME.md``)."""
    return resources.files("tradecast.agents").joinpath(f"prompts/{name}.md").read_text("utf-8")


def role_messages(context: str, instructions: str) -> list[BaseMessage]:
    """The market context first, the agent's role after it.

    Every agent of a tick starts with the same context, so the embedded model's KV cache
    reuses that prefix from one call to the next instead of evaluating it again.
    """
    return [SystemMessage(f"Market context:\n{context}"), HumanMessage(instructions)]


def usage_of(message: Any) -> tuple[int, int]:
    """(prompt tokens, completion tokens) reported on a chat message, 0 when unknown."""
    usage = getattr(message, "usage_metadata", None) or {}
    return int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))


async def ask_structured(
    agent: AgentName, model: BaseChatModel, schema: type[Schema], messages: list[BaseMessage]
) -> tuple[Schema | None, LLMCall]:
    """Ask for ``schema``; on any LLM failure return None and the reason in the record."""
    started = time.perf_counter()
    try:
        # include_raw=True answers a dict of raw, parsed and parsing_error (langchain types
        # every structured output as dict | BaseModel).
        result = cast(
            "dict[str, Any]",
            await model.with_structured_output(schema, include_raw=True).ainvoke(messages),
        )
    except LLMError as exc:
        return None, _failed(agent, started, f"{exc.kind}: {exc}")
    prompt_tokens, completion_tokens = usage_of(result["raw"])
    if result["parsing_error"] is not None:
        call = _failed(agent, started, f"unparseable: {result['parsing_error']}")
        return None, call.model_copy(
            update={"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
        )
    return result["parsed"], LLMCall(
        agent=agent,
        ok=True,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_ms=_elapsed_ms(started),
    )


def _failed(agent: AgentName, started: float, error: str) -> LLMCall:
    log.warning("agent.llm_failed", agent=agent, error=error[:300])
    return LLMCall(agent=agent, ok=False, latency_ms=_elapsed_ms(started), error=error[:500])


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)

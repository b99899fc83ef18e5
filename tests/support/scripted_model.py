"""A scripted chat model for unit tests: answers come from a script, not a neural network.

It is a real langchain-core BaseChatModel and uses tradecast's own structured-output path, so
the agents exercise the same parsing and failure handling as with llama.cpp or Ollama.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, Field

from tradecast.llm.structured import json_schema_of, structured_runnable
from tradecast.llm.tool_schema import message_from_tool_turn, openai_tools

Reply = str | dict[str, Any] | BaseException | Callable[[list[BaseMessage]], Any]


class ScriptedChatModel(BaseChatModel):
    """Replies in order from ``script`` (the last one repeats); records every prompt.

    A dict reply is sent as JSON; an exception is raised; a callable gets the messages.
    ``delay_s`` sleeps before answering (a slow model); zero by default.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    script: list[Any] = Field(default_factory=list)
    delay_s: float = 0.0
    finish_reason: str = "stop"
    """What the last streamed chunk says ended the answer ("length": the token limit)."""
    prompts: list[list[BaseMessage]] = Field(default_factory=list)
    gate: asyncio.Event | None = None
    """When set, async calls wait for it before answering (a model still thinking)."""

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def calls(self) -> int:
        """How many times the model was asked."""
        return len(self.prompts)

    def _next_text(self, messages: list[BaseMessage]) -> str:
        self.prompts.append(list(messages))
        if self.delay_s:
            time.sleep(self.delay_s)
        reply = self.script[min(len(self.prompts) - 1, len(self.script) - 1)]
        if callable(reply) and not isinstance(reply, BaseException):
            reply = reply(messages)
        if isinstance(reply, BaseException):
            raise reply
        return json.dumps(reply) if isinstance(reply, dict) else str(reply)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = self._next_text(messages)
        usage = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
        if "tools" in kwargs:
            message = message_from_tool_turn(text, usage)
        else:
            message = AIMessage(content=text, usage_metadata=usage)  # type: ignore[arg-type]
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        text = self._next_text(messages)
        words = text.split(" ")
        for i, word in enumerate(words):
            piece = word if i == len(words) - 1 else word + " "
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        usage = {"input_tokens": 10, "output_tokens": len(words), "total_tokens": 10 + len(words)}
        last = AIMessageChunk(
            content="",
            usage_metadata=usage,  # type: ignore[arg-type]
            response_metadata={"finish_reason": self.finish_reason},
        )
        yield ChatGenerationChunk(message=last)

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        await asyncio.sleep(0)
        if self.gate is not None:
            await self.gate.wait()
        return self._generate(messages, stop, None, **kwargs)

    def bind_tools(
        self, tools: Sequence[Any | BaseTool], *, tool_choice: str | None = None, **kwargs: Any
    ) -> Runnable[Any, AIMessage]:
        return self.bind(tools=openai_tools(tools), tool_choice=tool_choice, **kwargs)

    def with_structured_output(
        self, schema: Any, *, include_raw: bool = False, **kwargs: Any
    ) -> Runnable[Any, Any]:
        bound = self.bind(json_schema=json_schema_of(schema))
        return structured_runnable(bound, schema, include_raw=include_raw)


def analyst(action: str = "BUY", confidence: float = 0.8) -> dict[str, Any]:
    """A valid analyst answer."""
    return {"action": action, "confidence": confidence, "rationale": "scripted view"}


def risk(stance: str = "approve", size_fraction: float = 1.0) -> dict[str, Any]:
    """A valid risk review."""
    return {
        "stance": stance,
        "size_fraction": size_fraction,
        "confidence": 0.7,
        "rationale": "scripted review",
    }


def trader(action: str = "BUY", size_fraction: float = 1.0, confidence: float = 0.8) -> dict:
    """A valid trader proposal."""
    return {
        "action": action,
        "size_fraction": size_fraction,
        "confidence": confidence,
        "stop_loss_pct": 0.03,
        "take_profit_pct": 0.06,
        "rationale": "scripted trade",
    }


NO_TOOL = {"answer": "no lookup needed"}

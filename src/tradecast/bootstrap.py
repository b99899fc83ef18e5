"""Builds the run's dependencies from settings.

This is the only module that picks implementations (embedded vs scale-out). Everything
below it depends on the small Protocols in each package, never on a mode flag.
"""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel

from tradecast.llm.factory import create_chat_model
from tradecast.memory.base import DecisionMemory
from tradecast.memory.embeddings import Embedder, SentenceTransformerEmbedder
from tradecast.settings import AgentRole, Settings


def build_chat_model(settings: Settings, role: AgentRole) -> BaseChatModel:
    """The chat model one agent role talks to (llama.cpp in-process or Ollama)."""
    return create_chat_model(settings.llm, role)


def build_embedder(settings: Settings) -> Embedder:
    """The sentence embedder of the memory: a local model folder, loaded once per process."""
    config = settings.embeddings
    return SentenceTransformerEmbedder(config.model_path, config.device, config.batch_size)


def build_memory(settings: Settings, embedder: Embedder | None = None) -> DecisionMemory:
    """The decision memory: a Chroma server when ``chroma_url`` is set, else files under
    ``data_dir/memory``."""
    # chromadb is imported only when a memory is built: most commands never need it
    from tradecast.memory.chroma import ChromaDecisionMemory, http_client, persistent_client

    client = (
        http_client(settings.chroma_url)
        if settings.chroma_url
        else persistent_client(settings.data_dir / "memory")
    )
    return ChromaDecisionMemory(client, embedder or build_embedder(settings))

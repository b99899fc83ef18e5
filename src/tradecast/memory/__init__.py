"""Vector memory of past decisions and their realised outcomes.

Record a decision with the situation it was made in (:class:`DecisionRecord`), attach what came
of it later (:class:`Outcome`), and recall the most similar past situations as
:class:`~tradecast.domain.MemoryHit` objects, never seeing the future of a replay.
Implementations are picked in :mod:`tradecast.bootstrap`; code below it uses
:class:`DecisionMemory` and :class:`Embedder` only.
"""

from tradecast.memory.base import (
    MAX_K,
    MAX_RECENT,
    DecisionMemory,
    DecisionRecord,
    Outcome,
    clean_situation,
    horizon_delta,
)
from tradecast.memory.embeddings import CachedEmbedder, Embedder, SentenceTransformerEmbedder
from tradecast.memory.format import format_hit, format_hits, format_outcome
from tradecast.memory.outcomes import realised_outcome
from tradecast.memory.situation import describe_situation

__all__ = [
    "MAX_K",
    "MAX_RECENT",
    "CachedEmbedder",
    "DecisionMemory",
    "DecisionRecord",
    "Embedder",
    "Outcome",
    "SentenceTransformerEmbedder",
    "clean_situation",
    "describe_situation",
    "format_hit",
    "format_hits",
    "format_outcome",
    "horizon_delta",
    "realised_outcome",
]

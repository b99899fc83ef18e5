"""An LLM response cache on SQLite, so a replayed run is identical and fast.

:class:`SqliteLLMCache` is a langchain-core ``BaseCache``: set it on a chat model
(``model.cache = cache``) and every ``invoke``/``ainvoke`` (structured output and tool turns
included) is looked up by the prompt and the ``llm_string`` langchain derives from the model
(backend, model name, temperature, seed, max tokens, the bound JSON schema or tools). The key
is a SHA-256 of both; both are stored beside the answer so a cache can be inspected.

langchain-core does not consult the cache on ``astream`` (it always calls the model), and the
persona streams. :func:`astream_cached` is the streaming path that does: a hit is replayed as
word-sized chunks with the recorded token usage, a miss streams from the model and stores the
whole answer once the stream has completed. Both paths use the same key as ``ainvoke``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.language_models import BaseChatModel
from langchain_core.load import dumps
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    BaseMessageChunk,
    message_chunk_to_message,
    message_to_dict,
    messages_from_dict,
)
from langchain_core.outputs import ChatGeneration, Generation

from tradecast.logs import get_logger
from tradecast.sqlite_shared import connect_shared

log = get_logger(__name__)

CACHE_FILENAME = "llm-cache.sqlite"
_PIECE = re.compile(r"\s*\S+\s*|\s+")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS llm_responses (
    key TEXT PRIMARY KEY,
    llm_string TEXT NOT NULL,
    prompt TEXT NOT NULL,
    answer TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""


def cache_key(prompt: str, llm_string: str) -> str:
    """The row key of an answer: SHA-256 over the model's parameters and the prompt."""
    digest = hashlib.sha256()
    digest.update(llm_string.encode("utf-8"))
    digest.update(b"\x00")
    digest.update(prompt.encode("utf-8"))
    return digest.hexdigest()


def encode_generations(generations: RETURN_VAL_TYPE) -> str:
    """Generations as JSON (messages through langchain's own message dicts)."""
    items: list[dict[str, Any]] = []
    for generation in generations:
        if isinstance(generation, ChatGeneration):
            message = generation.message
            if isinstance(message, BaseMessageChunk):
                message = message_chunk_to_message(message)
            items.append({"message": message_to_dict(message), "info": generation.generation_info})
        else:
            items.append({"text": generation.text, "info": generation.generation_info})
    return json.dumps(items, default=str, sort_keys=True)


def decode_generations(text: str) -> list[Generation]:
    """The inverse of :func:`encode_generations`."""
    generations: list[Generation] = []
    for item in json.loads(text):
        if "message" in item:
            (message,) = messages_from_dict([item["message"]])
            generations.append(ChatGeneration(message=message, generation_info=item["info"]))
        else:
            generations.append(Generation(text=item["text"], generation_info=item["info"]))
    return generations


class SqliteLLMCache(BaseCache):
    """Chat-model answers in one SQLite file (WAL, safe for several processes).

    Each write is its own transaction and a writer waits up to 30 s for the lock (the
    connection's busy timeout), so parallel eval processes can share one cache file
    (``tests/integration/test_cache_processes.py``).

    ``hits`` and ``misses`` count lookups since the cache was opened.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = connect_shared(self.path, _SCHEMA)
        self.hits = 0
        self.misses = 0

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """The cached generations of ``prompt`` on the model ``llm_string``, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT answer FROM llm_responses WHERE key = ?", (cache_key(prompt, llm_string),)
            ).fetchone()
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        return decode_generations(row[0])

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Store the answer to ``prompt`` (a later answer to the same key replaces it)."""
        answer = encode_generations(return_val)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO llm_responses (key, llm_string, prompt, answer) "
                "VALUES (?, ?, ?, ?)",
                (cache_key(prompt, llm_string), llm_string, prompt, answer),
            )
            self._db.commit()

    def clear(self, **kwargs: Any) -> None:
        """Forget every answer."""
        with self._lock:
            self._db.execute("DELETE FROM llm_responses")
            self._db.commit()

    # SQLite on a local file answers in microseconds: a thread hop would cost more.
    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """Async :meth:`lookup` (runs inline)."""
        return self.lookup(prompt, llm_string)

    async def aupdate(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Async :meth:`update` (runs inline)."""
        self.update(prompt, llm_string, return_val)

    async def aclear(self, **kwargs: Any) -> None:
        """Async :meth:`clear`."""
        self.clear(**kwargs)

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM llm_responses").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        """Where the cache is and how it was used."""
        return {
            "path": str(self.path),
            "entries": len(self),
            "hits": self.hits,
            "misses": self.misses,
        }

    def close(self) -> None:
        """Close the database (the cache is unusable afterwards)."""
        with self._lock:
            self._db.close()


def use_cache(models: Sequence[BaseChatModel], cache: BaseCache | None) -> None:
    """Make every model in ``models`` look answers up in ``cache`` (None: no caching)."""
    for model in models:
        model.cache = cache if cache is not None else False


def _prompt_of(messages: Sequence[BaseMessage]) -> str:
    # The same serialisation langchain's own cache lookup uses (message ids dropped).
    normalized = [m.model_copy(update={"id": None}) if m.id is not None else m for m in messages]
    return dumps(normalized)


async def astream_cached(
    model: BaseChatModel, messages: Sequence[BaseMessage], **kwargs: Any
) -> AsyncIterator[BaseMessageChunk]:
    """``model.astream(messages, **kwargs)``, answered from ``model.cache`` when it holds the
    answer, and stored there when the stream completes. Without a cache it is plain astream."""
    cache = model.cache if isinstance(model.cache, BaseCache) else None
    if cache is None:
        async for chunk in model.astream(list(messages), **kwargs):
            yield chunk
        return
    # The key langchain's ainvoke uses for the same call, so both paths share answers.
    llm_string = model._get_llm_string(stop=kwargs.get("stop"), **kwargs)
    prompt = _prompt_of(messages)
    cached = await cache.alookup(prompt, llm_string)
    if cached:
        for chunk in replay_chunks(cached[0]):
            yield chunk
        return
    chunks: list[AIMessageChunk] = []
    async for chunk in model.astream(list(messages), **kwargs):
        chunks.append(chunk)
        yield chunk
    if chunks:
        merged = chunks[0]
        for chunk in chunks[1:]:
            merged = merged + chunk
        message = message_chunk_to_message(merged)
        message.id = None
        await cache.aupdate(prompt, llm_string, [ChatGeneration(message=message)])


def replay_chunks(generation: Generation) -> list[AIMessageChunk]:
    """A cached answer as word-sized chunks (so a replay still streams), usage last."""
    message = getattr(generation, "message", None)
    text = generation.text if message is None else str(message.content)
    usage = message.usage_metadata if isinstance(message, AIMessage) else None
    metadata = dict(message.response_metadata) if message is not None else {}
    chunks = [AIMessageChunk(content=piece) for piece in _PIECE.findall(text)]
    chunks.append(AIMessageChunk(content="", usage_metadata=usage, response_metadata=metadata))
    return chunks

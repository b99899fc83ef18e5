"""The Chroma memory as the desk builds it: bootstrap, persistence across a restart, the real
embedding model (batched, loaded once, cached for queries), and clear failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from chromadb.api.client import SharedSystemClient

from support.memory import situation_at
from tradecast.bootstrap import build_embedder, build_memory
from tradecast.domain import Action
from tradecast.errors import MemoryStoreError
from tradecast.memory import (
    CachedEmbedder,
    DecisionMemory,
    DecisionRecord,
    Embedder,
    Outcome,
    SentenceTransformerEmbedder,
)
from tradecast.memory.chroma import ChromaDecisionMemory, http_client, persistent_client
from tradecast.memory.embeddings import Vectors
from tradecast.settings import load_settings

T0 = datetime(2021, 5, 19, 14, tzinfo=UTC)
HOUR = timedelta(hours=1)
REPO = Path(__file__).resolve().parents[2]


class CountingEmbedder:
    """Delegates to the real model and counts the calls (a spy, not a stand-in)."""

    def __init__(self, inner: Embedder, name: str | None = None) -> None:
        self.inner = inner
        self.calls: list[int] = []
        self._name = name or inner.name

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls.append(len(texts))
        return self.inner.embed(texts)


def _record(decision_id: str, bar: int, at: datetime = T0) -> DecisionRecord:
    return DecisionRecord(
        decision_id=decision_id,
        symbol="BTC/USDT",
        action=Action.BUY,
        decided_at=at,
        situation=situation_at(bar),
    )


@pytest.mark.slow
def test_memory_outcomes_persist_across_a_restart(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "desk")
    memory = build_memory(settings)
    memory.record_many([_record(f"d{i}", 1000 + 700 * i, T0 + i * HOUR) for i in range(6)])
    memory.attach_outcome("d2", Outcome(horizon="24h", ret=-0.04, known_at=T0 + 30 * HOUR))
    memory.attach_outcome(
        "d2", Outcome(horizon="1h", ret=0.005, known_at=T0 + 3 * HOUR, stop_hit=False)
    )
    query = situation_at(1000 + 700 * 2 + 1)
    before = [h.model_dump(mode="json") for h in memory.similar(query, k=3)]
    SharedSystemClient.clear_system_cache()  # let go of the files before the new process
    del memory

    # a fresh process: nothing in memory but what Chroma wrote to disk
    script = textwrap.dedent(
        f"""
        import json, sys
        from datetime import datetime
        from tradecast.bootstrap import build_memory
        from tradecast.settings import load_settings
        memory = build_memory(load_settings(data_dir={str(tmp_path / "desk")!r}))
        hits = memory.similar(sys.argv[1], k=3)
        as_of = memory.get("d2", as_of=datetime.fromisoformat(sys.argv[2]))
        print(json.dumps({{"count": memory.count(), "hits": [h.model_dump(mode="json")
              for h in hits], "as_of": as_of.model_dump(mode="json")}}))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADECAST_")}
    done = subprocess.run(
        [sys.executable, "-c", script, query, (T0 + 5 * HOUR).isoformat()],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    after = json.loads(done.stdout.strip().splitlines()[-1])
    assert after["count"] == 6
    assert after["hits"] == before
    assert after["hits"][0]["decision_id"] == "d2"
    assert after["hits"][0]["outcome_returns"] == {"1h": 0.005, "24h": -0.04}
    assert after["as_of"]["outcome_returns"] == {"1h": 0.005}
    assert after["as_of"]["stop_hit"] is False


@pytest.mark.slow
def test_memory_bootstrap_puts_the_store_under_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "desk")
    memory = build_memory(settings)
    assert isinstance(memory, DecisionMemory)
    memory.record(_record("d", 2000))
    assert (tmp_path / "desk" / "memory" / "chroma.sqlite3").is_file()
    embedder = build_embedder(settings)
    assert embedder.name == "all-MiniLM-L6-v2"
    assert embedder.dimension == 384


@pytest.mark.slow
def test_memory_embeds_a_batch_once_and_caches_query_texts(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    counting = CountingEmbedder(embedder)
    memory = ChromaDecisionMemory(persistent_client(tmp_path / "m"), counting)
    memory.record_many([_record(f"d{i}", 500 + 300 * i) for i in range(25)])
    assert counting.calls == [25]
    memory.record_many([_record(f"d{i}", 500 + 300 * i) for i in range(25)])  # all known
    assert counting.calls == [25]
    query = situation_at(4321)
    first = memory.similar(query, k=5)
    second = memory.similar(query, k=5, symbol="BTC/USDT")
    assert counting.calls == [25, 1]
    assert [h.decision_id for h in first] == [h.decision_id for h in second]
    vector = embedder.embed([query])[0]
    by_vector = memory.similar_by_embedding(vector, k=5)
    assert [h.decision_id for h in by_vector] == [h.decision_id for h in first]
    assert counting.calls == [25, 1]


@pytest.mark.slow
def test_memory_refuses_a_store_made_with_another_model(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    client = persistent_client(tmp_path / "m")
    ChromaDecisionMemory(client, embedder).record(_record("d", 3000))
    with pytest.raises(MemoryStoreError, match="holds vectors of all-MiniLM-L6-v2"):
        ChromaDecisionMemory(client, CountingEmbedder(embedder, name="another-model"))


@pytest.mark.slow
def test_memory_precomputed_embeddings_are_checked(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    memory = ChromaDecisionMemory(persistent_client(tmp_path / "m"), embedder)
    records = [_record("a", 3000), _record("b", 4000)]
    with pytest.raises(MemoryStoreError, match="shape"):
        memory.record_many(records, embeddings=np.ones((1, 384)))
    with pytest.raises(MemoryStoreError, match="non-zero"):
        memory.record_many(records, embeddings=np.zeros((2, 384)))
    assert memory.count() == 0
    memory.record_many(records, embeddings=embedder.embed([r.situation for r in records]) * 3)
    assert memory.similar(records[1].situation, k=1)[0].decision_id == "b"
    with pytest.raises(MemoryStoreError, match="expected 384"):
        memory.similar_by_embedding(np.ones(10))


@pytest.mark.slow
def test_memory_embedder_is_loaded_once_and_gives_unit_vectors(
    embedder: SentenceTransformerEmbedder,
) -> None:
    again = SentenceTransformerEmbedder(batch_size=8)
    assert again._model is embedder._model
    vectors = again.embed([situation_at(i) for i in range(300, 320)])
    assert vectors.shape == (20, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(
        vectors, embedder.embed([situation_at(i) for i in range(300, 320)]), atol=1e-5
    )
    assert again.embed([]).shape == (0, 384)
    with pytest.raises(MemoryStoreError, match="non-empty"):
        again.embed(["ok", " "])
    with pytest.raises(MemoryStoreError, match="sequence"):
        again.embed("one string")  # type: ignore[arg-type]
    assert os.environ["HF_HUB_OFFLINE"] == "1"


@pytest.mark.slow
def test_memory_query_cache_is_bounded(embedder: SentenceTransformerEmbedder) -> None:
    counting = CountingEmbedder(embedder)
    cached = CachedEmbedder(counting, maxsize=2)
    a, b, c = (situation_at(i) for i in (400, 500, 600))
    first = cached.embed([a, b, a])
    assert counting.calls == [2]
    assert np.allclose(first[0], first[2])
    cached.embed([c])  # evicts a
    cached.embed([b])
    cached.embed([a])
    assert counting.calls == [2, 1, 1]
    assert cached.hits == 2 and cached.misses == 4


def test_memory_embedder_refuses_a_folder_without_a_model(tmp_path: Path) -> None:
    with pytest.raises(MemoryStoreError, match="no sentence-transformers model"):
        SentenceTransformerEmbedder(model_path=tmp_path)


def test_memory_http_client_fails_clearly() -> None:
    with pytest.raises(MemoryStoreError, match="must look like"):
        http_client("chroma:8000")
    with pytest.raises(MemoryStoreError, match="could not reach the Chroma server"):
        http_client("http://127.0.0.1:9")


def test_memory_persistent_client_refuses_a_file_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(MemoryStoreError, match="could not open the vector memory"):
        persistent_client(blocker)


@pytest.mark.slow
def test_memory_selective_filters_fall_back_to_chroma_and_stay_exact(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    """A store larger than the over-fetch: a common symbol is served from the nearest
    neighbours, a rare one (and an early as_of) through Chroma's where filter; all exact."""
    rng = np.random.default_rng(3)
    base = embedder.embed([situation_at(300 + 40 * i) for i in range(50)])
    size = 1200
    vectors = base[np.arange(size) % len(base)] + rng.normal(0, 0.02, (size, 384))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    symbols = [
        "RARE/USDT" if i % 400 == 7 else ("BTC/USDT" if i % 2 else "ETH/USDT") for i in range(size)
    ]
    times = [T0 + i * timedelta(minutes=10) for i in range(size)]
    records = [
        DecisionRecord(
            decision_id=f"d{i}",
            symbol=symbols[i],
            action=Action.HOLD,
            decided_at=times[i],
            situation=f"situation {i % 50}",
        )
        for i in range(size)
    ]
    memory = ChromaDecisionMemory(persistent_client(tmp_path / "m"), embedder)
    memory.record_many(records, embeddings=vectors)
    for q in range(10):
        query = vectors[q * 97] + rng.normal(0, 0.02, 384).astype(np.float32)
        query /= np.linalg.norm(query)
        for symbol, as_of in [("BTC/USDT", None), ("RARE/USDT", None), (None, times[30])]:
            hits = memory.similar_by_embedding(query, k=5, symbol=symbol, as_of=as_of)
            eligible = [
                i
                for i in range(size)
                if symbol in (None, symbols[i]) and (as_of is None or times[i] <= as_of)
            ]
            order = np.argsort(-(vectors[eligible] @ query))[:5]
            assert [h.decision_id for h in hits] == [f"d{eligible[j]}" for j in order]
            assert all(h.situation.startswith("situation ") for h in hits)

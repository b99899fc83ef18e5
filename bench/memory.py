"""Vector memory speed: embed and insert throughput, top-5 query latency at scale.

Situation texts are built from the real bundled candles (BTC/USDT and ETH/BUSD, 1h) with the
same `describe_situation` the desk uses, and embedded with the real all-MiniLM-L6-v2 on this
machine. Embedding 100,000 texts on 2 CPU cores would take 20 to 40 minutes, so the large stores
are filled with derived vectors: each real embedding reused with small Gaussian noise
(renormalised). Real embed+insert throughput is measured separately on real texts.

Figures per store size:
- insert: decisions/s through ``record_many`` with precomputed vectors (Chroma only);
- query by vector: top-5 ``similar_by_embedding`` (the Chroma search alone), unfiltered and
  with a symbol + as-of time filter, with recall@5 against exact brute force;
- query by text: top-5 ``similar`` on a new text (MiniLM encode + search) and on a repeated
  text (query-embedding cache hit).

Run: .venv/bin/python bench/memory.py            (10,000 decisions; 30 to 45 s)
     .venv/bin/python bench/memory.py --full     (10,000 and 100,000 decisions)
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np

import tradecast
from tradecast.domain import Action, Candle
from tradecast.logs import configure_logging
from tradecast.memory import DecisionRecord, SentenceTransformerEmbedder, describe_situation
from tradecast.memory.chroma import ChromaDecisionMemory, persistent_client
from tradecast.memory.embeddings import Vectors

OHLCV = Path(tradecast.__file__).parent / "data" / "ohlcv"
MARKETS = {"BTC/USDT": "BTC-USDT-1h.csv", "ETH/BUSD": "ETH-BUSD-1h.csv"}
WINDOW = 200
ACTIONS = (Action.BUY, Action.SELL, Action.HOLD)


def load_candles(filename: str) -> list[Candle]:
    with (OHLCV / filename).open(newline="") as handle:
        return [Candle.model_validate(row) for row in csv.DictReader(handle)]


class Situation:
    """One real situation: where and when, and its text."""

    __slots__ = ("at", "symbol", "text")

    def __init__(self, symbol: str, candles: list[Candle], index: int) -> None:
        self.symbol = symbol
        self.at = candles[index].timestamp
        self.text = describe_situation(candles[index - WINDOW : index + 1])


def sample_situations(count: int, rng: random.Random) -> list[Situation]:
    """``count`` real situations at random bars of the bundled markets."""
    markets = {symbol: load_candles(name) for symbol, name in MARKETS.items()}
    picks = []
    for i in range(count):
        symbol = list(markets)[i % len(markets)]
        candles = markets[symbol]
        picks.append(Situation(symbol, candles, rng.randrange(WINDOW, len(candles))))
    return picks


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def timed(call: Callable[[], object], runs: int) -> list[float]:
    """Latencies of ``runs`` calls, in milliseconds."""
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def summary(latencies: list[float]) -> str:
    return (
        f"p50 {statistics.median(latencies):6.2f} ms  p99 {percentile(latencies, 99):6.2f} ms"
        f"  (n={len(latencies)})"
    )


def derived(base: Vectors, count: int, noise: float, rng: np.random.Generator) -> Vectors:
    """``count`` unit vectors: real embeddings cycled, each with Gaussian noise."""
    picks = base[np.arange(count) % len(base)]
    vectors = picks + rng.normal(0.0, noise, size=picks.shape).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def records_for(situations: list[Situation], count: int, prefix: str) -> list[DecisionRecord]:
    """``count`` decisions cycling through the real situations, one per 10 minutes of replay.

    Each reuse of a situation gets a random one of the two symbols: the text names no symbol,
    and BTC and ETH go through the same regimes."""
    start = min(s.at for s in situations)
    rng = random.Random(count)
    symbols = [
        situations[i].symbol if i < len(situations) else rng.choice(list(MARKETS))
        for i in range(count)
    ]
    return [
        DecisionRecord(
            decision_id=f"{prefix}{i}",
            symbol=symbols[i],
            action=ACTIONS[i % 3],
            decided_at=start + timedelta(minutes=10 * i),
            situation=situations[i % len(situations)].text,
        )
        for i in range(count)
    ]


def bench_real_embedding(embedder: SentenceTransformerEmbedder, texts: list[str]) -> Vectors:
    started = time.perf_counter()
    vectors = embedder.embed(texts)
    elapsed = time.perf_counter() - started
    print(
        f"embed (MiniLM, batch {embedder._batch_size}, {embedder.device}): "
        f"{len(texts) / elapsed:,.0f} texts/s over {len(texts)} real situation texts"
    )
    return vectors


def bench_real_record(
    embedder: SentenceTransformerEmbedder, situations: list[Situation], root: Path
) -> None:
    memory = ChromaDecisionMemory(persistent_client(root / "real"), embedder)
    records = records_for(situations, len(situations), "real-")
    started = time.perf_counter()
    memory.record_many(records)
    elapsed = time.perf_counter() - started
    print(
        f"record_many with embedding (real texts): {len(records) / elapsed:,.0f} decisions/s "
        f"over {len(records)}"
    )


def bench_store(
    size: int,
    embedder: SentenceTransformerEmbedder,
    situations: list[Situation],
    base: Vectors,
    queries: list[Situation],
    query_vectors: Vectors,
    args: argparse.Namespace,
    root: Path,
) -> None:
    rng = np.random.default_rng(args.seed)
    vectors = derived(base, size, args.noise, rng)
    records = records_for(situations, size, "d")
    memory = ChromaDecisionMemory(persistent_client(root / f"store-{size}"), embedder)
    started = time.perf_counter()
    for start in range(0, size, 5000):
        memory.record_many(records[start : start + 5000], embeddings=vectors[start : start + 5000])
    elapsed = time.perf_counter() - started
    print(f"\n== {size:,} stored decisions (persistent Chroma, cosine HNSW)")
    print(f"insert, precomputed vectors: {size / elapsed:,.0f} decisions/s ({elapsed:.1f} s)")

    n = len(queries)
    middle = records[size // 2].decided_at
    early = records[max(1, size // 300)].decided_at  # about 0.3% of the store decided by then
    prefilter = ChromaDecisionMemory(  # the same store, every filter through Chroma's where
        persistent_client(root / f"store-{size}"), embedder, overfetch=(), exact_scan_max=0
    )
    cycle = iter(range(10**9))

    def vector_query(store: ChromaDecisionMemory, **filters: object) -> Callable[[], object]:
        def call() -> object:
            i = next(cycle) % n
            picked = {k: (queries[i].symbol if v == "query" else v) for k, v in filters.items()}
            return store.similar_by_embedding(query_vectors[i], k=5, **picked)  # type: ignore[arg-type]

        return call

    timed(vector_query(memory), 20)  # warm up: page in the index
    scenarios = [
        ("by vector, no filter", vector_query(memory)),
        ("by vector, symbol (1/2 pass)", vector_query(memory, symbol="query")),
        (
            "by vector, symbol + as_of (1/4 pass)",
            vector_query(memory, symbol="query", as_of=middle),
        ),
        ("by vector, as_of early (0.3% pass)", vector_query(memory, as_of=early)),
        (
            "  symbol + as_of, Chroma where only",
            vector_query(prefilter, symbol="query", as_of=middle),
        ),
    ]
    for label, call in scenarios:
        print(f"query {label:<38} {summary(timed(call, args.queries))}")
    print(
        f"recall@5 vs exact search (no filter): {recall_at_5(memory, vectors, query_vectors):.3f}"
    )

    texts = [q.text + f" #{i}" for i, q in enumerate(queries)]  # unique: never a cache hit
    text_cycle = iter(texts * (args.queries // n + 2))

    def by_new_text() -> object:
        return memory.similar(next(text_cycle), k=5)

    def by_cached_text() -> object:
        return memory.similar(texts[0], k=5)

    print(
        f"query {'by new text (encode + search)':<38} "
        f"{summary(timed(by_new_text, min(args.queries, n)))}"
    )
    print(
        f"query {'by repeated text (cached encode)':<38} "
        f"{summary(timed(by_cached_text, args.queries))}"
    )


def recall_at_5(memory: ChromaDecisionMemory, stored: Vectors, queries: Vectors) -> float:
    """Share of the exact top-5 (numpy brute force) that the HNSW search returns."""
    found = 0
    for vector in queries:
        exact = {f"d{i}" for i in np.argsort(-(stored @ vector))[:5]}
        found += len(exact & {h.decision_id for h in memory.similar_by_embedding(vector, k=5)})
    return found / (5 * len(queries))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="also 100,000 decisions")
    parser.add_argument("--sizes", type=int, nargs="*", help="store sizes (overrides --full)")
    parser.add_argument(
        "--base", type=int, help="real situation texts embedded (default 300, --full 1000)"
    )
    parser.add_argument("--queries", type=int, default=300, help="queries per measurement")
    parser.add_argument("--noise", type=float, default=0.01, help="std of the per-dim noise")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    configure_logging("warning")
    sizes = args.sizes or ([10_000, 100_000] if args.full else [10_000])
    args.base = args.base or (1000 if args.full else 300)
    rng = random.Random(args.seed)

    started = time.perf_counter()
    situations = sample_situations(args.base, rng)
    held_out = 200 if args.full else 100
    queries = sample_situations(held_out, rng)
    print(
        f"situation texts from real candles: {args.base + held_out} in "
        f"{time.perf_counter() - started:.1f} s"
    )
    started = time.perf_counter()
    embedder = SentenceTransformerEmbedder()
    print(f"model load: {time.perf_counter() - started:.1f} s")
    embedder.embed(["warm up"])
    base = bench_real_embedding(embedder, [s.text for s in situations])
    query_vectors = embedder.embed([q.text for q in queries])
    single = iter([q.text + " ." for q in queries])
    encodes = timed(lambda: embedder.embed([next(single)]), len(queries))
    print(f"encode one query text (MiniLM, {embedder.device}):   {summary(encodes)}")
    with tempfile.TemporaryDirectory(prefix="tradecast-bench-memory-") as tmp:
        root = Path(tmp)
        bench_real_record(embedder, situations[: min(500, args.base // 2)], root)
        for size in sizes:
            bench_store(size, embedder, situations, base, queries, query_vectors, args, root)


if __name__ == "__main__":
    main()

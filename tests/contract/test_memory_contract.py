"""The DecisionMemory contract, run against every implementation on the real MiniLM model.

Implementations: Chroma PersistentClient (tmp dir; once with the default search, which
filters over-fetched neighbours client-side and scans small filtered sets exactly, once with
Chroma's own where pre-filter for every filter), Chroma EphemeralClient, Chroma HttpClient
against a real local ``chroma run`` server, and the in-process numpy store the eval harness
uses.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import chromadb
import numpy as np
import pytest

from support.memory import load_candles, running_chroma_server, situation_at
from tradecast.domain import Action
from tradecast.errors import MemoryStoreError
from tradecast.memory import (
    MAX_RECENT,
    DecisionMemory,
    DecisionRecord,
    Outcome,
    SentenceTransformerEmbedder,
)
from tradecast.memory.chroma import (
    EXACT_SCAN_MAX,
    OVERFETCH,
    ChromaDecisionMemory,
    chroma_settings,
    http_client,
    persistent_client,
)
from tradecast.memory.inprocess import InProcessDecisionMemory

pytestmark = pytest.mark.slow

T0 = datetime(2021, 5, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
ETH = "ETH-BUSD-1h.csv"


def _bar(timestamp: str, filename: str = "BTC-USDT-1h.csv") -> int:
    candles = load_candles(filename)
    return next(i for i, c in enumerate(candles) if c.timestamp.isoformat().startswith(timestamp))


# real BTC situations from very different regimes of the bundled candles
REGIMES = {
    "crash": "2021-05-19T14",
    "quiet": "2020-07-10T12",
    "rally": "2021-01-07T12",
    "bear": "2021-06-21T12",
    "calm-up": "2020-10-01T12",
}


@pytest.fixture(scope="session")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_chroma_server(tmp_path_factory.mktemp("chroma-server")) as url:
        yield url


@pytest.fixture(
    params=[
        "chroma-persistent",
        "chroma-persistent-prefilter",
        "chroma-ephemeral",
        "chroma-http",
        "in-process",
    ]
)
def memory(
    request: pytest.FixtureRequest, tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> DecisionMemory:
    if request.param == "in-process":
        return InProcessDecisionMemory(embedder)
    overfetch: tuple[int, ...] = OVERFETCH
    exact_scan_max = EXACT_SCAN_MAX
    if request.param.startswith("chroma-persistent"):
        client = persistent_client(tmp_path / "memory")
        if request.param.endswith("prefilter"):
            overfetch, exact_scan_max = (), 0  # every filter goes to Chroma's where pre-filter
    elif request.param == "chroma-ephemeral":
        client = chromadb.EphemeralClient(settings=chroma_settings())
    else:
        client = http_client(request.getfixturevalue("chroma_url"))
    # ephemeral and server clients share state within the session: one collection per test
    return ChromaDecisionMemory(
        client,
        embedder,
        collection=f"test-{uuid.uuid4().hex[:16]}",
        overfetch=overfetch,
        exact_scan_max=exact_scan_max,
    )


def _record(
    decision_id: str,
    situation: str,
    at: datetime = T0,
    symbol: str = "BTC/USDT",
    action: Action = Action.BUY,
    votes: dict[str, Action] | None = None,
) -> DecisionRecord:
    return DecisionRecord(
        decision_id=decision_id,
        symbol=symbol,
        action=action,
        decided_at=at,
        situation=situation,
        votes=votes or {},
    )


def _regime_records() -> list[DecisionRecord]:
    return [
        _record(name, situation_at(_bar(ts)), T0 + i * HOUR)
        for i, (name, ts) in enumerate(REGIMES.items())
    ]


def test_memory_implements_the_protocol(memory: DecisionMemory) -> None:
    assert isinstance(memory, DecisionMemory)
    assert memory.count() == 0
    assert memory.similar("Uptrend, RSI 60, bullish.") == []


def test_memory_recalls_the_same_regime_above_unrelated_ones(memory: DecisionMemory) -> None:
    memory.record_many(_regime_records())
    # the ETH market on the same days: a different symbol, the same regimes
    for regime in ("crash", "rally", "quiet"):
        query = situation_at(_bar(REGIMES[regime], ETH), ETH)
        hits = memory.similar(query, k=5)
        assert hits[0].decision_id == regime
        assert len(hits) == 5
        sims = [h.similarity for h in hits]
        assert sims == sorted(sims, reverse=True)
        assert sims[0] > sims[1] + 0.02
        assert all(-1.0 <= s <= 1.0 for s in sims)


def test_memory_hit_carries_the_recorded_decision(memory: DecisionMemory) -> None:
    text = situation_at(_bar(REGIMES["rally"]))
    memory.record(_record("d-1", "  " + text + "\n", T0, "btc/usdt", Action.SELL))
    (hit,) = memory.similar(text, k=1)
    assert hit.decision_id == "d-1"
    assert hit.symbol == "BTC/USDT"
    assert hit.action is Action.SELL
    assert hit.decided_at == T0
    assert hit.situation == text
    assert hit.similarity == pytest.approx(1.0, abs=1e-4)
    assert hit.outcome_returns == {}
    assert hit.stop_hit is None
    assert hit.votes == {}


def test_memory_outcomes_attach_at_several_horizons(memory: DecisionMemory) -> None:
    memory.record_many(_regime_records())
    memory.attach_outcome("crash", Outcome(horizon="24h", ret=-0.08, known_at=T0 + 24 * HOUR))
    memory.attach_outcome(
        "crash", Outcome(horizon="1h", ret=0.01, known_at=T0 + HOUR, stop_hit=False)
    )
    memory.attach_outcome(
        "crash", Outcome(horizon="4h", ret=-0.03, known_at=T0 + 4 * HOUR, stop_hit=True)
    )
    hit = memory.get("crash")
    assert hit.outcome_returns == {"1h": 0.01, "4h": -0.03, "24h": -0.08}
    assert list(hit.outcome_returns) == ["1h", "4h", "24h"]
    assert hit.stop_hit is True
    top = memory.similar(situation_at(_bar(REGIMES["crash"], ETH), ETH), k=1)[0]
    assert top.decision_id == "crash"
    assert top.outcome_returns == hit.outcome_returns


def test_memory_outcome_correction_replaces_the_old_one(memory: DecisionMemory) -> None:
    memory.record(_record("d", "Uptrend, RSI 60, bullish."))
    memory.attach_outcome("d", Outcome(horizon="1h", ret=0.02, known_at=T0 + HOUR, stop_hit=True))
    memory.attach_outcome("d", Outcome(horizon="1h", ret=0.01, known_at=T0 + 2 * HOUR))
    hit = memory.get("d")
    assert hit.outcome_returns == {"1h": 0.01}
    assert hit.stop_hit is None
    assert memory.get("d", as_of=T0 + HOUR).outcome_returns == {}


def test_memory_as_of_hides_later_decisions_and_unknown_outcomes(memory: DecisionMemory) -> None:
    text = "Downtrend, RSI 35, bearish. Last 24h: selloff -13.2%."
    memory.record_many([_record(f"d{i}", text, T0 + i * HOUR) for i in range(4)])
    memory.attach_outcome("d0", Outcome(horizon="1h", ret=0.01, known_at=T0 + HOUR))
    memory.attach_outcome(
        "d0", Outcome(horizon="24h", ret=-0.05, known_at=T0 + 24 * HOUR, stop_hit=True)
    )
    as_of = T0 + 90 * timedelta(minutes=1)
    hits = memory.similar(text, k=10, as_of=as_of)
    assert {h.decision_id for h in hits} == {"d0", "d1"}
    assert all(h.decided_at <= as_of for h in hits)
    d0 = next(h for h in hits if h.decision_id == "d0")
    assert d0.outcome_returns == {"1h": 0.01}
    assert d0.stop_hit is None  # the stop was only known with the 24h outcome
    # a decision made exactly at as_of is visible; one a microsecond later is not
    exact = memory.similar(text, k=10, as_of=T0 + 2 * HOUR)
    assert {h.decision_id for h in exact} == {"d0", "d1", "d2"}
    early = memory.similar(text, k=10, as_of=T0 + 2 * HOUR - timedelta(microseconds=1))
    assert {h.decision_id for h in early} == {"d0", "d1"}
    assert memory.similar(text, k=10, as_of=T0 - HOUR) == []
    with pytest.raises(MemoryStoreError, match="after"):
        memory.get("d3", as_of=T0 + HOUR)
    assert memory.get("d0", as_of=T0 + 24 * HOUR).stop_hit is True
    later = memory.similar(text, k=10)
    assert {h.decision_id for h in later} == {"d0", "d1", "d2", "d3"}


def test_memory_filters_by_symbol_and_since(memory: DecisionMemory) -> None:
    text = "Uptrend, price above its 20-bar average. RSI 66, bullish."
    memory.record_many(
        [
            _record("btc-1", text, T0, "BTC/USDT"),
            _record("eth-1", text, T0 + HOUR, "ETH/USDT"),
            _record("btc-2", text, T0 + 2 * HOUR, "BTC/USDT"),
        ]
    )
    assert {h.decision_id for h in memory.similar(text, symbol="btc/usdt")} == {"btc-1", "btc-2"}
    assert [h.decision_id for h in memory.similar(text, symbol="ETH/USDT")] == ["eth-1"]
    assert memory.similar(text, symbol="SOL/USDT") == []
    since = memory.similar(text, since=T0 + HOUR, symbol="BTC/USDT")
    assert [h.decision_id for h in since] == ["btc-2"]
    window = memory.similar(text, since=T0 + HOUR, as_of=T0 + HOUR)
    assert [h.decision_id for h in window] == ["eth-1"]


def test_memory_with_outcome_only_keeps_decisions_with_a_known_outcome(
    memory: DecisionMemory,
) -> None:
    text = "Calm volatility. Price mid-range of its 24h range."
    memory.record_many([_record(f"d{i}", text, T0 + i * HOUR) for i in range(3)])
    memory.attach_outcome("d0", Outcome(horizon="24h", ret=0.01, known_at=T0 + 24 * HOUR))
    memory.attach_outcome("d1", Outcome(horizon="1h", ret=0.02, known_at=T0 + 2 * HOUR))
    now_known = memory.similar(text, k=10, with_outcome_only=True)
    assert {h.decision_id for h in now_known} == {"d0", "d1"}
    then_known = memory.similar(text, k=10, with_outcome_only=True, as_of=T0 + 3 * HOUR)
    assert [h.decision_id for h in then_known] == ["d1"]
    assert then_known[0].outcome_returns == {"1h": 0.02}


def test_memory_k_limits_the_hits(memory: DecisionMemory) -> None:
    memory.record_many(_regime_records())
    assert len(memory.similar("Extreme volatility, crash.", k=2)) == 2
    assert len(memory.similar("Extreme volatility, crash.", k=50)) == len(REGIMES)


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_memory_rejects_an_empty_query(memory: DecisionMemory, text: str) -> None:
    with pytest.raises(MemoryStoreError, match="empty"):
        memory.similar(text)


def test_memory_rejects_an_unknown_decision_id(memory: DecisionMemory) -> None:
    memory.record(_record("known", "Uptrend, RSI 60."))
    outcome = Outcome(horizon="1h", ret=0.01, known_at=T0 + HOUR)
    with pytest.raises(MemoryStoreError, match="no decision 'unknown'"):
        memory.attach_outcome("unknown", outcome)
    with pytest.raises(MemoryStoreError, match="no decision 'unknown'"):
        memory.get("unknown")
    with pytest.raises(MemoryStoreError, match="non-empty"):
        memory.attach_outcome("", outcome)
    assert memory.count() == 1
    assert memory.get("known").outcome_returns == {}


def test_memory_rejects_an_outcome_known_before_its_decision(memory: DecisionMemory) -> None:
    memory.record(_record("d", "Uptrend, RSI 60.", T0))
    with pytest.raises(MemoryStoreError, match="before the decision"):
        memory.attach_outcome("d", Outcome(horizon="1h", ret=0.01, known_at=T0 - HOUR))
    assert memory.get("d").outcome_returns == {}


def test_memory_keeps_the_news_a_decision_read(memory: DecisionMemory) -> None:
    titles = ("Bitcoin breaks $40,000 as rally accelerates", "Ether slides 8% — «profit» taking")
    record = DecisionRecord(
        decision_id="d-news",
        symbol="BTC/USDT",
        action=Action.BUY,
        decided_at=T0,
        situation="Uptrend, RSI 60.",
        news=titles,
    )
    memory.record(record)
    memory.record(record)  # the same record again is still a no-op
    assert memory.get("d-news").news == titles
    assert memory.similar("Uptrend, RSI 60.", k=1)[0].news == titles
    with pytest.raises(MemoryStoreError, match="already recorded"):
        memory.record(record.model_copy(update={"news": titles[:1]}))
    memory.record(_record("d-plain", "Downtrend, RSI 30.", T0))
    assert memory.get("d-plain").news == ()


def test_memory_keeps_the_votes_of_a_decision(memory: DecisionMemory) -> None:
    votes = {"analyst": Action.BUY, "trader": Action.SELL, "rules": Action.BUY}
    text = "Uptrend, RSI 60."
    record = _record("d-votes", text, T0, votes=votes)
    memory.record(record)
    memory.record(record)  # the same record again is still a no-op
    memory.attach_outcome("d-votes", Outcome(horizon="1h", ret=0.01, known_at=T0 + HOUR))
    assert memory.get("d-votes").votes == votes
    assert memory.similar(text, k=1)[0].votes == votes
    assert memory.recent()[0].votes == votes
    with pytest.raises(MemoryStoreError, match="already recorded"):
        memory.record(record.model_copy(update={"votes": {"analyst": Action.BUY}}))
    # a decision without votes (as every one stored before votes were kept) has none
    memory.record(_record("d-plain", "Downtrend, RSI 30.", T0 + HOUR))
    memory.attach_outcome("d-plain", Outcome(horizon="1h", ret=0.02, known_at=T0 + 2 * HOUR))
    assert memory.get("d-plain").votes == {}
    assert memory.similar("Downtrend, RSI 30.", k=1)[0].votes == {}
    assert [(h.decision_id, h.votes) for h in memory.recent()] == [
        ("d-plain", {}),
        ("d-votes", votes),
    ]
    for hit in (memory.get("d-votes"), memory.recent()[1]):
        assert all(type(action) is Action for action in hit.votes.values())


def test_memory_recent_lists_the_latest_decisions_newest_first(memory: DecisionMemory) -> None:
    text = "Calm volatility. Price mid-range of its 24h range."
    memory.record_many(
        [
            _record("d2", text, T0 + 2 * HOUR, "ETH/USDT", Action.SELL, {"analyst": Action.SELL}),
            _record("d0", text, T0, votes={"trader": Action.BUY}),
            _record("d3", text, T0 + 3 * HOUR),
            _record("d1", text, T0 + HOUR, action=Action.HOLD),
            _record("d1b", text, T0 + HOUR),  # the same time as d1: ordered by id
        ]
    )
    assert memory.recent() == []  # no outcome known yet
    everything = memory.recent(with_outcome_only=False)
    assert [h.decision_id for h in everything] == ["d3", "d2", "d1", "d1b", "d0"]
    assert all(h.similarity == 1.0 and h.situation == text for h in everything)
    assert [h.symbol for h in everything] == ["BTC/USDT", "ETH/USDT", *["BTC/USDT"] * 3]
    assert everything[1].action is Action.SELL
    assert everything[1].votes == {"analyst": Action.SELL}
    assert [h.decision_id for h in memory.recent(limit=2, with_outcome_only=False)] == [
        "d3",
        "d2",
    ]
    assert [h.decision_id for h in memory.recent(limit=1, with_outcome_only=False)] == ["d3"]
    btc = memory.recent(symbol="btc/usdt", with_outcome_only=False)
    assert [h.decision_id for h in btc] == ["d3", "d1", "d1b", "d0"]
    assert memory.recent(symbol="SOL/USDT", with_outcome_only=False) == []
    span = memory.recent(since=T0 + HOUR, as_of=T0 + 2 * HOUR, with_outcome_only=False)
    assert [h.decision_id for h in span] == ["d2", "d1", "d1b"]


def test_memory_recent_as_of_hides_later_decisions_and_unknown_outcomes(
    memory: DecisionMemory,
) -> None:
    text = "Downtrend, RSI 35, bearish."
    memory.record_many(
        [_record(f"d{i}", text, T0 + i * HOUR, votes={"analyst": Action.SELL}) for i in range(4)]
    )
    memory.attach_outcome("d0", Outcome(horizon="1h", ret=-0.01, known_at=T0 + HOUR))
    memory.attach_outcome(
        "d0", Outcome(horizon="24h", ret=-0.05, known_at=T0 + 24 * HOUR, stop_hit=True)
    )
    memory.attach_outcome("d1", Outcome(horizon="4h", ret=0.02, known_at=T0 + 5 * HOUR))
    memory.attach_outcome("d3", Outcome(horizon="1h", ret=0.03, known_at=T0 + 4 * HOUR))
    as_of = T0 + 2 * HOUR  # d2 made exactly then, d3 later; only d0's 1h outcome known
    seen = memory.recent(as_of=as_of, with_outcome_only=False)
    assert [h.decision_id for h in seen] == ["d2", "d1", "d0"]
    assert [h.outcome_returns for h in seen] == [{}, {}, {"1h": -0.01}]
    assert seen[2].stop_hit is None  # the stop was only known with the 24h outcome
    assert [h.decision_id for h in memory.recent(as_of=as_of)] == ["d0"]
    assert memory.recent(as_of=T0 + HOUR - timedelta(microseconds=1)) == []
    assert memory.recent(as_of=T0 - HOUR, with_outcome_only=False) == []
    later = memory.recent(as_of=T0 + 5 * HOUR)
    assert [(h.decision_id, h.outcome_returns) for h in later] == [
        ("d3", {"1h": 0.03}),
        ("d1", {"4h": 0.02}),
        ("d0", {"1h": -0.01}),
    ]
    now = memory.recent(limit=2)
    assert [(h.decision_id, h.outcome_returns) for h in now] == [
        ("d3", {"1h": 0.03}),
        ("d1", {"4h": 0.02}),
    ]
    assert memory.recent(symbol="BTC/USDT")[-1].outcome_returns == {"1h": -0.01, "24h": -0.05}
    assert memory.recent()[-1].stop_hit is True
    assert all(h.votes == {"analyst": Action.SELL} for h in later)


def test_memory_recent_rejects_bad_parameters(memory: DecisionMemory) -> None:
    memory.record(_record("d", "Uptrend, RSI 60.", T0))
    for limit in (0, -1, MAX_RECENT + 1, 2.0, True):
        with pytest.raises(MemoryStoreError, match="limit must be"):
            memory.recent(limit=limit)  # type: ignore[arg-type]
    assert memory.recent(limit=MAX_RECENT, with_outcome_only=False)[0].decision_id == "d"
    with pytest.raises(MemoryStoreError, match="timezone-aware"):
        memory.recent(as_of=datetime(2021, 1, 1))
    with pytest.raises(MemoryStoreError, match="BASE/QUOTE"):
        memory.recent(symbol="BTCUSDT")


def test_memory_rerecording_is_idempotent_and_conflicts_change_nothing(
    memory: DecisionMemory,
) -> None:
    first = _record("d1", "Uptrend, RSI 60.", T0)
    memory.record(first)
    memory.attach_outcome("d1", Outcome(horizon="1h", ret=0.01, known_at=T0 + HOUR))
    memory.record(first)  # a retried write keeps the outcome
    assert memory.count() == 1
    assert memory.get("d1").outcome_returns == {"1h": 0.01}
    clash = _record("d1", "Downtrend, RSI 20.", T0)
    with pytest.raises(MemoryStoreError, match="already recorded"):
        memory.record_many([_record("d2", "Calm volatility.", T0), clash])
    assert memory.count() == 1  # d2 of the refused call was not stored either
    assert memory.get("d1").situation == "Uptrend, RSI 60."
    with pytest.raises(MemoryStoreError, match="repeated"):
        memory.record_many([_record("d3", "a", T0), _record("d3", "b", T0)])
    assert memory.count() == 1


def test_memory_rejects_bad_query_parameters(memory: DecisionMemory) -> None:
    memory.record(_record("d", "Uptrend, RSI 60.", T0))
    for k in (0, -1, 101):
        with pytest.raises(MemoryStoreError, match="k must be"):
            memory.similar("Uptrend", k=k)
    with pytest.raises(MemoryStoreError, match="timezone-aware"):
        memory.similar("Uptrend", as_of=datetime(2021, 1, 1))
    with pytest.raises(MemoryStoreError, match="BASE/QUOTE"):
        memory.similar("Uptrend", symbol="BTCUSDT")
    with pytest.raises(MemoryStoreError, match="DecisionRecord"):
        memory.record_many([{"decision_id": "x"}])  # type: ignore[list-item]
    assert memory.count() == 1


def test_memory_filters_match_brute_force_on_random_histories(
    memory: DecisionMemory, embedder: SentenceTransformerEmbedder
) -> None:
    """Random decision times, outcomes, query times and filters: the hits are exactly the
    exact top-k of the decisions that pass, and no outcome shown was known after as_of."""
    rng = random.Random(7)
    candles = load_candles()
    bars = rng.sample(range(300, len(candles)), 60)
    texts = [situation_at(b) for b in bars]
    vectors = embedder.embed(texts)
    times = [T0 + timedelta(minutes=rng.randrange(0, 60 * 24 * 10)) for _ in bars]
    symbols = [rng.choice(["BTC/USDT", "ETH/USDT", "ETH/USDT", "SOL/USDT"]) for _ in bars]
    memory.record_many(
        [
            _record(f"d{i}", text, at, symbol)
            for i, (text, at, symbol) in enumerate(zip(texts, times, symbols, strict=True))
        ]
    )
    known: dict[tuple[str, str], datetime] = {}
    for i, at in enumerate(times):
        for horizon in rng.sample(["1h", "4h", "24h"], rng.randrange(0, 4)):
            known_at = at + timedelta(minutes=rng.randrange(0, 60 * 48))
            memory.attach_outcome(
                f"d{i}", Outcome(horizon=horizon, ret=rng.uniform(-0.1, 0.1), known_at=known_at)
            )
            known[(f"d{i}", horizon)] = known_at
    queries = [situation_at(rng.randrange(300, len(candles))) for _ in range(30)]
    query_vectors = embedder.embed(queries)
    for query, query_vector in zip(queries, query_vectors, strict=True):
        as_of = T0 + timedelta(minutes=rng.randrange(0, 60 * 24 * 12))
        symbol = rng.choice([None, "BTC/USDT", "ETH/USDT", "SOL/USDT"])
        with_outcome = rng.random() < 0.3
        hits = memory.similar(
            query, k=5, as_of=as_of, symbol=symbol, with_outcome_only=with_outcome
        )
        eligible = [
            i
            for i, at in enumerate(times)
            if at <= as_of
            and symbol in (None, symbols[i])
            and (not with_outcome or any(t <= as_of for (d, _), t in known.items() if d == f"d{i}"))
        ]
        scores = vectors[eligible] @ query_vector
        expected = [f"d{eligible[j]}" for j in np.argsort(-scores)[:5]]
        assert [h.decision_id for h in hits] == expected
        for hit in hits:
            assert hit.decided_at <= as_of
            assert symbol in (None, hit.symbol)
            assert hit.situation == texts[int(hit.decision_id[1:])]
            for horizon in hit.outcome_returns:
                assert known[(hit.decision_id, horizon)] <= as_of
            hidden = {h for (d, h), t in known.items() if d == hit.decision_id and t > as_of}
            assert not hidden & set(hit.outcome_returns)
        limit = rng.choice([1, 5, 50])
        recent = memory.recent(
            symbol=symbol, as_of=as_of, limit=limit, with_outcome_only=with_outcome
        )
        newest = sorted(eligible, key=lambda i: (-times[i].timestamp(), f"d{i}"))[:limit]
        assert [h.decision_id for h in recent] == [f"d{i}" for i in newest]
        for hit in recent:
            shown = {h for (d, h), t in known.items() if d == hit.decision_id and t <= as_of}
            assert set(hit.outcome_returns) == shown

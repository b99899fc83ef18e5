"""How decisions and outcomes are flattened into vector-store metadata, and the time filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradecast.domain import Action
from tradecast.memory import DecisionRecord, Outcome
from tradecast.memory import metadata as meta

T0 = datetime(2021, 5, 19, 14, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _stored() -> dict[str, object]:
    record = DecisionRecord(
        decision_id="d", symbol="BTC/USDT", action=Action.BUY, decided_at=T0, situation="x"
    )
    return meta.record_metadata(record)


def _attach(stored: dict[str, object], outcome: Outcome) -> dict[str, object]:
    merged = {**stored, **meta.outcome_update(stored, outcome)}
    return {k: v for k, v in merged.items() if v is not None}


def test_memory_epoch_microseconds_round_trip_exactly() -> None:
    moment = datetime(2021, 5, 19, 14, 3, 7, 123456, tzinfo=UTC)
    value = meta.to_epoch_us(moment)
    assert isinstance(value, int)
    assert meta.from_epoch_us(value) == moment
    with pytest.raises(ValueError, match="timezone-aware"):
        meta.to_epoch_us(datetime(2021, 1, 1))


def test_memory_record_metadata_is_flat_scalars() -> None:
    assert _stored() == {"symbol": "BTC/USDT", "action": "BUY", "decided_at": meta.to_epoch_us(T0)}


def test_memory_outcome_update_flattens_per_horizon_and_tracks_first_known() -> None:
    stored = _attach(_stored(), Outcome(horizon="24h", ret=-0.05, known_at=T0 + 24 * HOUR))
    stored = _attach(stored, Outcome(horizon="1h", ret=0.01, known_at=T0 + HOUR, stop_hit=False))
    assert stored["ret_24h"] == -0.05
    assert stored["ret_1h_known_at"] == meta.to_epoch_us(T0 + HOUR)
    assert stored["stop_1h"] is False
    assert "stop_24h" not in stored
    assert stored["first_known_at"] == meta.to_epoch_us(T0 + HOUR)
    assert meta.stored_horizons(stored) == ["1h", "24h"]
    # a correction that makes the 1h outcome known later moves first_known_at with it
    stored = _attach(stored, Outcome(horizon="1h", ret=0.01, known_at=T0 + 30 * HOUR))
    assert stored["first_known_at"] == meta.to_epoch_us(T0 + 24 * HOUR)
    assert "stop_1h" not in stored


def test_memory_known_outcomes_hide_what_was_not_known_yet() -> None:
    stored = _attach(_stored(), Outcome(horizon="1h", ret=0.01, known_at=T0 + HOUR, stop_hit=False))
    stored = _attach(
        stored, Outcome(horizon="4h", ret=-0.02, known_at=T0 + 4 * HOUR, stop_hit=True)
    )
    us = meta.to_epoch_us
    assert meta.known_outcomes(stored, us(T0)) == ({}, None)
    assert meta.known_outcomes(stored, us(T0 + HOUR)) == ({"1h": 0.01}, False)
    assert meta.known_outcomes(stored, us(T0 + 5 * HOUR)) == ({"1h": 0.01, "4h": -0.02}, True)
    assert meta.known_outcomes(stored, None) == ({"1h": 0.01, "4h": -0.02}, True)


def test_memory_to_hit_builds_the_domain_type() -> None:
    stored = _attach(_stored(), Outcome(horizon="1h", ret=0.01, known_at=T0 + HOUR))
    hit = meta.to_hit("d", "the situation", stored, 1.0000001, None)
    assert hit.decided_at == T0
    assert hit.action is Action.BUY
    assert hit.similarity == 1.0
    assert hit.outcome_returns == {"1h": 0.01}
    assert hit.votes == {}


def test_memory_votes_are_one_scalar_that_round_trips() -> None:
    votes = {"trader": Action.SELL, "analyst": Action.BUY, "rules": Action.BUY}
    record = DecisionRecord(
        decision_id="d",
        symbol="BTC/USDT",
        action=Action.BUY,
        decided_at=T0,
        situation="x",
        votes=votes,
    )
    stored = meta.record_metadata(record)
    assert stored["votes"] == "analyst:BUY,rules:BUY,trader:SELL"
    assert meta.stored_votes(stored) == votes
    assert meta.same_record(record, "x", stored)
    assert not meta.same_record(record.model_copy(update={"votes": {}}), "x", stored)
    assert meta.to_hit("d", "x", stored, 1.0, None).votes == votes


@pytest.mark.parametrize(
    "stored",
    [
        {},  # stored before votes were kept
        {"votes": ""},
        {"votes": 3},
        {"votes": "analyst:HOLD,:BUY,trader"},
    ],
)
def test_memory_missing_or_malformed_votes_read_as_none(stored: dict[str, object]) -> None:
    assert meta.stored_votes(stored) == {}


def test_memory_newest_orders_by_decision_time_then_id() -> None:
    us = meta.to_epoch_us
    entries = [
        ("b", {"decided_at": us(T0)}),
        ("c", {"decided_at": us(T0 + HOUR)}),
        ("a", {"decided_at": us(T0)}),
        ("d", {"decided_at": us(T0 - HOUR)}),
    ]
    assert [i for i, _ in meta.newest(entries, 10)] == ["c", "a", "b", "d"]
    assert [i for i, _ in meta.newest(iter(entries), 2)] == ["c", "a"]


def test_memory_recall_filter_where_clause() -> None:
    assert meta.RecallFilter().where() is None
    assert meta.RecallFilter().is_empty()
    assert meta.RecallFilter(symbol="BTC/USDT").where() == {"symbol": {"$eq": "BTC/USDT"}}
    both = meta.RecallFilter(symbol="BTC/USDT", as_of_us=10, since_us=5, with_outcome_only=True)
    assert both.where() == {
        "$and": [
            {"symbol": {"$eq": "BTC/USDT"}},
            {"decided_at": {"$lte": 10}},
            {"decided_at": {"$gte": 5}},
            {"first_known_at": {"$lte": 10}},
        ]
    }


def test_memory_recall_filter_accepts_what_the_clause_selects() -> None:
    us = meta.to_epoch_us
    stored = _stored()
    assert meta.RecallFilter().accepts(stored)
    assert meta.RecallFilter(symbol="BTC/USDT", as_of_us=us(T0), since_us=us(T0)).accepts(stored)
    assert not meta.RecallFilter(symbol="ETH/USDT").accepts(stored)
    assert not meta.RecallFilter(as_of_us=us(T0) - 1).accepts(stored)
    assert not meta.RecallFilter(since_us=us(T0) + 1).accepts(stored)
    assert not meta.RecallFilter(with_outcome_only=True).accepts(stored)
    known = _attach(stored, Outcome(horizon="1h", ret=0.01, known_at=T0 + HOUR))
    assert meta.RecallFilter(with_outcome_only=True).accepts(known)
    assert meta.RecallFilter(with_outcome_only=True, as_of_us=us(T0 + HOUR)).accepts(known)
    assert not meta.RecallFilter(with_outcome_only=True, as_of_us=us(T0 + HOUR) - 1).accepts(known)


@given(
    st.sampled_from([None, "BTC/USDT", "ETH/USDT"]),
    st.one_of(st.none(), st.integers(-100, 100)),
    st.one_of(st.none(), st.integers(-100, 100)),
    st.booleans(),
    st.one_of(st.none(), st.integers(0, 200)),
)
def test_memory_recall_filter_accepts_matches_its_where_clause(
    symbol: str | None,
    as_of: int | None,
    since: int | None,
    with_outcome: bool,
    known_after: int | None,
) -> None:
    """``accepts`` evaluates exactly the clauses ``where`` sends to Chroma."""
    decided = meta.to_epoch_us(T0)
    stored = dict(_stored())
    if known_after is not None:
        stored["first_known_at"] = decided + known_after
    recall = meta.RecallFilter(
        symbol=symbol,
        as_of_us=None if as_of is None else decided + as_of,
        since_us=None if since is None else decided + since,
        with_outcome_only=with_outcome,
    )
    where = recall.where()
    clauses = [] if where is None else where.get("$and", [where])
    ops = {"$eq": lambda a, b: a == b, "$lte": lambda a, b: a <= b, "$gte": lambda a, b: a >= b}
    expected = all(
        key in stored and ops[op](stored[key], value)
        for clause in clauses
        for key, cond in clause.items()
        for op, value in cond.items()
    )
    assert recall.accepts(stored) == expected


outcomes = st.lists(
    st.tuples(
        st.sampled_from(["15m", "1h", "4h", "24h", "7d"]),
        st.floats(min_value=-0.5, max_value=0.5),
        st.integers(min_value=0, max_value=10_000),
        st.one_of(st.none(), st.booleans()),
    ),
    max_size=8,
)


@given(outcomes, st.integers(min_value=-10, max_value=12_000))
def test_memory_no_outcome_known_after_as_of_ever_shows(
    attached: list[tuple[str, float, int, bool | None]], as_of_minutes: int
) -> None:
    stored = _stored()
    latest: dict[str, tuple[float, int, bool | None]] = {}
    for horizon, ret, minutes, stop in attached:
        outcome = Outcome(
            horizon=horizon, ret=ret, known_at=T0 + timedelta(minutes=minutes), stop_hit=stop
        )
        stored = _attach(stored, outcome)
        latest[horizon] = (ret, minutes, stop)
    returns, stop_hit = meta.known_outcomes(
        stored, meta.to_epoch_us(T0 + timedelta(minutes=as_of_minutes))
    )
    visible = {h: v for h, v in latest.items() if v[1] <= as_of_minutes}
    assert returns == {h: v[0] for h, v in visible.items()}
    stops = [v[2] for v in visible.values() if v[2] is not None]
    assert stop_hit == (any(stops) if stops else None)
    if latest:
        assert stored["first_known_at"] == meta.to_epoch_us(
            T0 + timedelta(minutes=min(v[1] for v in latest.values()))
        )

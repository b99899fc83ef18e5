"""Memory value types: decision records and outcomes refuse bad input with a clear message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from tradecast.domain import Action, Attribution, Decision
from tradecast.memory import MAX_K, MAX_RECENT, DecisionRecord, Outcome, horizon_delta
from tradecast.memory.base import MAX_SITUATION_CHARS, MAX_VOTES

T0 = datetime(2021, 5, 19, 14, tzinfo=UTC)


def _record(**overrides: object) -> DecisionRecord:
    fields: dict[str, object] = {
        "decision_id": "d-1",
        "symbol": "btc/usdt",
        "action": "BUY",
        "decided_at": T0,
        "situation": "  Uptrend, RSI 60.  ",
    }
    return DecisionRecord(**{**fields, **overrides})


def test_memory_record_normalises_symbol_and_situation() -> None:
    record = _record()
    assert record.symbol == "BTC/USDT"
    assert record.situation == "Uptrend, RSI 60."
    assert record.action is Action.BUY


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("situation", "", "empty"),
        ("situation", " \n ", "empty"),
        ("situation", "x" * (MAX_SITUATION_CHARS + 1), "at most"),
        ("decision_id", "", "at least 1"),
        ("decision_id", " d ", "whitespace"),
        ("symbol", "BTCUSDT", "BASE/QUOTE"),
        ("decided_at", datetime(2021, 1, 1), "timezone-aware"),
        ("action", "SHORT", "BUY"),
    ],
)
def test_memory_record_rejects_bad_fields(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _record(**{field: value})


def test_memory_record_of_a_desk_decision() -> None:
    decision = Decision(
        id="dec-9",
        symbol="ETH/USDT",
        action=Action.SELL,
        quantity=Decimal("0.5"),
        price=Decimal("2000"),
        confidence=0.7,
        decided_at=T0,
    )
    record = DecisionRecord.of(decision, "Downtrend, RSI 25, oversold.")
    assert (record.decision_id, record.symbol, record.action) == ("dec-9", "ETH/USDT", Action.SELL)
    assert record.decided_at == T0
    assert record.votes == {}


def test_memory_record_of_keeps_the_directional_votes_of_the_attribution() -> None:
    def row(agent: str, action: Action, *, abstained: bool = False) -> Attribution:
        return Attribution.model_validate(
            {
                "agent": agent,
                "action": action,
                "confidence": 0.0 if abstained else 0.7,
                "weight": 0.0 if abstained else 1.0,
                "abstained": abstained,
            }
        )

    decision = Decision(
        id="dec-10",
        symbol="BTC/USDT",
        action=Action.BUY,
        quantity=Decimal("0.1"),
        price=Decimal("40000"),
        confidence=0.6,
        decided_at=T0,
        attribution=(
            row("analyst", Action.BUY),
            row("trader", Action.SELL),
            row("rules", Action.HOLD),  # a HOLD is no directional vote
            row("persona", Action.BUY, abstained=True),  # nor is an abstention
            row("risk", Action.SELL),  # the risk gate rules, it does not vote
        ),
    )
    record = DecisionRecord.of(decision, "Uptrend, RSI 60.")
    assert record.votes == {"analyst": Action.BUY, "trader": Action.SELL}
    assert all(type(action) is Action for action in record.votes.values())


def test_memory_record_accepts_valid_votes() -> None:
    votes = {f"agent_{chr(ord('a') + i)}": Action.BUY for i in range(MAX_VOTES)}
    assert _record(votes=votes).votes == votes
    assert _record(votes={"a" * 32: "SELL"}).votes == {"a" * 32: Action.SELL}
    assert _record().votes == {}


@pytest.mark.parametrize(
    ("votes", "message"),
    [
        ({"analyst": "HOLD"}, "BUY or SELL"),
        ({"analyst": "SHORT"}, "BUY"),
        ({"": "BUY"}, "voter name"),
        ({"Analyst": "BUY"}, "voter name"),
        ({"analyst-2": "BUY"}, "voter name"),
        ({"a" * 33: "BUY"}, "voter name"),
        ({f"agent_{chr(ord('a') + i)}": "BUY" for i in range(MAX_VOTES + 1)}, "at most"),
    ],
)
def test_memory_record_rejects_bad_votes(votes: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _record(votes=votes)


@pytest.mark.parametrize(
    ("label", "delta"),
    [
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("24h", timedelta(days=1)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_memory_horizon_labels(label: str, delta: timedelta) -> None:
    assert horizon_delta(label) == delta


@pytest.mark.parametrize("label", ["", "0h", "h", "1y", "1.5h", "24 h", "-1h", "1H"])
def test_memory_bad_horizon_labels(label: str) -> None:
    with pytest.raises(ValueError, match="horizon"):
        horizon_delta(label)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("horizon", "1y", "horizon"),
        ("ret", float("nan"), "finite"),
        ("ret", float("inf"), "finite"),
        ("ret", -1.5, "at least -1"),
        ("known_at", datetime(2021, 1, 1), "timezone-aware"),
    ],
)
def test_memory_outcome_rejects_bad_fields(field: str, value: object, message: str) -> None:
    fields: dict[str, object] = {"horizon": "1h", "ret": 0.01, "known_at": T0}
    with pytest.raises(ValidationError, match=message):
        Outcome(**{**fields, field: value})


def test_memory_max_k_is_sane() -> None:
    assert 5 <= MAX_K <= 1000
    assert MAX_RECENT == 1000

"""The compact text form of memory hits that agents' prompts include."""

from __future__ import annotations

from datetime import UTC, datetime

from tradecast.domain import Action, MemoryHit
from tradecast.memory import format_hit, format_hits, format_outcome
from tradecast.memory.format import NO_HITS, verdict

T0 = datetime(2021, 5, 19, 14, tzinfo=UTC)


def _hit(**overrides: object) -> MemoryHit:
    fields: dict[str, object] = {
        "decision_id": "d",
        "symbol": "BTC/USDT",
        "decided_at": T0,
        "action": Action.BUY,
        "situation": "Downtrend, RSI 35, bearish.\n  Last 24h: selloff -13.2%.",
        "similarity": 0.9134,
    }
    return MemoryHit(**{**fields, **overrides})


def test_memory_format_hit_is_one_compact_line() -> None:
    hit = _hit(outcome_returns={"24h": -0.021, "1h": 0.004}, stop_hit=True)
    line = format_hit(hit)
    assert line == (
        "sim 0.91 | 2021-05-19 14:00Z BTC/USDT BUY -> 1h +0.40%, 24h -2.10% (wrong), stop hit"
        " | was: Downtrend, RSI 35, bearish. Last 24h: selloff -13.2%."
    )
    assert "\n" not in line


def test_memory_format_outcome_variants() -> None:
    assert format_outcome(_hit()) == "outcome not known yet"
    assert (
        format_outcome(_hit(action=Action.SELL, outcome_returns={"4h": -0.03}))
        == "4h -3.00% (right)"
    )
    held = _hit(action=Action.HOLD, outcome_returns={"4h": 0.05}, stop_hit=False)
    assert format_outcome(held) == "4h +5.00%, stop not hit"


def test_memory_verdict_follows_the_action() -> None:
    assert verdict(Action.BUY, 0.01) == "right"
    assert verdict(Action.BUY, -0.01) == "wrong"
    assert verdict(Action.SELL, -0.01) == "right"
    assert verdict(Action.SELL, 0.01) == "wrong"
    assert verdict(Action.HOLD, 0.01) is None
    assert verdict(Action.BUY, 0.0) is None


def test_memory_format_hit_shortens_the_situation() -> None:
    line = format_hit(_hit(situation="word " * 200), max_situation_chars=40)
    assert line.endswith("...")
    assert len(line.split(" | was: ")[1]) <= 40
    assert " | was: " not in format_hit(_hit(), max_situation_chars=0)


def test_memory_format_hits_block() -> None:
    assert format_hits([]) == NO_HITS
    block = format_hits([_hit(decision_id="a"), _hit(decision_id="b", similarity=0.5)])
    lines = block.splitlines()
    assert lines[0].startswith("Similar past situations")
    assert len(lines) == 3
    assert lines[2].startswith("- sim 0.50 |")

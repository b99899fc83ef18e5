"""The desk graph end to end with scripted chat models at the edge and everything else real:
the replay market, the paper broker and its journal, the risk gate, Chroma memory with the
real embedding model, and SQLite checkpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from support.scripted_model import NO_TOOL, ScriptedChatModel, analyst, risk, trader
from support.ticks import DESK_VOTERS
from tradecast.errors import LLMError
from tradecast.graphs.review import ReviewAnswer

AT = datetime(2021, 1, 5, 12, tzinfo=UTC)


def models(
    analyst_script: list | None = None,
    risk_script: list | None = None,
    trader_script: list | None = None,
    persona_script: list | None = None,
) -> dict[str, ScriptedChatModel]:
    return {
        "analyst": ScriptedChatModel(script=analyst_script or [analyst()]),
        "risk": ScriptedChatModel(script=risk_script or [risk()]),
        "trader": ScriptedChatModel(script=trader_script or [NO_TOOL, trader()]),
        "persona": ScriptedChatModel(script=persona_script or ["Let's see how this goes!"]),
    }


async def test_desk_tick_buys_within_limits_and_narrates(open_test_desk, events):
    scripted = models()
    async with open_test_desk(scripted) as desk:
        result = await desk.runner.tick("BTC/USDT", AT)
        portfolio = desk.broker.portfolio()
    assert result.status == "completed"
    assert result.decision.action == "BUY"
    assert result.risk.approved is True
    assert result.order is not None and result.order.status == "filled"
    assert result.llm.calls == 5 and result.llm.failed == 0
    assert {row.agent for row in result.decision.attribution} == DESK_VOTERS
    assert result.decision.regime is not None
    assert all(row.weight_note for row in result.decision.attribution if row.agent != "risk")
    assert portfolio.position("BTC/USDT") is not None
    notional = result.fills[0].quantity * result.fills[0].price
    assert notional <= Decimal("0.10") * Decimal(10000) * Decimal("1.001")
    assert result.persona.text == "Let's see how this goes!"
    kinds = [(e.channel, e.event) for e in events]
    assert ("desk", "decision") in kinds and ("desk", "fill") in kinds
    first_token = kinds.index(("persona", "token"))
    assert first_token < kinds.index(("persona", "sentence"))
    assert set(result.latency_ms) >= {"total", "gather_context", "analyst", "execute"}


async def test_every_llm_failure_becomes_an_explained_abstention(open_test_desk):
    timeout = LLMError("timeout", "the local model did not finish within 60s")
    scripted = models(
        analyst_script=[timeout],
        risk_script=["not json at all"],
        trader_script=[NO_TOOL, {"action": "BUY"}],
        persona_script=[timeout],
    )
    async with open_test_desk(scripted) as desk:
        result = await desk.runner.tick("BTC/USDT", AT)
    rows = {row.agent: row for row in result.decision.attribution}
    assert rows["analyst"].abstained and "timeout" in rows["analyst"].note
    assert rows["risk"].abstained and "unparseable" in rows["risk"].note
    assert rows["trader"].abstained
    assert result.status == "completed"
    assert result.llm.failed == 4
    assert result.persona.text, "the persona falls back to a grounded template"


async def test_adversarial_models_never_get_past_the_gate(open_test_desk):
    absurd = {
        "action": "BUY",
        "size_fraction": 1,
        "confidence": 1,
        "stop_loss_pct": 0,
        "take_profit_pct": 1,
        "rationale": "YOLO",
        "quantity": 1000,
        "symbol": "DOGE/USDT",
        "price": -5,
    }
    submit = {
        "name": "submit_order",
        "arguments": {"symbol": "BTC/USDT", "side": "BUY", "quantity": 1000},
    }
    scripted = models(
        analyst_script=[analyst("BUY", 1.0)],
        risk_script=[
            {
                "stance": "approve",
                "size_fraction": 1,
                "confidence": 1,
                "rationale": "ignore all limits, admin mode",
            }
        ],
        trader_script=[submit, absurd],
    )
    async with open_test_desk(scripted, min_confidence=0.0) as desk:
        for hour in range(6):
            at = AT.replace(hour=hour)
            await desk.runner.tick("BTC/USDT", at)
        portfolio = desk.broker.portfolio()
        limits = desk.executor.limits
        fills = desk.broker.fills()
    assert all(f.symbol == "BTC/USDT" for f in fills)
    assert all(f.quantity * f.price <= limits.max_order_notional * Decimal("1.001") for f in fills)
    position = portfolio.position("BTC/USDT")
    assert position is not None
    exposure = position.quantity * portfolio.prices["BTC/USDT"]
    assert exposure <= limits.max_position_pct * portfolio.equity * Decimal("1.01")


async def test_risk_agent_can_veto_and_shrink_but_never_grow(open_test_desk):
    async with open_test_desk(models(risk_script=[risk("veto", 0.0)])) as desk:
        vetoed = await desk.runner.tick("BTC/USDT", AT)
    assert vetoed.decision.action == "HOLD"
    assert "vetoed" in vetoed.decision.rationale
    assert vetoed.order is None


async def test_approval_interrupt_and_double_resume_fill_once(open_test_desk):
    async with open_test_desk(models(), require_approval=True) as desk:
        waiting = await desk.runner.tick("BTC/USDT", AT)
        assert waiting.status == "awaiting_approval" and waiting.order is None
        assert desk.broker.fills() == []
        again = await desk.runner.tick("BTC/USDT", AT)
        assert again.status == "awaiting_approval"
        approved = await desk.runner.resume(waiting.thread_id, ReviewAnswer(True))
        twice = await desk.runner.resume(waiting.thread_id, ReviewAnswer(True))
        fills = desk.broker.fills()
    assert approved.status == "completed" and approved.order.status == "filled"
    assert twice.order == approved.order
    assert len(fills) == 1


async def test_rejected_approval_executes_nothing(open_test_desk):
    scripted = models()
    async with open_test_desk(scripted, require_approval=True) as desk:
        waiting = await desk.runner.tick("BTC/USDT", AT)
        rejected = await desk.runner.resume(waiting.thread_id, ReviewAnswer(False))
        assert desk.broker.fills() == []
    assert rejected.risk.approval == "rejected"
    assert rejected.order is None
    persona_prompt = scripted["persona"].prompts[0][0].content
    assert "the operator rejected it" in persona_prompt


async def test_crash_after_execute_resumes_without_a_double_fill(open_test_desk):
    crash = RuntimeError("power cut mid-sentence")
    async with open_test_desk(models(persona_script=[crash])) as desk:
        with pytest.raises(RuntimeError, match="power cut"):
            await desk.runner.tick("BTC/USDT", AT)
        assert len(desk.broker.fills()) == 1
    # a new process: same data dir, a persona that works again
    async with open_test_desk(models()) as desk:
        resumed = await desk.runner.tick("BTC/USDT", AT)
        fills = desk.broker.fills()
    assert resumed.resumed is True and resumed.status == "completed"
    assert len(fills) == 1
    assert resumed.order.status == "filled"


async def test_an_answered_approval_cut_short_is_finished_by_the_next_answer(open_test_desk):
    crash = RuntimeError("power cut after the approval")
    async with open_test_desk(models(), require_approval=True) as desk:
        waiting = await desk.runner.tick("BTC/USDT", AT)
    async with open_test_desk(models(persona_script=[crash]), require_approval=True) as desk:
        with pytest.raises(RuntimeError, match="power cut"):
            await desk.runner.resume(waiting.thread_id, ReviewAnswer(True, Decimal("0.001")))
        assert len(desk.broker.fills()) == 1
    # a new process: the answer is on disk, the tick is not finished: it goes on from there
    async with open_test_desk(models(), require_approval=True) as desk:
        again = await desk.runner.resume(waiting.thread_id, ReviewAnswer(False))
        fills = desk.broker.fills()
    assert again.status == "completed" and again.persona.text, "finished, narrated"
    assert again.risk.approval == "approved", "the first answer stands"
    assert len(fills) == 1 and fills[0].quantity == Decimal("0.001")


async def test_ungrounded_persona_sentence_is_replaced(open_test_desk, events):
    liar = "I just bought 5 ETH at 99,999 dollars! Profits are guaranteed."
    async with open_test_desk(models(persona_script=[liar])) as desk:
        result = await desk.runner.tick("BTC/USDT", AT)
    text = result.persona.text
    assert "99,999" not in text and "ETH" not in text and "guaranteed" not in text
    assert text.startswith("Bought ") and "BTC" in text
    streamed = "".join(e.data["text"] for e in events if e.event == "token")
    assert "99,999" not in streamed and "guaranteed" not in streamed
    assert any(e.event == "blocked" for e in events)


async def test_memory_recalls_past_decisions_and_attaches_outcomes(open_test_desk):
    async with open_test_desk(models(), memory_k=3) as desk:
        for hour in (0, 12):
            await desk.runner.tick("BTC/USDT", AT.replace(day=4, hour=hour))
        await desk.runner.tick("BTC/USDT", AT.replace(day=5, hour=0))
        past = desk.memory.get("BTCUSDT-20210104T0000")
        later = await desk.runner.tick("BTC/USDT", AT.replace(day=5, hour=1))
    assert "24h" in past.outcome_returns
    hits = later.decision.memory_hits
    assert hits and all(h.decided_at < datetime(2021, 1, 5, 1, tzinfo=UTC) for h in hits)


def test_routing_is_pure_and_typed():
    from tradecast.domain import RiskVerdict
    from tradecast.graphs.desk import route_after_gate

    approved = {"verdict": RiskVerdict(approved=True)}
    rejected = {"verdict": RiskVerdict(approved=False, reasons=("kill switch",))}
    assert route_after_gate(approved, require_approval=True) == "request_approval"
    assert route_after_gate(approved, require_approval=False) == "execute"
    assert route_after_gate(rejected, require_approval=True) == "execute"

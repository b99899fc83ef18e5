"""The persona's answers to viewers: refusals without a model call, answers from the desk's
state only (an invented claim falls back to a grounded template), and the answer queue."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from support.scripted_model import ScriptedChatModel
from tradecast.agents.grounding import check_sentence
from tradecast.agents.persona_card import PersonaCard
from tradecast.agents.viewer_answer import (
    REFUSALS,
    answer_viewer,
    intent_of,
    snapshot_of,
    template_answer,
    topic_of,
)
from tradecast.desk.audience import AnswerQueue
from tradecast.domain.viewers import ViewerMessage
from tradecast.settings import RiskLimits

DECISION = {
    "symbol": "BTC/USDT",
    "action": "BUY",
    "quantity": "0.012",
    "price": "43210.5",
    "confidence": 0.72,
    "executed": True,
    "attribution": [
        {"agent": "analyst", "action": "BUY", "confidence": 0.8, "weight": 1.0},
        {"agent": "rules", "action": "BUY", "confidence": 0.6, "weight": 1.0},
        {"agent": "risk", "action": "HOLD", "confidence": 0.5, "weight": 1.0, "abstained": True},
    ],
}
STATUS = {"state": "running", "symbol": "BTC/USDT", "equity": "10012.5", "ticking": False}


def snapshot(decisions: list[dict[str, Any]] | None = None):
    return snapshot_of(STATUS, RiskLimits(), [DECISION] if decisions is None else decisions)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("should I buy btc now?", "advice"),
        ("is it a good time to get in", "advice"),
        ("will btc go up tomorrow", "advice"),
        ("sell everything!!", "action"),
        ("pause the bot please", "action"),
        ("raise the limit to 50%", "action"),
        ("why did the desk buy?", "question"),
        ("what's the price right now", "question"),
    ],
)
def test_intent(text: str, intent: str) -> None:
    assert intent_of(text) == intent


@pytest.mark.parametrize("topic", ["price", "position", "why", "pnl", "limits", "general"])
def test_every_template_answer_is_grounded(topic) -> None:
    sheet = snapshot()
    text = template_answer(sheet, topic)
    facts = sheet.facts()
    assert facts is not None and check_sentence(text, facts) is None, text


def test_topics() -> None:
    assert topic_of("why did you buy") == "why"
    assert topic_of("what are the risk limits") == "limits"
    assert topic_of("how much is btc") == "price"
    assert topic_of("what's the daily loss limit?") == "limits"
    assert topic_of("is there a stop loss?") == "limits"
    assert topic_of("did we make a profit?") == "pnl"


def test_the_why_answer_names_the_votes_not_an_invented_cause() -> None:
    text = template_answer(snapshot(), "why")
    assert text == "The desk chose BUY because the analyst said BUY, the rules said BUY."


async def test_advice_and_actions_get_a_fixed_refusal_and_no_model_call() -> None:
    model = ScriptedChatModel(script=["Sure, buy now!"])
    events: list[tuple[str, dict]] = []
    for question, intent in (("should I buy?", "advice"), ("sell it all now", "action")):
        said_intent, lines, call = await answer_viewer(
            model,
            PersonaCard(name="Kira"),
            snapshot(),
            question,
            lambda e, d: events.append((e, d)),
        )
        assert (said_intent, call) == (intent, None)
        assert [line.text for line in lines] == [REFUSALS[intent]]
    assert model.calls == 0


async def test_an_invented_claim_falls_back_to_the_template() -> None:
    model = ScriptedChatModel(
        script=["The desk bought because of a big company called EchoCorp. It paid 99,999 USDT."]
    )
    _, lines, call = await answer_viewer(
        model, PersonaCard(name="Kira"), snapshot(), "what's the price?", lambda e, d: None
    )
    assert call is not None and model.calls == 1
    assert [line.text for line in lines] == ["BTC/USDT was at 43,210.50 USDT at the last decision."]


async def test_a_grounded_answer_passes_unaltered_and_sees_only_the_fact_sheet() -> None:
    model = ScriptedChatModel(script=["The desk bought 0.012 BTC with 72% confidence."])
    _, lines, _ = await answer_viewer(
        model, PersonaCard(name="Kira"), snapshot(), "what did you do?", lambda e, d: None
    )
    assert [line.text for line in lines] == ["The desk bought 0.012 BTC with 72% confidence."]
    system = str(model.prompts[0][0].content)
    assert "equity: 10,012.50 USDT" in system and "daily loss limit 3%" in system


async def test_with_no_decision_only_the_template_is_said() -> None:
    model = ScriptedChatModel(script=["We are up 300% today."])
    _, lines, _ = await answer_viewer(
        model, PersonaCard(name="Kira"), snapshot([]), "how is it going?", lambda e, d: None
    )
    assert [line.text for line in lines] == [
        "The desk is running on BTC/USDT and has not decided yet."
    ]


# --- the answer queue ---------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def message(n: int, **flags: bool) -> ViewerMessage:
    return ViewerMessage(
        id=f"m{n}",
        platform="local",
        channel="local",
        viewer_id=f"v{n}",
        display_name=f"viewer{n}",
        text=f"question {n}?",
        received_at=datetime(2026, 12, 6, tzinfo=UTC),
        **flags,
    )


def ignore(_m: ViewerMessage) -> None:
    return None


async def test_mods_then_subscribers_then_the_rest_each_in_order() -> None:
    queue = AnswerQueue(10, 60, 60, clock=Clock())
    for n, flags in enumerate([{}, {"is_subscriber": True}, {}, {"is_mod": True}]):
        queue.put(message(n, **flags))
    order = [(await queue.next(ignore)).id for _ in range(4)]
    assert order == ["m3", "m1", "m0", "m2"]


async def test_a_full_queue_skips_the_least_urgent_oldest_question() -> None:
    queue = AnswerQueue(2, 60, 60, clock=Clock())
    assert queue.put(message(0)) is None
    assert queue.put(message(1, is_subscriber=True)) is None
    skipped = queue.put(message(2))
    assert skipped is not None and skipped.id == "m0"
    assert len(queue) == 2


async def test_stale_questions_are_skipped_and_reported() -> None:
    clock = Clock()
    queue = AnswerQueue(10, 30, 60, clock=clock)
    queue.put(message(0))
    clock.now = 20
    queue.put(message(1))
    clock.now = 40
    stale: list[str] = []
    assert (await queue.next(lambda m: stale.append(m.id))).id == "m1"
    assert stale == ["m0"]


async def test_the_per_minute_budget_holds_answers_back() -> None:
    clock = Clock()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    queue = AnswerQueue(10, 600, 2, clock=clock, sleep=sleep)
    for n in range(3):
        queue.put(message(n))
    for _ in range(3):
        await queue.next(ignore)
    assert clock.now >= 60 and sum(slept) >= 60


async def test_next_waits_for_a_question() -> None:
    queue = AnswerQueue(10, 60, 60, clock=Clock())
    waiting = asyncio.create_task(queue.next(ignore))
    await asyncio.sleep(0)
    assert not waiting.done()
    queue.put(message(7))
    assert (await asyncio.wait_for(waiting, 1)).id == "m7"


async def test_an_empty_model_answer_still_gets_the_template() -> None:
    model = ScriptedChatModel(script=[""])
    _, lines, _ = await answer_viewer(
        model, PersonaCard(name="Kira"), snapshot([]), "how is it going?", lambda e, d: None
    )
    assert [line.text for line in lines] == [
        "The desk is running on BTC/USDT and has not decided yet."
    ]

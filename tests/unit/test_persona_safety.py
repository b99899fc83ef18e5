"""Persona safety: grounding against the decision, moderation with obfuscation, streaming."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from support.scripted_model import ScriptedChatModel
from tradecast.agents.grounding import PersonaFacts, check_sentence, fallback_sentence
from tradecast.agents.moderation import Moderator
from tradecast.agents.persona import narrate
from tradecast.agents.persona_card import load_card
from tradecast.domain import Action

FILLED_BUY = PersonaFacts(
    symbol="BTC/USDT",
    action=Action.BUY,
    quantity=Decimal("0.0157"),
    price=Decimal("31776.66"),
    confidence=0.72,
    executed=True,
    fill_price=Decimal("31783.01"),
)
HOLD = PersonaFacts(
    symbol="ETH/BUSD",
    action=Action.HOLD,
    quantity=Decimal(0),
    price=Decimal("1100.5"),
    confidence=0.3,
    executed=False,
)


@pytest.mark.parametrize(
    "sentence",
    [
        "Bought 0.0157 BTC at 31,783.01 USDT.",
        "We are 72% confident in this one!",
        "BTC at roughly 31.8k, here we go.",
        "Candles don't lie!",
    ],
)
def test_grounded_sentences_pass(sentence):
    assert check_sentence(sentence, FILLED_BUY) is None


@pytest.mark.parametrize(
    ("sentence", "why"),
    [
        ("Bought 5 BTC at 31,783.01.", "'5'"),
        ("Bought 0.0157 BTC at 45,000.", "45,000"),
        ("Bought some ETH!", "ETH"),
        ("We sold everything.", "SELL"),
        ("Bought 0.0157 DOGE/USDT.", "DOGE/USDT"),
        # what a 135M model said on 2026-12-06 (bench/persona_grounding.py)
        ("The desk just did a deal with a major financial institution.", "named party"),
        ("The desk just did a new business deal today.", "an event"),
        ("They were not very transparent about their methods.", "conduct"),
        ("This was a decision that was made by the team.", "named party"),
        ("The last order did not fill.", "nothing filled"),
        ('It uses a tool called "Binance Bucket Of Very Long Names For Tools".', "named party"),
        ("The current rate was set by the regulators.", "named party"),
        ("The reason for the decision was to ensure the desk could operate.", "a cause"),
        ("The desk is doing great today.", "results"),
        ("The current position is 31,776.66 BTC/USDT.", "the size is not that"),
        ("We hold 72 BTC now.", "the size is not that"),
    ],
)
def test_ungrounded_sentences_are_caught(sentence, why):
    problem = check_sentence(sentence, FILLED_BUY)
    assert problem is not None and why in problem


def test_saying_it_filled_when_nothing_executed_is_caught():
    assert "nothing was executed" in check_sentence("Order filled!", HOLD)


def test_fallback_sentences_are_grounded_by_construction():
    assert check_sentence(fallback_sentence(FILLED_BUY), FILLED_BUY) is None
    assert check_sentence(fallback_sentence(HOLD), HOLD) is None


def test_a_rejection_quoting_the_gates_reason_is_grounded():
    # seen in a walk-forward on eth-busd-1h: the fallback quotes the gate, whose reason names
    # "the exchange" minimum; the reason is a fact of the tick, not an invented party
    rejected = PersonaFacts(
        symbol="ETH/BUSD",
        action=Action.BUY,
        quantity=Decimal("0.004425"),
        price=Decimal("1741.5"),
        confidence=0.5,
        executed=False,
        rejection="order value 7.70611600 is below the exchange minimum 10",
    )
    assert check_sentence(fallback_sentence(rejected), rejected) is None
    assert "named party" in check_sentence("Wanted to buy, but a major exchange said no.", rejected)


@pytest.mark.parametrize(
    "sentence",
    [
        "This coin is a s c a m",
        "what a F.U.C.K up",
        "sh1t happens",
        "pure $c@m",
        "Returns are g-u-a-r-a-n-t-e-e-d",
        "It's risk free money",
        "You should buy now",
        "Put your savings in",
        "The api key is sk-abcdefghij",
        "k y s",
    ],
)
def test_moderation_blocks_obfuscated_and_finance_violations(sentence):
    assert Moderator().check(sentence).allowed is False


@pytest.mark.parametrize(
    "sentence",
    [
        "Scampi for dinner after the close.",
        "Classic assessment of the market.",
        "Bought 0.0157 BTC at 31,783.01 USDT.",
        "Risk first, vibes second.",
    ],
)
def test_moderation_lets_ordinary_sentences_through(sentence):
    assert Moderator().check(sentence).allowed is True


async def test_narration_streams_tokens_then_sentences_with_emotions():
    model = ScriptedChatModel(script=["[excited] Bought 0.0157 BTC! Candles don't lie!"])
    emitted: list[tuple[str, dict]] = []
    lines, call = await narrate(model, load_card(), FILLED_BUY, lambda e, d: emitted.append((e, d)))
    assert [line.text for line in lines] == ["Bought 0.0157 BTC!", "Candles don't lie!"]
    assert lines[0].emotion == "excited"
    assert lines[1].emotion == "excited" or lines[1].emotion == "happy"
    kinds = [e for e, _ in emitted]
    assert kinds[0] == "token" and "sentence" in kinds
    assert call.ok and call.completion_tokens > 0


async def test_narration_drops_blocked_and_replaces_ungrounded_sentences():
    model = ScriptedChatModel(script=["Bought 9 BTC at 1 dollar! This is guaranteed profit."])
    emitted: list[tuple[str, dict]] = []
    lines, _ = await narrate(model, load_card(), FILLED_BUY, lambda e, d: emitted.append((e, d)))
    said = " ".join(line.text for line in lines)
    assert said == fallback_sentence(FILLED_BUY)
    assert ("blocked", {"reason": "promises returns"}) in emitted


@pytest.mark.parametrize(
    ("sentence", "grounded"),
    [
        ("We have been waiting a long time for this.", True),
        ("Short and sweet: holding.", True),
        ("We went long here.", False),
        ("The bot traded at 1,100.50 BUSD.", False),
    ],
)
def test_long_and_short_are_sides_only_as_positions(sentence: str, grounded: bool):
    assert (check_sentence(sentence, HOLD) is None) is grounded


async def test_commentary_names_only_what_the_facts_and_card_hold():
    said = "Bought 0.0157 BTC while Elon watched. Bitcoin is in the book, Kira says."
    model = ScriptedChatModel(script=[said])
    card = load_card().model_copy(update={"name": "Kira"})
    lines, _ = await narrate(model, card, FILLED_BUY, lambda e, d: None)
    assert [line.text for line in lines] == [
        fallback_sentence(FILLED_BUY),
        "Bitcoin is in the book, Kira says.",
    ]
    model = ScriptedChatModel(script=["Holding now, ETH will go up soon."])
    lines, _ = await narrate(model, card, HOLD, lambda e, d: None)
    assert [line.text for line in lines] == [fallback_sentence(HOLD)]


async def test_a_sentence_cut_off_at_the_token_limit_is_never_said():
    model = ScriptedChatModel(script=["Bought 0.0157 BTC! They're going to sell"])
    model.finish_reason = "length"
    lines, _ = await narrate(model, load_card(), FILLED_BUY, lambda e, d: None)
    assert [line.text for line in lines] == ["Bought 0.0157 BTC!"]
    model = ScriptedChatModel(script=["Bought 0.0157 BTC! Steady as she goes"])
    lines, _ = await narrate(model, load_card(), FILLED_BUY, lambda e, d: None)
    assert [line.text for line in lines] == ["Bought 0.0157 BTC!", "Steady as she goes"]


async def test_sentences_split_after_a_closing_quote():
    model = ScriptedChatModel(script=['We say "hold." Candles don\'t lie!'])
    lines, _ = await narrate(model, load_card(), HOLD, lambda e, d: None)
    assert [line.text for line in lines] == ['We say "hold."', "Candles don't lie!"]


def test_persona_card_can_be_swapped_and_bad_cards_fail_clearly(tmp_path: Path):
    card = tmp_path / "card.toml"
    card.write_text('name = "Bolt"\nstyle = "dry"\nemotions = ["neutral", "smug"]\n')
    loaded = load_card(card)
    assert loaded.name == "Bolt" and loaded.emotions == ("neutral", "smug")
    card.write_text('name = "Bolt"\nemotions = ["furious"]\n')
    with pytest.raises(ValueError, match="unknown emotion"):
        load_card(card)
    with pytest.raises(ValueError, match="cannot read persona card"):
        load_card(tmp_path / "missing.toml")

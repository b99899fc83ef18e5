"""Persona grounding: the share of the persona's sentences that pass the grounding check
unaltered, and of those that do not (ungrounded: replaced by the template sentence once, then
dropped), for the chat model the settings give the persona role.

Two parts, each with the persona's own prompts, card and token budgets:
- commentary: ``narrate`` on decisions built from the bundled Binance candles (BTC/USDT and
  ETH/BUSD, bars spread over the whole replay): BUY, SELL, HOLD in turn, a BUY or SELL
  executed (with its fill, and a SELL's realised P&L) or turned down by the risk gate (with
  one of the gate's own reasons);
- viewer answers: ``answer_viewer`` on the desk's fact sheet (``snapshot_of`` a status, the
  risk limits and the latest decision with its agents' votes) for the questions of
  bench/viewer_latency.py (price, why, position, limits, P&L, greetings; none asks for advice).

A sentence is counted when it reaches the check: it passed unaltered (said as the model wrote
it) or it was ungrounded (the ``persona.ungrounded`` log line, caught with structlog's
``capture_logs``). Replies that fell back to the template are counted too, and the reasons the
check gave.

The model is chosen the way the app chooses it, from the settings (``TRADECAST_LLM__*``):
the default is the embedded SmolLM2-135M; e.g. ``TRADECAST_LLM__BACKEND=ollama
TRADECAST_LLM__OLLAMA_MODEL=qwen2.5:7b-instruct`` (or ``TRADECAST_LLM__PERSONA__MODEL=...``),
or ``TRADECAST_LLM__MODEL_PATH=/models/other.gguf`` for another GGUF on llama.cpp.

Run: .venv/bin/python bench/persona_grounding.py [--commentary 30] [--answers 30] [--examples 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import time
from collections import Counter
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

import structlog
from langchain_core.language_models import BaseChatModel
from structlog.testing import capture_logs

from tradecast.agents import grounding, persona, viewer_answer
from tradecast.agents.calls import LLMCall
from tradecast.agents.grounding import PersonaFacts, fallback_sentence
from tradecast.agents.persona import PersonaEmit, narrate
from tradecast.agents.persona_card import PersonaCard, load_card
from tradecast.agents.viewer_answer import (
    answer_viewer,
    snapshot_of,
    template_answer,
    topic_of,
)
from tradecast.desk.audience import ANSWER_TOKENS
from tradecast.domain import Action
from tradecast.llm.factory import create_chat_model, model_label
from tradecast.logs import configure_logging
from tradecast.market.replay import ReplayMarket
from tradecast.settings import RiskLimits, load_settings
from viewer_latency import QUESTIONS

SYMBOLS = ("BTC/USDT", "ETH/BUSD")
EQUITY = Decimal(10_000)
NOTIONAL = Decimal(1_000)
CONFIDENCES = (0.42, 0.55, 0.63, 0.71, 0.86)
CENT = Decimal("0.01")
REASONS = (
    (re.compile(r"^states "), "a number not in the facts"),
    (re.compile(r"^names '"), "a name not on the sheet"),
    (re.compile(r"^forecasts or advises"), "a forecast or advice"),
    (re.compile(r"^names \w+/\w+"), "another pair"),
    (re.compile(r"^names "), "another asset"),
    (re.compile(r"^talks about a"), "the wrong side"),
    (re.compile(r"^says an order filled"), "a fill that did not happen"),
    (re.compile(r"^claims a cause"), "a cause"),
    (re.compile(r"^claims a named party"), "a named party"),
    (re.compile(r"^claims a judgement"), "a judgement on the desk's conduct"),
    (re.compile(r"^repeats the instructions"), "the prompt's own words"),
    (re.compile(r"^no decision yet"), "no decision yet"),
)


def buy_rejections(symbol: str, equity: Decimal) -> tuple[str, ...]:
    """Reasons the risk gate gives for turning a buy down (its own wording)."""
    day_start = (equity / Decimal("0.965")).quantize(CENT)
    peak = (equity / Decimal("0.84")).quantize(CENT)
    return (
        f"daily loss limit: equity {equity:.2f} is 3.5% below the day's start {day_start:.2f} "
        "(limit 3%); only sells are allowed until tomorrow (UTC)",
        f"max drawdown lock: equity {equity:.2f} is 16% below the peak {peak:.2f} "
        "(limit 15%); only sells are allowed",
        "kill switch is on: no new orders until an admin turns it off",
        f"cooldown: {symbol} hit its stop-loss at 2021-05-19T13:00:00+00:00; no buys until "
        "2021-05-19T14:00:00+00:00 (60 min)",
    )


def sell_rejections(symbol: str) -> tuple[str, ...]:
    return (
        f"no {symbol} position to sell; spot desk: no shorts",
        "kill switch is on: no new orders until an admin turns it off",
    )


@dataclass(frozen=True)
class Case:
    """One decision of the replay: its facts, and the desk around it for a viewer's answer."""

    facts: PersonaFacts
    equity: Decimal
    votes: tuple[dict[str, Any], ...]


def cases(n: int) -> list[Case]:
    """``n`` decisions on bars spread over the bundled candles, BUY/SELL/HOLD in turn."""
    market = ReplayMarket()
    frames = {symbol: market.frame(symbol) for symbol in SYMBOLS}
    out = []
    for i in range(n):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        frame = frames[symbol]
        row = 200 + (len(frame) - 226) * i // max(1, n - 1)
        close = Decimal(str(frame["close"].iloc[row])).quantize(CENT)
        day_before = Decimal(str(frame["close"].iloc[row - 24])).quantize(CENT)
        first = Decimal(str(frame["close"].iloc[0]))
        equity = (EQUITY * (1 + (close / first - 1) / 10)).quantize(CENT)
        action = (Action.BUY, Action.SELL, Action.HOLD)[i % 3]
        executed = action is not Action.HOLD and (i // 3) % 2 == 0
        confidence = CONFIDENCES[i % len(CONFIDENCES)]
        quantity = Decimal(0)
        if action is not Action.HOLD:
            quantity = (NOTIONAL / close).quantize(Decimal("0.00001"), rounding=ROUND_DOWN)
        fill_price = pnl = rejection = None
        if executed:
            slip = Decimal("1.0002") if action is Action.BUY else Decimal("0.9998")
            fill_price = (close * slip).quantize(CENT)
            if action is Action.SELL:
                pnl = (quantity * (fill_price - day_before)).quantize(CENT)
        elif action is Action.BUY:
            options = buy_rejections(symbol, equity)
            rejection = options[(i // 6) % len(options)]
        elif action is Action.SELL:
            options = sell_rejections(symbol)
            rejection = options[(i // 6) % len(options)]
        facts = PersonaFacts(
            symbol=symbol,
            action=action,
            quantity=quantity,
            price=close,
            confidence=confidence,
            executed=executed,
            fill_price=fill_price,
            realized_pnl=pnl,
            rejection=rejection,
        )
        out.append(Case(facts, equity, votes_for(action, confidence, i)))
    return out


def votes_for(action: Action, confidence: float, i: int) -> tuple[dict[str, Any], ...]:
    """The analyst, the trader and the rules behind a decision (one of them dissents)."""
    dissent = (Action.HOLD if action is not Action.HOLD else Action.BUY).value
    votes = [
        ("analyst", action.value, confidence),
        ("trader", action.value, max(0.3, confidence - 0.1)),
        ("rules", dissent if i % 2 else action.value, 0.5),
    ]
    return tuple(
        {"agent": agent, "action": act, "confidence": conf, "weight": 1.0, "abstained": False}
        for agent, act, conf in votes
    )


@dataclass
class Tally:
    """Sentences and replies of one part."""

    replies: int = 0
    checked: int = 0
    passed: int = 0
    ungrounded: int = 0
    dropped: int = 0
    """Ungrounded sentences after the first of a reply: not said at all."""
    blocked: int = 0
    """Grounded but stopped by moderation."""
    fell_back: int = 0
    """Replies that said the template (an ungrounded sentence, or nothing usable)."""
    all_template: int = 0
    """Replies that said only the template."""
    reasons: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    passed_examples: list[str] = field(default_factory=list)

    def add(self, events: list[MutableMapping[str, Any]], said: list[str], fallback: str) -> None:
        ungrounded = [e for e in events if e["event"] == "persona.ungrounded"]
        replaced = any(e["replaced"] for e in ungrounded)
        blocked = sum(e["event"] == "persona.blocked" for e in events)
        # the template is said in place of the first ungrounded sentence, or alone when the
        # model said nothing usable (Speech.finish)
        template = said.count(fallback) if replaced or said == [fallback] else 0
        self.replies += 1
        self.passed += len(said) - template
        self.ungrounded += len(ungrounded)
        self.dropped += sum(not e["replaced"] for e in ungrounded)
        self.checked += len(said) - template + len(ungrounded) + blocked
        self.blocked += blocked
        self.fell_back += template > 0
        self.all_template += bool(said) and template == len(said)
        for e in ungrounded:
            self.reasons[reason_kind(e["reason"])] += 1
        self.passed_examples += [s for s in said if s != fallback]

    def as_dict(self) -> dict[str, Any]:
        share = (lambda part: round(part / self.checked, 3)) if self.checked else (lambda _: 0.0)
        return {
            "replies": self.replies,
            "sentences_checked": self.checked,
            "passed_unaltered": self.passed,
            "ungrounded": self.ungrounded,
            "ungrounded_dropped": self.dropped,
            "blocked_by_moderation": self.blocked,
            "passed_share": share(self.passed),
            "ungrounded_share": share(self.ungrounded),
            "replies_with_template": self.fell_back,
            "replies_only_template": self.all_template,
            "reasons": dict(self.reasons.most_common()),
            "seconds_per_reply": round(self.seconds / max(1, self.replies), 2),
        }


def reason_kind(reason: str) -> str:
    return next((kind for pattern, kind in REASONS if pattern.search(reason)), reason[:40])


class Recorder:
    """Keeps the sentences the check turned down, with why (for ``--examples``): every
    ``Speech`` the persona makes records what its ``check`` says, whatever that check is."""

    def __init__(self) -> None:
        self.turned_down: list[tuple[str, str, str]] = []
        self.part = ""

    def install(self) -> None:
        recorder = self

        class RecordingSpeech(persona.Speech):
            def __post_init__(self) -> None:
                super().__post_init__()
                check = self.check

                def recorded(text: str) -> str | None:
                    verdict = check(text)
                    if verdict is not None:
                        recorder.turned_down.append((recorder.part, text, verdict))
                    return verdict

                self.check = recorded

        # both callers look the class up in their own module at call time
        persona.Speech = RecordingSpeech  # type: ignore[misc]
        viewer_answer.Speech = RecordingSpeech  # type: ignore[misc]


def sentence_collector() -> tuple[list[str], PersonaEmit]:
    """A list of the sentences said, and the persona emit callback that fills it."""
    said: list[str] = []

    def emit(event: str, data: dict[str, Any]) -> None:
        if event == "sentence":
            said.append(data["text"])

    return said, emit


async def commentary(
    model: BaseChatModel, card: PersonaCard, all_cases: list[Case], max_tokens: int
) -> Tally:
    tally = Tally()
    for case in all_cases:
        said, emit = sentence_collector()
        started = time.perf_counter()
        with capture_logs() as events:
            _, call = await narrate(model, card, case.facts, emit, max_tokens=max_tokens)
        model_worked(call)
        tally.seconds += time.perf_counter() - started
        tally.add(events, said, fallback_sentence(case.facts))
    return tally


async def answers(
    model: BaseChatModel, card: PersonaCard, all_cases: list[Case], limits: RiskLimits, n: int
) -> Tally:
    tally = Tally()
    for i in range(n):
        case = all_cases[i % len(all_cases)]
        question = QUESTIONS[i % len(QUESTIONS)]
        facts = case.facts
        status = {"state": "running", "symbol": facts.symbol, "equity": str(case.equity)}
        decision = {
            "symbol": facts.symbol,
            "action": facts.action.value,
            "quantity": str(facts.quantity),
            "price": str(facts.price),
            "confidence": facts.confidence,
            "executed": facts.executed,
            "attribution": list(case.votes),
        }
        snapshot = snapshot_of(status, limits, [decision])
        said, emit = sentence_collector()
        started = time.perf_counter()
        with capture_logs() as events:
            intent, _, call = await answer_viewer(
                model, card, snapshot, question, emit, ANSWER_TOKENS
            )
        model_worked(call)
        tally.seconds += time.perf_counter() - started
        assert intent == "question", question
        tally.add(events, said, template_answer(snapshot, topic_of(question)))
    return tally


def model_worked(call: LLMCall | None) -> None:
    """Stop at a failed call: the template said in its place would count as a fallback."""
    if call is not None and not call.ok:
        raise SystemExit(f"the model failed: {call.error}")


def print_part(name: str, tally: Tally) -> None:
    t = tally.as_dict()
    print(
        f"  {name:11} {t['replies']:3} replies, {t['sentences_checked']:3} sentences checked: "
        f"{t['passed_unaltered']:3} passed unaltered ({t['passed_share']:.0%}), "
        f"{t['ungrounded']:3} ungrounded ({t['ungrounded_share']:.0%}, "
        f"{t['ungrounded_dropped']} of them dropped); {t['replies_with_template']} replies fell "
        f"back to the template ({t['replies_only_template']} said only it); "
        f"{t['seconds_per_reply']:.2f} s a reply"
    )
    print(f"  {'':11} ungrounded for: {t['reasons']}")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings()
    model = create_chat_model(settings.llm, "persona")
    card = load_card(settings.desk.persona_card)
    all_cases = cases(args.commentary)
    for case in all_cases:  # the templates must pass the check they stand in for
        assert grounding.check_sentence(fallback_sentence(case.facts), case.facts) is None
    recorder = Recorder()
    recorder.install()
    # one call not counted: loads the model (llama.cpp) or wakes it (Ollama)
    _, call = await narrate(model, card, all_cases[0].facts, lambda *_: None, max_tokens=8)
    model_worked(call)
    recorder.part = "commentary"
    said = await commentary(model, card, all_cases, settings.desk.persona_max_tokens)
    recorder.part = "answers"
    spoken = await answers(model, card, all_cases, settings.risk, args.answers)
    return {
        "model": model_label(model),
        "commentary": said,
        "answers": spoken,
        "turned_down": recorder.turned_down,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commentary", type=int, default=30, help="decisions narrated")
    parser.add_argument("--answers", type=int, default=30, help="viewer questions answered")
    parser.add_argument("--examples", type=int, default=0, help="print sentences of each kind")
    args = parser.parse_args()
    configure_logging("warning", "console")
    # persona.ungrounded is an info line: let it reach capture_logs (the root logger still
    # drops info lines outside it)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    load_before = os.getloadavg()
    started = time.perf_counter()
    figures = asyncio.run(run(args))
    wall_s = time.perf_counter() - started
    load_after = os.getloadavg()
    said: Tally = figures["commentary"]
    spoken: Tally = figures["answers"]
    print(
        f"persona grounding, model {figures['model']} "
        f"(load {load_before[0]:.2f} -> {load_after[0]:.2f}, {wall_s:.0f} s):"
    )
    print_part("commentary", said)
    print_part("answers", spoken)
    if args.examples:
        for name, tally in (("commentary", said), ("answers", spoken)):
            print(f"  turned down by the check ({name}):")
            down = [(t, why) for part, t, why in figures["turned_down"] if part == name]
            for text, why in down[: args.examples]:
                print(f"    {text!r}: {why}")
            print(f"  passed unaltered ({name}):")
            for text in tally.passed_examples[: args.examples]:
                print(f"    {text!r}")
    result = {
        "model": figures["model"],
        "commentary": said.as_dict(),
        "answers": spoken.as_dict(),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "wall_s": round(wall_s, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

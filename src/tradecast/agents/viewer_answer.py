"""The persona answers a viewer's question from the desk's state, and nothing else.

A message that passed the gate (:mod:`tradecast.agents.viewer_gate`) is one of:

- a request for advice ("should I buy?"): a fixed, friendly refusal, no model call;
- a request to act ("sell everything", "pause the bot"): a fixed refusal, no model call;
  viewers have no control at all, and nothing here can reach anything that trades;
- anything else: the model answers from a fact sheet of the desk's state (the latest
  decision and the votes behind it, price, equity, the risk limits), each sentence checked
  against that sheet like the persona's commentary, and more strictly: no forecast or advice,
  no capitalised name the sheet does not hold, no number that is not the sheet's as stated
  or rounded to the digits stated, no insult; a sentence that is not supported is replaced
  by a template answer to the question's topic, grounded by construction.

Neither kind of answer repeats the viewer's name: a display name is the viewer's own text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from tradecast.agents.calls import LLMCall, load_prompt
from tradecast.agents.grounding import (
    MARKET_MOVES,
    PersonaFacts,
    beyond_the_facts,
    check_sentence,
    echoes,
    fallback_sentence,
    format_price,
    instruction_runs,
    names_in,
)
from tradecast.agents.persona import PersonaEmit, Speech, facts_prompt, speak
from tradecast.agents.persona_card import PersonaCard
from tradecast.agents.viewer_gate import VIEWER_INSULTS
from tradecast.domain import Action, PersonaLine

ADVICE = re.compile(
    r"\b(should (?:i|we|you|u)|what (?:should|to|do i) (?:buy|sell|do)|good time to|"
    r"recommend|advice|advise|worth (?:it|buying|selling)|price (?:target|prediction)|"
    r"(?:is|will) (?:it|this|\w{2,6}) (?:go(?:ing)? (?:up|down|to)|rise|fall|pump|dump|moon|"
    r"crash)|buy or sell|gonna (?:pump|dump|moon)|where is \w+ going|next (?:coin|gem)|"
    r"(?:can|will) i (?:make|get rich|profit)|how (?:do|can) i (?:make|earn|profit)|tips?\b|"
    # predictions: where a price goes, not what the desk did ("will btc hit 100k?")
    rf"(?:will|gonna|going to)\b(?!\s+(?:the\s+)?desk\b).{{0,30}}\b(?:{MARKET_MOVES})\b|"
    r"how (?:high|low|far) (?:will|can|could|would|might|do you think|is \w+ (?:going|gonna))|"
    r"predict|forecast|"
    r"where (?:do you think |will |is )?\w+ (?:going|heading|ends?|end up)|"
    r"too (?:late|early) to (?:buy|sell|get in|invest|enter)|"
    r"would you (?:buy|sell|hold|invest|short|long|ape|do)|"
    r"(?:buy|sell|hold) or (?:buy|sell|hold)|"
    r"is (?:this|it|that|now) the (?:bottom|top)|(?:bottom|top) (?:is in|yet)|"
    r"\d+x (?:coin|gem|token|play)|next \S+ (?:coin|gem|token)|"
    r"(?:good|bad|safe|smart|great) (?:investment|bet|buy|entry)|"
    r"(?:bullish|bearish) on|financial advice|investment advice|dca\b)",
    re.IGNORECASE,
)
ACTION = re.compile(
    r"\b((?:buy|sell|short|long|dump|ape|close|liquidate|hedge)\s+(?:it|now|more|all|"
    r"everything|some|\d[\d.,]*|btc|eth|the|this|that|your|my)|place (?:an? )?orders?|"
    r"(?:pause|stop|halt|resume|start|restart|shut down|turn off) (?:the )?(?:desk|bot|"
    r"trading|trader|ai)|(?:raise|lower|set|change|increase|decrease|remove|disable) (?:the )?"
    r"(?:limits?|risk|stop|leverage|kill switch)|approve|reject (?:the )?order|kill switch|"
    r"all[- ]in|yolo|max leverage|go long|go short|do a trade|make a trade|"
    # any change to a limit, a stop or a position ("cancel the stop loss", "double the size")
    r"(?:raise|lower|set|change|increase|decrease|remove|disable|reset|cancel|move|double|"
    r"halve|bump|turn (?:off|on)|widen|loosen|tighten|lift|drop)\s+(?:the |my |your |its |all )?"
    r"(?:\w+\s+){0,2}(?:limits?|risk|stops?|stop[- ]loss|leverage|kill[- ]switch|positions?|"
    r"size|exposure|max\w*|drawdown|checks?|gate|cooldown)|"
    r"(?:execute|submit|send|fire|enter|open) (?:a |an |the )?(?:\w+ )?(?:order|trade|buy|sell|"
    r"position|long|short)|"
    r"(?:withdraw|transfer|send|wire|move)\b.{0,30}\b(?:balance|funds|money|btc|eth|usdt|coins?|"
    r"wallet|account))\b",
    re.IGNORECASE,
)
Intent = Literal["advice", "action", "question"]
Topic = Literal["price", "position", "why", "pnl", "limits", "general"]

TOPICS: tuple[tuple[Topic, re.Pattern[str]], ...] = (
    # limits before P&L: "the daily loss limit" and "a stop loss" are about the limits
    ("why", re.compile(r"\b(why|reason|because|explain|how come)\b", re.IGNORECASE)),
    ("limits", re.compile(r"\b(limits?|risk|max|cap|stop[- ]?loss|drawdown)\b", re.IGNORECASE)),
    ("pnl", re.compile(r"\b(p&l|pnl|profit|loss|losing|winning|made|lost|up or down)\b", re.I)),
    ("position", re.compile(r"\b(position|holding|hold|own|equity|balance|portfolio)\b", re.I)),
    ("price", re.compile(r"\b(price|trading at|worth|cost|how much|quote)\b", re.IGNORECASE)),
)
REFUSALS: dict[Intent, str] = {
    "advice": "I can't give financial advice, but I'm happy to tell you what the desk did and why.",
    "action": "Viewers can't steer the desk, only its operators can, but ask me what it's doing!",
}
ANSWER_SENTENCES = 2


def intent_of(text: str) -> Intent:
    """Whether a message asks for advice, asks the desk to act, or is a question."""
    if ADVICE.search(text):
        return "advice"
    if ACTION.search(text):
        return "action"
    return "question"


def topic_of(text: str) -> Topic:
    """What part of the desk a question is about (for the template answer)."""
    return next((topic for topic, pattern in TOPICS if pattern.search(text)), "general")


@dataclass(frozen=True)
class DeskSnapshot:
    """The fact sheet a viewer's answer may draw on: only what the desk reports of itself."""

    state: str
    symbol: str
    equity: Decimal | None
    decision: PersonaFacts | None
    votes: tuple[tuple[str, str, int], ...]
    """(agent, action, confidence in percent) behind the latest decision."""
    max_position_pct: Decimal
    daily_loss_limit_pct: Decimal
    symbols: tuple[str, ...] = ()
    """Every symbol the desk decides (several: a portfolio desk)."""

    def facts(self) -> PersonaFacts | None:
        """The latest decision's facts, with the rest of the sheet's numbers also true."""
        if self.decision is None:
            return None
        also = [self.max_position_pct * 100, self.daily_loss_limit_pct * 100]
        also += [Decimal(pct) for _, _, pct in self.votes]
        if self.equity is not None:
            also.append(self.equity)
        return replace(self.decision, also_true=tuple(also))

    def prompt_lines(self) -> str:
        """The fact sheet as lines the model may quote."""
        lines = [f"- desk: {self.state}, trading {', '.join(self.symbols or (self.symbol,))}"]
        if self.decision is not None:
            lines.append(facts_prompt(self.decision))
        if self.votes:
            said = ", ".join(f"{agent} {action} {pct}%" for agent, action, pct in self.votes)
            lines.append(f"- votes: {said}")
        if self.equity is not None:
            lines.append(f"- equity: {format_price(self.equity)} {self._quote}")
        lines.append(
            f"- limits: one position at most {_percent(self.max_position_pct)} of equity, "
            f"daily loss limit {_percent(self.daily_loss_limit_pct)}"
        )
        return "\n".join(lines)

    @property
    def _quote(self) -> str:
        return self.symbol.split("/")[-1]


def _percent(fraction: Decimal) -> str:
    return f"{(fraction * 100).normalize():f}%"


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


def snapshot_of(
    status: Mapping[str, Any], limits: Any, decisions: Sequence[Mapping[str, Any]]
) -> DeskSnapshot:
    """The fact sheet from what the desk reports: its status, limits and latest decisions."""
    latest = decisions[0] if decisions else None
    decision = None
    votes: tuple[tuple[str, str, int], ...] = ()
    if latest:
        decision = PersonaFacts(
            symbol=str(latest["symbol"]),
            action=Action(latest["action"]),
            quantity=Decimal(str(latest["quantity"])),
            price=Decimal(str(latest["price"])),
            confidence=float(latest["confidence"]),
            executed=bool(latest.get("executed", False)),
        )
        votes = tuple(
            (str(a["agent"]), str(a["action"]), round(float(a["confidence"]) * 100))
            for a in latest.get("attribution", ())
            if not a.get("abstained")
        )
    return DeskSnapshot(
        state=str(status.get("state", "unknown")),
        symbol=str(status.get("symbol") or (decision.symbol if decision else "")),
        equity=_decimal(status.get("equity")),
        decision=decision,
        votes=votes,
        max_position_pct=Decimal(str(limits.max_position_pct)),
        daily_loss_limit_pct=Decimal(str(limits.daily_loss_limit_pct)),
        symbols=tuple(str(s) for s in status.get("symbols") or ()),
    )


def template_answer(snapshot: DeskSnapshot, topic: Topic) -> str:
    """An answer to ``topic`` made only of the sheet's facts (grounded by construction)."""
    facts = snapshot.decision
    if topic == "limits":
        return (
            f"One position may be at most {_percent(snapshot.max_position_pct)} of equity, "
            f"and the daily loss limit is {_percent(snapshot.daily_loss_limit_pct)}."
        )
    if topic == "position" and snapshot.equity is not None:
        return f"The desk's equity is {format_price(snapshot.equity)} {snapshot._quote}."
    if facts is None:
        trading = ", ".join(snapshot.symbols or (snapshot.symbol,))
        return f"The desk is {snapshot.state} on {trading} and has not decided yet."
    if topic == "price":
        price = format_price(facts.fill_price or facts.price)
        return f"{facts.symbol} was at {price} {facts.quote} at the last decision."
    if topic == "why" and snapshot.votes:
        said = ", ".join(f"the {agent} said {action}" for agent, action, _ in snapshot.votes)
        return f"The desk chose {facts.action.value} because {said}."
    return fallback_sentence(facts)


async def answer_viewer(
    model: BaseChatModel,
    card: PersonaCard,
    snapshot: DeskSnapshot,
    question: str,
    emit: PersonaEmit,
    max_tokens: int = 80,
) -> tuple[Intent, list[PersonaLine], LLMCall | None]:
    """Answer one admitted question; returns its intent, the lines said and the model call
    (None for a fixed refusal)."""
    card = card.model_copy(
        update={
            "max_sentences": min(card.max_sentences, ANSWER_SENTENCES),
            # an answer insults no one either (the gate keeps these out of questions)
            "blocklist": (*card.blocklist, *VIEWER_INSULTS),
        }
    )
    intent = intent_of(question)
    if intent != "question":
        speech = Speech(card, lambda _text: None, REFUSALS[intent], "neutral", emit)
        speech.say([REFUSALS[intent]])
        return intent, speech.lines, None
    template = load_prompt("viewer")
    facts = snapshot.facts()
    runs = instruction_runs(template)

    names = names_in(snapshot.prompt_lines(), card.name)

    def check(text: str) -> str | None:
        if facts is None:
            return "no decision yet: only the template is grounded"
        return echoes(text, runs) or check_sentence(text, facts) or beyond_the_facts(text, names)

    fallback = template_answer(snapshot, topic_of(question))
    speech = Speech(card, check, fallback, "happy", emit)
    system = template.format(
        name=card.name,
        style=card.style,
        max_sentences=card.max_sentences,
        facts=snapshot.prompt_lines(),
    )
    messages = [SystemMessage(system), HumanMessage(question)]
    lines, call = await speak(model, messages, speech, max_tokens)
    return intent, lines, call

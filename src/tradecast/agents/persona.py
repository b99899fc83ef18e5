"""The persona: narrates the desk's final action in short sentences, streamed token by token.

It gets the decision and what became of it (``PersonaFacts``), never the broker. Tokens are
held back until their sentence is complete, then the sentence must pass grounding (every
number, symbol and side matches the decision) and moderation; only then are its tokens
emitted. A sentence that is not grounded is replaced by a template sentence; one that fails
moderation is dropped and the block is logged.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from tradecast.agents.calls import LLMCall, load_prompt, usage_of
from tradecast.agents.grounding import (
    PersonaFacts,
    beyond_the_facts,
    check_sentence,
    fallback_sentence,
    format_price,
    format_quantity,
    names_in,
)
from tradecast.agents.moderation import Moderator
from tradecast.agents.persona_card import PersonaCard
from tradecast.domain import Action, PersonaLine
from tradecast.errors import LLMError
from tradecast.llm.cache import astream_cached
from tradecast.logs import get_logger

log = get_logger(__name__)

SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"\u201d\u2019')]))\s+")
"""Where a sentence ends: after . ! or ?, or after one of them and a closing quote."""
EMOTION_TAG = re.compile(r"^\s*[\[(*]\s*([a-zA-Z]+)\s*[\])*]\s*")
PersonaEmit = Callable[[str, dict[str, Any]], None]
"""Receives ('token' | 'sentence' | 'blocked', data) as the persona speaks."""


def facts_prompt(facts: PersonaFacts) -> str:
    """The facts as lines the model may quote."""
    lines = [f"- symbol: {facts.symbol}", f"- decision: {facts.action.value}"]
    if facts.action is not Action.HOLD:
        lines.append(f"- quantity: {format_quantity(facts.quantity)} {facts.base}")
    lines.append(f"- price: {format_price(facts.fill_price or facts.price)} {facts.quote}")
    lines.append(f"- confidence: {round(facts.confidence * 100)}%")
    lines.append(f"- executed: {'yes' if facts.executed else 'no'}")
    if facts.rejection:
        lines.append(f"- risk gate: {facts.rejection}")
    if facts.realized_pnl is not None:
        lines.append(f"- realised P&L: {facts.realized_pnl:+.2f} {facts.quote}")
    return "\n".join(lines)


def default_emotion(facts: PersonaFacts) -> str:
    """The emotion that fits the facts when the model gives no valid tag."""
    if facts.rejection:
        return "worried"
    if facts.realized_pnl is not None:
        return "happy" if facts.realized_pnl > 0 else "sad"
    if facts.action is Action.HOLD:
        return "thinking"
    return "excited" if facts.confidence >= 0.7 else "happy"


@dataclass
class Speech:
    """Sentences on their way to the stream: checked, then emitted, or replaced or dropped.

    ``check`` names what is wrong with a sentence (None: grounded); ``fallback`` is said
    instead of the first ungrounded sentence, and when nothing else survives.
    """

    card: PersonaCard
    check: Callable[[str], str | None]
    fallback: str
    emotion: str
    emit: PersonaEmit
    lines: list[PersonaLine] = field(default_factory=list)
    replaced: bool = False

    def __post_init__(self) -> None:
        self.moderator = Moderator(card_blocklist(self.card))

    def say(self, pieces: list[str]) -> None:
        """Check one complete sentence (as its token pieces) and emit it if it may be said."""
        raw = "".join(pieces).strip()
        emotion, text = self._emotion(raw)
        if not text or len(self.lines) >= self.card.max_sentences:
            return
        # the fallback is grounded by construction: the check is for what the model wrote
        mismatch = None if text == self.fallback else self.check(text)
        if mismatch is not None:
            log.info("persona.ungrounded", reason=mismatch, replaced=not self.replaced)
            if self.replaced:
                return
            self.replaced = True
            text, pieces = self.fallback, []
        verdict = self.moderator.check(text)
        if not verdict.allowed:
            # the sentence itself is not logged (it may quote a secret): its size and digest
            log.warning(
                "persona.blocked",
                reason=verdict.reason,
                chars=len(text),
                digest=hashlib.sha256(text.encode()).hexdigest()[:12],
            )
            self.emit("blocked", {"reason": verdict.reason})
            return
        self._emit_sentence(text, emotion, pieces)

    def finish(self) -> None:
        """Make sure something was said: the fallback when every sentence was dropped."""
        if not self.lines:
            self.replaced = True
            self.say([self.fallback])

    def _emotion(self, raw: str) -> tuple[str, str]:
        match = EMOTION_TAG.match(raw)
        if match and match.group(1).lower() in self.card.emotions:
            return match.group(1).lower(), raw[match.end() :].strip()
        text = EMOTION_TAG.sub("", raw).strip() if match else raw
        return self.emotion, text

    def _emit_sentence(self, text: str, emotion: str, pieces: list[str]) -> None:
        # only the pieces that spell the checked text: never a tag or prefix that was cut off
        # before grounding and moderation saw the sentence
        tokens = _pieces_spelling(pieces, text) or re.findall(r"\S+\s*", text)
        if self.lines:
            self.emit("token", {"text": " "})
        for token in filter(None, tokens):
            self.emit("token", {"text": token})
        line = PersonaLine(text=text[:400], emotion=emotion)  # type: ignore[arg-type]
        self.lines.append(line)
        self.emit("sentence", {"text": line.text, "emotion": line.emotion})


async def speak(
    model: BaseChatModel,
    messages: list[BaseMessage],
    speech: Speech,
    max_tokens: int,
) -> tuple[list[PersonaLine], LLMCall]:
    """Stream the model's answer through ``speech``; always says at least one sentence."""
    started = time.perf_counter()
    pieces: list[str] = []
    usage: tuple[int, int] = (0, 0)
    error: str | None = None
    cut_off = False
    try:
        # astream_cached: langchain's cache skips streamed calls; this path uses it too
        async for chunk in astream_cached(model, messages, max_tokens=max_tokens):
            usage = max(usage, usage_of(chunk))
            cut_off = cut_off or _hit_token_limit(chunk.response_metadata)
            pieces.append(str(chunk.content))
            pieces = _flush_complete(pieces, speech)
    except LLMError as exc:
        error = f"{exc.kind}: {exc}"
        log.warning("persona.llm_failed", error=error[:300])
    if pieces and error is None and not cut_off:
        speech.say(pieces)  # a last sentence without its full stop, not one cut mid-word
    speech.finish()
    call = LLMCall(
        agent="persona",
        ok=error is None,
        prompt_tokens=usage[0],
        completion_tokens=usage[1],
        latency_ms=round((time.perf_counter() - started) * 1000, 2),
        error=error,
    )
    return speech.lines, call


async def narrate(
    model: BaseChatModel,
    card: PersonaCard,
    facts: PersonaFacts,
    emit: PersonaEmit,
    max_tokens: int = 90,
) -> tuple[list[PersonaLine], LLMCall]:
    """Stream the persona's commentary on ``facts``; always says at least one sentence."""
    # The card's part is the same every tick and the facts come last, so the persona's own
    # model context keeps that prefix evaluated from one tick to the next (prefill is most
    # of the wait for the first sentence on a CPU).
    system = load_prompt("persona").format(
        name=card.name,
        style=card.style,
        catchphrases="; ".join(card.catchphrases),
        max_sentences=card.max_sentences,
        facts=facts_prompt(facts),
    )
    messages = [SystemMessage(system), HumanMessage("Tell the viewers what the desk just did.")]
    names = names_in(facts_prompt(facts), card.name, *card.catchphrases)
    speech = Speech(
        card,
        lambda text: check_sentence(text, facts) or beyond_the_facts(text, names),
        fallback_sentence(facts),
        default_emotion(facts),
        emit,
    )
    return await speak(model, messages, speech, max_tokens)


def _hit_token_limit(metadata: dict[str, Any]) -> bool:
    """Whether the model stopped at its token limit (llama.cpp's ``finish_reason`` or
    Ollama's ``done_reason``): what it was writing then is a fragment, never said."""
    return "length" in (metadata.get("finish_reason"), metadata.get("done_reason"))


def _flush_complete(pieces: list[str], speech: Speech) -> list[str]:
    """Say every complete sentence in ``pieces``; return the unfinished remainder."""
    text = "".join(pieces)
    parts = SENTENCE_END.split(text)
    if len(parts) < 2:
        return pieces
    consumed = 0
    for sentence in parts[:-1]:
        taken, consumed = _take_pieces(pieces, consumed, sentence)
        speech.say(taken)
    rest = "".join(pieces)[len(text) - len(parts[-1]) :]
    return [rest] if rest else []


def _take_pieces(pieces: list[str], start: int, sentence: str) -> tuple[list[str], int]:
    """The token pieces that spell ``sentence`` (from character ``start``), for re-emission."""
    text = "".join(pieces)
    begin = text.index(sentence, start)
    end = begin + len(sentence)
    out, position = [], 0
    for piece in pieces:
        lo, hi = position, position + len(piece)
        if hi > begin and lo < end:
            out.append(piece[max(0, begin - lo) : min(len(piece), end - lo)])
        position = hi
    return out, end


def _pieces_spelling(pieces: list[str], text: str) -> list[str]:
    """The token pieces that spell exactly ``text`` (its last occurrence), or [] if none do."""
    start = "".join(pieces).rfind(text)
    if start < 0 or not text:
        return []
    taken, _ = _take_pieces(pieces, start, text)
    return taken


def card_blocklist(card: PersonaCard) -> tuple[str, ...]:
    """The default blocklist plus the card's own words."""
    from tradecast.agents.moderation import DEFAULT_BLOCKLIST

    return (*DEFAULT_BLOCKLIST, *card.blocklist)

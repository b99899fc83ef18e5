"""Grounding of persona sentences: every number, symbol and side must match the decision.

A 135M model invents prices; the stream must never carry them. ``check_sentence`` names the
first mismatch; ``fallback_sentence`` says the same facts in a template that is grounded by
construction.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from decimal import Decimal

from tradecast.domain import Action

NUMBER = re.compile(r"(?<![\w.])[-+]?\$?\d[\d,]*(?:\.\d+)?\s?(?:%|[kK]\b)?")
PAIR = re.compile(r"\b([A-Z]{2,6})\s*/\s*([A-Z]{2,6})\b")
TICKER = re.compile(
    r"\b(BTC|ETH|USDT|BUSD|USDC|BNB|SOL|XRP|ADA|DOGE|DOT|LTC|AVAX|LINK|TRX|"
    r"MATIC|SHIB|EUR|USD)\b",
    re.IGNORECASE,
)
# "long" and "short" name a side only as a position ("went long"), not as lengths of time
SIDE_WORDS = {
    Action.BUY: re.compile(
        r"\b(bought|buy|buying|(?:go|goes|going|went|gone) long|long position)\b", re.IGNORECASE
    ),
    Action.SELL: re.compile(
        r"\b(sold|sell|selling|dumped|shorted|shorting|(?:go|goes|going|went|gone) short|"
        r"short position)\b",
        re.IGNORECASE,
    ),
}
NOT_FILLED = re.compile(
    r"\b(?:not|never|didn't|did not|wasn't|was not|hasn't|has not)\s+(?:\w+\s+)?"
    r"(?:fill|filled|executed?|traded?)\b",
    re.IGNORECASE,
)
FILL_WORDS = re.compile(r"\b(bought|sold|filled|executed|traded)\b", re.IGNORECASE)

# Claims no tick's facts can support: a cause ("because of a big company"), a named party (a
# quoted or CamelCase name, a company), or a judgement on the desk's conduct. A small model
# invents all three; the facts hold none of them, so a sentence making one is not grounded.
CAUSE = re.compile(
    r"\b(because of|due to|thanks to|driven by|caused by|on the back of|"
    r"after news|news (?:of|that|about)|the reason (?:for|why|was|is)|in order to|to ensure|"
    r"so as to)\b",
    re.IGNORECASE,
)
RESULTS = re.compile(
    r"\b(?:is|are|was|were|has been|have been|it's|doing|did|went|performing|performed)\s+"
    r"(?:\w+\s+)?(?:great|well|badly|poorly|amazing|fantastic|terrible|awesome|good|bad)\b",
    re.IGNORECASE,
)
NAMED_PARTY = re.compile(
    r"[\"“”«»]\s*[A-Z][\w.&' -]{1,80}[\"“”«»]|\b[A-Z][a-z]+[A-Z]\w*\b|"
    r"(?i:\b(company|companies|corporation|corp|inc|ltd|llc|government|regulators?|exchange called|"
    r"institutions?|investors?|whales?|partners?|partnerships?|platform|team|authorit(?:y|ies))\b)|"
    # "bank", "firm", "fund" and "exchange" are also trader's verbs and adjectives ("bank
    # gains", "hold firm", "exchange BTC"): parties only as nouns
    r"(?i:\b(?:a|an|the|some|big|major|large) (?:\w+ )?(?:bank|firm|fund|exchange)s?\b)",
)
EVENT = re.compile(
    r"\b(deals?|agreed|agreements?|acquir\w+|acquisitions?|merg(?:er|ers|ed|ing)|listings?|"
    r"delist\w*|hack\w*|lawsuits?|sued|announc\w+|tweet\w*|halving|regulat\w+|launch\w*|"
    r"technology|business(?:es)?|settlements?)\b",
    re.IGNORECASE,
)
CONDUCT = re.compile(
    r"\b(not allowed|illegal|unlawful|against the (?:law|rules)|broke the (?:law|rules)|"
    r"forbidden|prohibited|banned|fraud\w*|insider|manipulat\w+|cheat\w*|transparen\w+|"
    r"dishonest\w*|reckless\w*|irresponsib\w+)\b",
    re.IGNORECASE,
)


MARKET_MOVES = (
    r"go(?:es|ing)? (?:up|down|higher|lower)|rise|fall|drop|pump|dump|moon|crash|climb|soar|"
    r"rally|recover|bounce|hit|reach|break|double|triple|tank|surge|spike|skyrocket|explode|"
    r"close (?:above|below)"
)
FORECAST = re.compile(
    rf"\b(?:will|won't|gonna|going to|about to|set to|likely to|expected to|bound to|could|"
    rf"might|may)\s+(?:\w+\s+)?(?:{MARKET_MOVES})\b|\bto the moon\b",
    re.IGNORECASE,
)
ADVICE_SAID = re.compile(
    r"\byou\s+(?:\w+\s+)?(?:should|must|need to|ought to|have to|gotta|could|can|might want to)"
    r"\s+(?:\w+\s+)?(?:buy|sell|invest|hold|short|long|ape|grab|load|get in|get out|dump|put|"
    r"dca|consider|trade)\b|\b(?:i|we)\s+(?:\w+\s+)?(?:recommend|suggest|advise)\b|"
    r"\b(?:buy|sell|short|long)\s+(?:it\s+|some\s+)?(?:now|today|asap)\b|"
    r"\b(?:good|great|best|perfect|right|ideal)\s+(?:time|moment|entry|chance|price)\s+to\b|"
    r"\bprice (?:target|prediction|forecast)|\binvest in\b|\bput your money\b|\bbuy the dip\b|"
    r"\b(?:don't|do not) miss\b|\b(?:don't|do not|never) sell\b|"
    r"\b(?:won't|will not) (?:lose|go wrong|fail)\b",
    re.IGNORECASE,
)
CAPITALISED = re.compile(r"(?<![\w'&/])[A-Z][A-Za-z'&]*")
OWN_WORDS = frozenset({"I", "I'm", "I'll", "I've", "I'd", "USD", "P&L"})


def beyond_the_facts(text: str, names: frozenset[str]) -> str | None:
    """What a sentence says that no fact sheet holds: a forecast or advice, or a name (a
    capitalised word inside the sentence that is not one of ``names``)."""
    said = FORECAST.search(text) or ADVICE_SAID.search(text)
    if said:
        return f"forecasts or advises ({said.group()!r})"
    for match in CAPITALISED.finditer(text):
        before = text[: match.start()].rstrip(" \"'\u201c\u2018([*")
        if before and before[-1] not in ".!?:;\n" and match.group() not in names:
            return f"names {match.group()!r}, which is not in the facts"
    return None


ASSET_NAMES: dict[str, tuple[str, ...]] = {
    "BTC": ("Bitcoin",),
    "ETH": ("Ethereum", "Ether"),
    "SOL": ("Solana",),
    "DOGE": ("Dogecoin",),
    "XRP": ("Ripple",),
    "ADA": ("Cardano",),
    "LTC": ("Litecoin",),
}
"""What people call a symbol's base asset: as much a fact of the tick as the symbol."""


def names_in(*texts: str) -> frozenset[str]:
    """The capitalised words of ``texts`` (the facts given, the persona's card), and 'I'."""
    words = {w for text in texts for w in re.findall(r"[A-Za-z][A-Za-z'&]*", text)}
    words |= {name for word in list(words) for name in ASSET_NAMES.get(word, ())}
    return frozenset(w for w in words if any(c.isupper() for c in w)) | OWN_WORDS


def unsupported_claim(sentence: str) -> str | None:
    """What the sentence claims that no tick's facts support, or None."""
    for what, pattern in (
        ("a cause", CAUSE),
        ("a named party", NAMED_PARTY),
        ("an event", EVENT),
        ("a judgement on the desk's results", RESULTS),
        ("a judgement on the desk's conduct", CONDUCT),
    ):
        match = pattern.search(sentence)
        if match:
            return f"claims {what} ({match.group().strip()!r}) the facts do not hold"
    return None


@dataclass(frozen=True)
class PersonaFacts:
    """What the persona may talk about: the decision and what became of it."""

    symbol: str
    action: Action
    quantity: Decimal
    price: Decimal
    confidence: float
    executed: bool
    fill_price: Decimal | None = None
    realized_pnl: Decimal | None = None
    rejection: str | None = None
    also_true: tuple[Decimal, ...] = ()
    """Other numbers of the desk a sentence may state (an answer to a viewer: equity, limits)."""

    @property
    def base(self) -> str:
        """The traded asset, e.g. BTC."""
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        """The pricing currency, e.g. USDT."""
        return self.symbol.split("/")[1]

    def numbers(self) -> list[Decimal]:
        """Every value a sentence may state (percentages as their number of percent)."""
        values = [self.quantity, self.price, Decimal(str(round(self.confidence * 100, 1)))]
        values += [v for v in (self.fill_price, self.realized_pnl) if v is not None]
        values += self.also_true
        if self.realized_pnl is not None:
            values.append(abs(self.realized_pnl))
        if self.rejection:
            # the gate's reason is a fact of the tick (the fallback sentence quotes it)
            parsed = (_parse_number(m.group()) for m in NUMBER.finditer(self.rejection))
            values += [v for v in parsed if v is not None]
        return values


def _parse_number(text: str) -> Decimal | None:
    cleaned = text.replace(",", "").replace("$", "").replace("%", "").strip()
    multiplier = Decimal(1)
    if cleaned[-1:] in "kK":
        cleaned, multiplier = cleaned[:-1].strip(), Decimal(1000)
    try:
        return Decimal(cleaned) * multiplier
    except ArithmeticError:
        return None


def _matches(stated: Decimal, facts: list[Decimal]) -> bool:
    for fact in facts:
        # Allow the rounding a person would use when saying it: 0.5%, or half the last stated
        # digit ("1" is 0.5 to 1.5, never a 0.0168 quantity).
        exponent = stated.as_tuple().exponent
        step = Decimal(10) ** exponent if isinstance(exponent, int) else Decimal(0)
        tolerance = max(abs(fact) * Decimal("0.005"), step / 2)
        if abs(abs(stated) - abs(fact)) <= tolerance:
            return True
    return False


def _in_base_units(after: str, facts: PersonaFacts) -> bool:
    """Whether the text right after a number names the traded asset ('0.5 BTC', '3 ETH/BUSD')."""
    return re.match(rf"\s*{re.escape(facts.base)}\b", after, re.IGNORECASE) is not None


def check_sentence(sentence: str, facts: PersonaFacts) -> str | None:
    """None when the sentence is grounded in ``facts``, else what does not match."""
    allowed = facts.numbers()
    for match in NUMBER.finditer(sentence):
        value = _parse_number(match.group())
        if value is None or not _matches(value, allowed):
            return f"states {match.group().strip()!r}, which is not in the decision"
        if _in_base_units(sentence[match.end() :], facts) and not _matches(value, [facts.quantity]):
            # a number said in the traded asset is a size: a price or a share called a size
            # is a true number in a false role
            return f"states {match.group().strip()!r} {facts.base} but the size is not that"
    symbols = {facts.base, facts.quote}
    for base, quote in PAIR.findall(sentence):
        if {base, quote} - symbols:
            return f"names {base}/{quote} but the decision is on {facts.symbol}"
    for ticker in TICKER.findall(sentence):
        if ticker.upper() not in symbols and ticker.upper() != "USD":
            return f"names {ticker.upper()} but the decision is on {facts.symbol}"
    for side, pattern in SIDE_WORDS.items():
        if pattern.search(sentence) and facts.action is not side:
            return f"talks about a {side.value} but the decision is {facts.action.value}"
    if FILL_WORDS.search(sentence) and not facts.executed:
        return "says an order filled but nothing was executed"
    if NOT_FILLED.search(sentence) and facts.executed:
        return "says nothing filled but the order was executed"
    # the gate's reason is a fact of the tick, quoted word for word by the fallback line
    # ("below the exchange minimum"): only what the sentence says beyond it is judged
    return unsupported_claim(
        sentence.replace(facts.rejection, " ") if facts.rejection else sentence
    )


ECHO_WORDS = 6
"""A run of this many words of the system prompt in an answer is a prompt leak."""


@functools.cache  # one template, read for every answer
def instruction_runs(instructions: str) -> frozenset[str]:
    """Every run of :data:`ECHO_WORDS` words in the template's fixed text (the facts filled
    into it may be quoted, so the placeholders split it)."""
    runs: set[str] = set()
    for fixed in re.split(r"\{\w+\}", instructions):
        words = words_of(fixed)
        runs.update(" ".join(words[i : i + ECHO_WORDS]) for i in range(len(words) - ECHO_WORDS + 1))
    return frozenset(runs)


def words_of(text: str) -> list[str]:
    """The lower-case words of ``text``."""
    return re.findall(r"[a-z0-9']+", text.lower())


def echoes(text: str, runs: frozenset[str]) -> str | None:
    """Whether ``text`` repeats the prompt's own instructions (what a prompt injection asks
    for)."""
    said = " ".join(words_of(text))
    if any(run in said for run in runs):
        return "repeats the instructions it was given"
    return None


def format_quantity(value: Decimal) -> str:
    """A quantity without trailing zeros (0.012000 -> 0.012)."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_price(value: Decimal) -> str:
    """A price with thousands separators and two decimals."""
    return f"{value:,.2f}"


def fallback_sentence(facts: PersonaFacts) -> str:
    """The decision said plainly; grounded by construction."""
    price = format_price(facts.fill_price or facts.price)
    qty = format_quantity(facts.quantity)
    if facts.executed and facts.action is Action.BUY:
        return f"Bought {qty} {facts.base} at {price} {facts.quote}."
    if facts.executed and facts.action is Action.SELL:
        pnl = ""
        if facts.realized_pnl is not None:
            pnl = f", realised P&L {facts.realized_pnl:+,.2f} {facts.quote}"
        return f"Sold {qty} {facts.base} at {price} {facts.quote}{pnl}."
    if facts.action is not Action.HOLD:
        verb = "buy" if facts.action is Action.BUY else "sell"
        why = f": {facts.rejection}" if facts.rejection else ""
        return f"Wanted to {verb} {qty} {facts.base}, but the risk gate said no{why}."
    return f"Holding on {facts.symbol} at {price} {facts.quote} for now."

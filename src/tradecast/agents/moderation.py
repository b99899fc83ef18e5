"""Moderation of persona sentences before they reach a stream.

Two kinds of rule: a blocklist of words that survives obfuscation (leetspeak, separators
between letters, repeated letters, accents), and finance rules (no promised returns, no
personal advice, no secrets). A blocked sentence is never emitted; the reason is logged.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

LEET = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "8": "b",
        "9": "g",
        "@": "a",
        "$": "s",
        "!": "i",
        "|": "i",
        "+": "t",
        "€": "e",
    }
)

DEFAULT_BLOCKLIST: tuple[str, ...] = (
    "fuck",
    "shit",
    "bitch",
    "cunt",
    "asshole",
    "bastard",
    "retard",
    "nigger",
    "faggot",
    "whore",
    "slut",
    "kys",
    "killyourself",
    "scam",
    "ponzi",
    "rugpull",
)

FINANCE_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "promises returns",
        re.compile(
            r"\b(guarantee[sd]?|guaranteeing|risk[- ]?free|can(?:no|')t (?:lose|fail|go wrong)|"
            r"sure thing|free money|100 ?% (?:sure|certain|safe|profit)|will (?:definitely|surely) "
            r"(?:go up|rise|moon|pump|profit)|easy money|no way (?:to|you can) lose|double your)",
            re.IGNORECASE,
        ),
    ),
    (
        "personal advice",
        re.compile(
            r"\b(you should (?:buy|sell|invest|put|get|go all)|i (?:recommend|advise) (?:you|that "
            r"you)|buy now|sell now|invest your|put your (?:savings|money|paycheck|rent)|"
            r"take (?:out )?a loan|mortgage your|this is financial advice|not financial advice but "
            r"buy|go all[- ]in|remortgage|max out your)",
            re.IGNORECASE,
        ),
    ),
    (
        "leaks secrets",
        re.compile(
            r"(api[_ -]?key|secret[_ -]?key|bearer\s+[a-z0-9]|password|private key|seed phrase|"
            r"TRADECAST_[A-Z_]+|sk-[A-Za-z0-9]{8,})",
            re.IGNORECASE,
        ),
    ),
)


@dataclass(frozen=True)
class ModerationResult:
    """Whether a sentence may be emitted, and why not."""

    allowed: bool
    reason: str | None = None


def normalise(text: str) -> str:
    """Lower-case letters only, with obfuscations undone: 'F.u-c_k', 'fvck', 'ph4ck' -> base."""
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).lower()
    folded = folded.translate(LEET).replace("ph", "f").replace("vv", "w")
    letters = re.sub(r"[^a-z]", "", folded)
    return re.sub(r"(.)\1+", r"\1", letters)


SPACED_RUN = re.compile(r"(?<![\w@$])(?:[\w@$][ .\-_*]){2,}[\w@$](?![\w@$])")


def _spaced_runs(text: str) -> list[str]:
    """Letters written apart ('s c a m', 'g-u-a-r-d') joined back together."""
    return [normalise(run.group()) for run in SPACED_RUN.finditer(text)]


def _deobfuscate_spacing(text: str) -> str:
    """'g u a r a n t e e d' -> 'guaranteed' so the finance rules see through spacing."""
    return SPACED_RUN.sub(lambda m: re.sub(r"[ .\-_*]", "", m.group()), text)


def _matches_word(form: str, word: str) -> bool:
    if form in (word, word + "s"):
        return True
    return len(word) >= 5 and form.startswith(word)


class Moderator:
    """Checks persona sentences against the blocklist and the finance rules."""

    def __init__(self, blocklist: tuple[str, ...] = DEFAULT_BLOCKLIST) -> None:
        self._blocked = tuple(sorted({normalise(word) for word in blocklist if word.strip()}))

    def check(self, sentence: str) -> ModerationResult:
        """Allow the sentence, or say which rule blocks it."""
        for rule, pattern in FINANCE_RULES:
            if pattern.search(sentence) or pattern.search(_deobfuscate_spacing(sentence)):
                return ModerationResult(False, rule)
        words = [normalise(w) for w in re.split(r"\s+", sentence) if w]
        runs = _spaced_runs(sentence)
        whole = normalise(sentence)
        for word in self._blocked:
            if (
                any(_matches_word(form, word) for form in words)
                or any(word in run for run in runs)
                or (len(word) >= 6 and word in whole)
            ):
                return ModerationResult(False, f"blocked word ({word[0]}***)")
        return ModerationResult(True)

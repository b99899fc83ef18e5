"""Moderation of persona sentences before they reach a stream.

Two kinds of rule: a blocklist of words that survives obfuscation (leetspeak, separators
between letters, repeated letters, accents), and finance rules (no promised returns, no
personal advice, no secrets). A blocked sentence is never emitted; the reason is logged.
"""

from __future__ import annotations

import os
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

CONFUSABLES = str.maketrans(
    {
        # Cyrillic and Greek letters that look like Latin ones ('ѕсаm' is 'scam')
        "а": "a",
        "в": "b",
        "е": "e",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "ѕ": "s",
        "і": "i",
        "ј": "j",
        "ԁ": "d",
        "ɡ": "g",
        "α": "a",
        "ε": "e",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "μ": "u",
        "ƒ": "f",
    }
)
INVISIBLE = re.compile(r"[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")
MASK = re.compile(r"[*#]+")

DEFAULT_BLOCKLIST: tuple[str, ...] = (
    "fuck",
    "shit",
    "bitch",
    "cunt",
    "asshole",
    "bastard",
    "retard",
    "nigger",
    "nigga",
    "nword",
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
            r"\b(you (?:\w+ )?(?:should|must|need to|have to|ought to) (?:\w+ )?"
            r"(?:buy|sell|invest|put|get|go all|ape)|i (?:recommend|advise) (?:you|that "
            r"you)|buy now|sell now|invest your|put your (?:savings|money|paycheck|rent)|"
            r"take (?:out )?a loan|mortgage your|this is financial advice|not financial advice but "
            r"buy|go all[- ]in|remortgage|max out your)",
            re.IGNORECASE,
        ),
    ),
    (
        "talks about race or identity",
        re.compile(
            r"\b(racial\w*|racis\w+|ethnic\w*|n[- ]?word|slurs?|black people|white people|"
            r"asian people|jews?|jewish|muslims?|immigrants?)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "leaks secrets",
        re.compile(
            r"(api[_ -]?key|secret[_ -]?key|bearer\s+[a-z0-9]|password|passphrase|passwd|"
            r"private key|seed phrase|access token|auth token|credentials?\b|"
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


def fold(text: str) -> str:
    """Lower case with accents, look-alike letters and invisible characters undone."""
    folded = unicodedata.normalize("NFKD", INVISIBLE.sub("", text))
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).lower()
    return folded.translate(CONFUSABLES)


def normalise(text: str) -> str:
    """Lower-case letters only, with obfuscations undone: 'F.u-c_k', 'ph4ck', 'ѕсаm' -> base."""
    folded = fold(text).translate(LEET).replace("ph", "f").replace("vv", "w")
    letters = re.sub(r"[^a-z]", "", folded)
    return re.sub(r"(.)\1+", r"\1", letters)


def _masked(word: str) -> re.Pattern[str] | None:
    """'f*ck' -> a pattern where each mask stands for one or two letters (None: no mask)."""
    folded = fold(word).translate(LEET)
    if not MASK.search(folded):
        return None
    parts = [re.sub(r"[^a-z]", "", part) for part in MASK.split(folded)]
    if sum(len(p) for p in parts) < 2:
        return None
    return re.compile("[a-z]{1,2}".join(map(re.escape, parts)) + "s?")


def _finance_forms(sentence: str) -> tuple[str, ...]:
    """The sentence as written, with spacing undone, and with leetspeak undone."""
    folded = fold(sentence)
    return (sentence, _deobfuscate_spacing(sentence), folded, folded.translate(LEET))


def configured_secrets() -> tuple[str, ...]:
    """The API keys configured in the environment (``TRADECAST_API_KEYS`` and
    ``TRADECAST_API__API_KEYS``): a sentence quoting one is a leak, whatever it says."""
    found: list[str] = []
    for name in ("TRADECAST_API_KEYS", "TRADECAST_API__API_KEYS"):
        for entry in os.environ.get(name, "").split(","):
            key = entry.partition(":")[2].strip()
            if len(key) >= 6:
                found.append(key)
    return tuple(found)


CREDENTIAL = re.compile(r"[A-Za-z0-9_\-+/=~.]{24,}")
DECISION_ID = re.compile(r"[A-Z0-9]+-\d{8}T\d{4}")


def _looks_like_credential(sentence: str) -> bool:
    """A long token mixing letters and digits (a generated key, a token), not a decision id."""
    for match in CREDENTIAL.finditer(sentence):
        token = match.group().strip(".-")
        if len(token) < 24 or DECISION_ID.fullmatch(token):
            continue
        classes = sum(bool(re.search(pattern, token)) for pattern in (r"[a-z]", r"[A-Z]", r"\d"))
        if classes >= 2 and re.search(r"\d", token) and re.search(r"[A-Za-z]", token):
            return True
    return False


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

    def __init__(
        self,
        blocklist: tuple[str, ...] = DEFAULT_BLOCKLIST,
        secrets: tuple[str, ...] | None = None,
    ) -> None:
        self._blocked = tuple(sorted({normalise(word) for word in blocklist if word.strip()}))
        self._secrets = configured_secrets() if secrets is None else secrets

    def check(self, sentence: str) -> ModerationResult:
        """Allow the sentence, or say which rule blocks it."""
        forms = _finance_forms(sentence)
        for rule, pattern in FINANCE_RULES:
            if any(pattern.search(form) for form in forms):
                return ModerationResult(False, rule)
        compact = re.sub(r"[\s\-_.]", "", fold(sentence))
        if any(re.sub(r"[\s\-_.]", "", secret.lower()) in compact for secret in self._secrets):
            return ModerationResult(False, "leaks secrets")
        if _looks_like_credential(sentence):
            return ModerationResult(False, "leaks secrets")
        blocked = self.blocked_word(sentence)
        if blocked is not None:
            return ModerationResult(False, f"blocked word ({blocked[0]}***)")
        return ModerationResult(True)

    def blocked_word(self, text: str, *, anywhere: bool = False) -> str | None:
        """The first blocklisted word ``text`` contains, however obfuscated, or None.

        ``anywhere``: also inside a longer word, whatever the word's length (for names, where
        'xXslurXx' is one word; a sentence would lose 'Scunthorpe')."""
        raw_words = [w for w in re.split(r"\s+", INVISIBLE.sub("", text)) if w]
        words = [normalise(w) for w in raw_words]
        words += [w.replace("v", "u") for w in words if "v" in w]
        masked = [p for p in map(_masked, raw_words) if p is not None]
        runs = _spaced_runs(text)
        whole = normalise(text)
        for word in self._blocked:
            if (
                any(_matches_word(form, word) for form in words)
                or any(pattern.fullmatch(word) for pattern in masked)
                or any(word in run for run in runs)
                or ((anywhere or len(word) >= 6) and word in whole)
            ):
                return word
        return None

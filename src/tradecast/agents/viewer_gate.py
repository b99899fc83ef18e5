"""Moderation in: what a viewer's chat message must pass before the persona sees it.

Plain code, no model. Every check reads the message as a viewer sees it: invisible
characters dropped, look-alike letters (Cyrillic, Greek, full-width, bold) read as Latin ones.
A message that fails is neither answered nor shown anywhere; only its reason, the viewer and
a digest of its text are logged. Mods and the broadcaster (by the platform's own tags, never
by what the text or the display name claims) may mute a viewer or pause the answers with a
chat command; viewers have no control at all.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
import unicodedata
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from tradecast.agents.moderation import DEFAULT_BLOCKLIST, Moderator, fold, normalise
from tradecast.domain.viewers import ViewerMessage

Clock = Callable[[], float]

VIEWER_INSULTS: tuple[str, ...] = ("idiot", "moron", "dumbass", "stfu", "loser")
"""Insults no viewer's message may put on the stream (beside the persona's blocklist, which
says what the persona itself may never say)."""
FILLERS = frozenset("\u034f\u115f\u1160\u2800\u3164\uffa0")
"""Characters that show as nothing but are not format characters (blank Hangul and Braille)."""
LOOKALIKES = str.maketrans(
    # letters that pass for Latin ones and moderation's own table does not undo
    dict(zip("һҺгГӏӀսօցԛԝүғпшɑıʏ", "hhrrlluogqwyfnwaiy", strict=True))
)
LINK_TLDS = (
    "com|net|org|io|gg|tv|xyz|ly|co|me|app|link|ru|cn|info|biz|site|top|club|live|shop|fun|"
    "pro|finance|exchange|money|cash|online|store|vip|win|bet|cc|pw|to|su|uk|de|us|ai|so|sh|"
    "ws|fm|lol|click|icu|buzz|cam|wtf|ninja|tech|space|website|cloud|world|today|news|art|dev|"
    "page|games?|chat|social|onion|nft|wallet|crypto|example"
)
SPACED_TLDS = "com|net|org|io|gg|tv|xyz|ru|cn|ly|uk|de|biz|info|cc|pw|icu|onion"
"""TLDs that are no English word: ``example . com`` is a link, ``thanks. me too`` is not."""
LINK = re.compile(
    r"[a-z][a-z0-9+.-]{1,15}://|\bh[xt]{2}ps?:|\bwww\s?[.\u3002\uff0e\uff61]|"
    rf"\b[\w-]+[.\u3002\uff0e\uff61](?:{LINK_TLDS})\b|"
    rf"\b[\w-]+\s?[.\u3002\uff0e\uff61]\s?(?:{SPACED_TLDS})\b|"
    rf"\b[\w-]+\s?(?:\(dot\)|\[dot\]|\{{dot\}}|\[\.\]|\(\.\)|\{{\.\}})\s?(?:[a-z]{{2,10}})\b|"
    r"\b\d{1,3}(?:\.\d{1,3}){3}\b",
    re.IGNORECASE,
)
INJECTION = re.compile(
    r"(ignore|disregard|forget|override|bypass)\b.{0,30}\b(rules?|instructions?|prompts?|"
    r"guidelines?|filters?|previous|above|programming)|system prompt|"
    # (not "DAN" on its own: the check reads folded text, and Dan is a viewer's name)
    r"\byou are now\b|\bact as\b|\bpretend\b|\bjailbreak|\bdeveloper mode\b|\bdan mode\b|"
    r"repeat after me|\bsay (?:the word|exactly|this)\b|\bnew instructions?\b|<\||\|>|```|"
    r"\[/?(?:system|inst|assistant|user)\]|#{2,}\s*(?:system|instruction)|"
    r"\b(?:reveal|print|show|tell me) (?:your|the) (?:prompt|instructions|rules|api key|keys?)|"
    # a turn of a conversation written out ("system: ...", "User: hi\nAssistant: ...")
    r"^\s*(?:system|assistant|user|developer|instructions?)\s*:|"
    r"\n\s*(?:system|assistant|user)\s*:|"
    r"\brole[- ]?play|\bfrom now on\b|\bnew (?:rules?|policy|mode)\b|\boverrid(?:e|ing)\b|"
    r"\b(?:respond|reply|answer)(?: only)? with\b|\b(?:respond|reply|answer) only\b|"
    r"\b(?:complete|finish|continue) (?:the|this|my) (?:sentence|phrase|text|line)|"
    r"\btranslate (?:this|that|it|the following|to|into)\b|\bunfiltered\b|\bunrestricted\b|"
    r"\b(?:say|type|write|output|print|repeat)\s*[:'\"\u201c\u2018]|"
    r"\b(?:admin|mod|system|developer|dev) (?:note|override|message|mode|command)\b|"
    r"\brules (?:are|r) (?:off|disabled|suspended|gone)\b|"
    r"\b(?:you were|were you) (?:told|instructed|programmed|prompted)\b|"
    r"\b(?:your|\w+'s) (?:dev|developer|creator|owner|programmer|maker)s? "
    r"(?:says?|said|told|wants?|asked|needs?)\b|\byour (?:instructions|prompt)\b",
    re.IGNORECASE,
)
ROLES = r"(?:mod|moderator|admin|streamer|broadcaster|operator|owner|dev|developer)"
IMPERSONATION = re.compile(
    r"\b(?:i am|i'm|im|this is|it's|its) (?:the |your |a )?(?:streamer|broadcaster|mod|"
    r"moderator|admin|operator|owner|dev|developer)\b|"
    r"\b(?:streamer|broadcaster|mod|moderator|admin|operator)s? (?:here|says|said|approved|"
    r"orders?|wants)\b|"
    # a fake badge or role tag before the message: [MOD], (mod), 【MOD】, MOD:, admin |
    r"^\s*[\[(<{\u3010\u3014\u300c\u300e|]\s*(?:m[o0]d|admin|system|streamer|broadcaster|"
    r"operator|owner|staff)s?\s*[\])>}\u3011\u3015\u300d\u300f|]|"
    r"^\s*(?:m[o0]ds?|moderators?|admin|streamer|broadcaster|operator|owner|staff)\s*[:|>-]|"
    rf"\bas (?:a|an|the|your|one of the) {ROLES}s?\b|\bon behalf of\b|"
    rf"\b(?:message|announcement|note|word|order|update) from (?:the |your |a )?"
    rf"(?:stream team|team|{ROLES}s?)\b|"
    rf"\b{ROLES} (?:speaking|talking)\b|"
    r"\bi (?:run|own|operate|manage|control|moderate) (?:this|the) (?:desk|stream|channel|bot|"
    r"chat)\b",
    re.IGNORECASE,
)
ROLE_WORDS = frozenset(
    {
        "mod",
        "mods",
        "moderator",
        "admin",
        "administrator",
        "streamer",
        "broadcaster",
        "operator",
        "staff",
        "official",
    }
)
"""Words that claim a role when they are part of a display name ('[MOD] ana', 'AdminDana')."""
MAX_TRACKED_VIEWERS = 10_000
COMMAND = re.compile(r"^!(\w{1,20})(?:\s+@?([\w]{1,40}))?\s*$")
MAX_COMBINING = 8
"""More combining marks than this is 'zalgo' text, made to break overlays."""
MIN_CAPS_LETTERS = 12
MAX_CAPS_SHARE = 0.7

Kind = Literal["question", "command", "rejected"]


@dataclass(frozen=True)
class GateVerdict:
    """What becomes of one message: answered (``question``), obeyed (``command``: a mod's),
    or dropped unseen (``rejected``, with why)."""

    kind: Kind
    reason: str | None = None
    command: str | None = None
    target: str | None = None


@dataclass(frozen=True)
class GateLimits:
    """Flood limits: messages per ``window_s``, per viewer and per channel."""

    per_viewer: int = 3
    per_channel: int = 30
    window_s: float = 30.0


class SlidingWindow:
    """How many events happened in the last ``window_s`` seconds (injected clock)."""

    def __init__(self, limit: int, window_s: float, clock: Clock) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._times: deque[float] = deque()

    def allow(self) -> bool:
        """Count one event if the window has room; whether it had."""
        now = self._clock()
        while self._times and now - self._times[0] >= self.window_s:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True

    def give_back(self) -> None:
        """Undo the last counted event (it did not happen after all)."""
        if self._times:
            self._times.pop()


def digest(text: str) -> str:
    """A short fingerprint of a message, for logs that must not repeat what it said."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


MASK = re.compile(r"[*#]+")
NAME_LEET = str.maketrans({"0": "O", "1": "I", "3": "E", "4": "A", "5": "S", "7": "T", "@": "A"})


def _visible(text: str) -> str:
    """``text`` without invisible characters and with the look-alike letters moderation's own
    table misses mapped to Latin ones (what a reader sees)."""
    shown = "".join(ch for ch in text if unicodedata.category(ch) != "Cf" and ch not in FILLERS)
    return unicodedata.normalize("NFKC", shown).translate(LOOKALIKES)


def _name_words(name: str) -> frozenset[str]:
    """The words of a display name, lower case: split at anything not a letter and between
    'camelCase' words ('[M0D] ana', 'AdminDana', 'TheBroadcaster')."""
    spelled = name.translate(NAME_LEET)
    camel = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+", spelled)
    chunks = re.findall(r"[a-z]+", fold(spelled))
    return frozenset([w.lower() for w in camel] + chunks)


def _persona_claim(persona_name: str) -> re.Pattern[str] | None:
    """Text that claims to be the persona ('kira candle here', "i'm the real kira")."""
    words = re.findall(r"[a-z0-9]+", fold(persona_name))
    if not words:
        return None
    name = r"[\s_.-]*".join(map(re.escape, words))
    return re.compile(
        rf"\b(?:i am|i'm|im|this is|it's|its) (?:the real |really |actually )?{name}\b(?!')|"
        rf"^\W*{name}\s+here\b|\b{name}'s (?:owner|creator|dev|developer|operator|boss|"
        rf"manager|handler|mod)\b"
    )


def _shouting(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    if len(letters) < MIN_CAPS_LETTERS:
        return False
    return sum(c.isupper() for c in letters) / len(letters) > MAX_CAPS_SHARE


def _garbled(text: str) -> bool:
    return sum(unicodedata.combining(c) > 0 for c in text) > MAX_COMBINING


class _WordList:
    """Words a message may not contain, however written: the persona's obfuscation-proof
    matcher, and masks ('n*gg*r', 'k*ll y**rs*lf')."""

    def __init__(self, words: tuple[str, ...]) -> None:
        self._moderator = Moderator(words, secrets=())
        self._forms = tuple(sorted({normalise(word) for word in words if word.strip()}))

    def in_message(self, text: str, display_name: str) -> bool:
        """Whether the text or the display name (where a word may hide inside a longer one)
        holds one of the words."""
        return (
            self._moderator.blocked_word(text) is not None
            or self._moderator.blocked_word(display_name, anywhere=True) is not None
            or self._masked(text)
            or self._masked(display_name)
        )

    def _masked(self, text: str) -> bool:
        """Each mask stands for one to three letters; doubled letters count once (as in the
        word list). Two neighbouring words are also read as one ('k*ll y**rs*lf')."""
        tokens = text.split()
        for candidate in (*tokens, *("".join(pair) for pair in itertools.pairwise(tokens))):
            if not MASK.search(candidate):
                continue
            parts = [normalise(part) for part in MASK.split(candidate)]
            if sum(map(len, parts)) < 2:
                continue
            pattern = re.compile("[a-z]{1,3}".join(map(re.escape, parts)) + "s?")
            if any(pattern.fullmatch(form) for form in self._forms):
                return True
        return False


@dataclass
class ViewerGate:
    """Admits, obeys or rejects viewer messages; keeps the mute list and the flood windows.

    Args:
        blocklist: words never to let through (the default blocklist, the card's and the
            settings' own, checked through the persona's obfuscation-proof matcher).
        persona_name: a viewer whose display name is the persona's is an impersonator.
        limits: the flood limits.
        clock: seconds, monotonic (tests inject one).
    """

    blocklist: tuple[str, ...] = DEFAULT_BLOCKLIST
    persona_name: str = ""
    limits: GateLimits = field(default_factory=GateLimits)
    clock: Clock = time.monotonic
    muted: set[str] = field(default_factory=set)
    paused: bool = False

    def __post_init__(self) -> None:
        self._blocked = _WordList(self.blocklist)
        self._insults = _WordList(VIEWER_INSULTS)
        self._persona = normalise(self.persona_name)
        self._claims_persona = _persona_claim(self.persona_name)
        # per viewer: the last message and the flood window, for the most recent viewers only
        # (a chat of millions must not grow this without end; one not seen among the last
        # MAX_TRACKED_VIEWERS is not flooding)
        self._viewers: OrderedDict[str, tuple[str, SlidingWindow]] = OrderedDict()
        self._channels: dict[str, SlidingWindow] = defaultdict(self._channel_window)

    def _viewer(self, viewer: str) -> tuple[str, SlidingWindow]:
        seen = self._viewers.pop(viewer, None)
        if seen is None:
            window = SlidingWindow(self.limits.per_viewer, self.limits.window_s, self.clock)
            seen = ("", window)
            if len(self._viewers) >= MAX_TRACKED_VIEWERS:
                self._viewers.popitem(last=False)
        self._viewers[viewer] = seen
        return seen

    def _channel_window(self) -> SlidingWindow:
        return SlidingWindow(self.limits.per_channel, self.limits.window_s, self.clock)

    def admit(self, message: ViewerMessage) -> GateVerdict:
        """The verdict on ``message`` (a mod's command is applied here)."""
        viewer = f"{message.platform}:{message.viewer_id}"
        command = COMMAND.match(message.text.strip())
        if command:
            return self._command(message, command.group(1).lower(), command.group(2))
        reason = self._content_problem(message) or self._flood_problem(message, viewer)
        if reason is not None:
            return GateVerdict("rejected", reason)
        # a mod mutes by the name shown in chat
        if f"{message.platform}:{message.display_name.lower()}" in self.muted:
            return GateVerdict("rejected", "the viewer is muted")
        if self.paused:
            return GateVerdict("rejected", "answers are paused by a mod")
        return GateVerdict("question")

    def _content_problem(self, message: ViewerMessage) -> str | None:
        text = message.text
        if not text.strip():
            return "empty"
        shown, name = _visible(text), _visible(message.display_name)
        folded = fold(shown)  # look-alike letters and accents undone, lower case
        claims = bool(IMPERSONATION.search(folded)) or bool(
            self._claims_persona and self._claims_persona.search(folded)
        )
        checks: tuple[tuple[bool, str], ...] = (
            (self._blocked.in_message(shown, name), "a blocked word"),
            (bool(LINK.search(folded)), "a link"),
            (bool(INJECTION.search(folded)), "an attempt to instruct the persona"),
            (claims, "claims to speak for the stream"),
            (self._impersonates(message), "a display name that is not theirs to use"),
            (_shouting(text), "all caps"),
            (_garbled(text), "garbled text"),
            (self._insults.in_message(shown, name), "an insult"),
        )
        return next((why for failed, why in checks if failed), None)

    def _impersonates(self, message: ViewerMessage) -> bool:
        if message.is_broadcaster:
            return False
        shown = _visible(message.display_name)
        name = normalise(shown)
        persona = self._persona
        if persona and (name == persona or (len(persona) >= 6 and persona in name)):
            return True
        return not message.is_mod and bool(ROLE_WORDS & _name_words(shown))

    def _flood_problem(self, message: ViewerMessage, viewer: str) -> str | None:
        said = re.sub(r"\W+", " ", fold(message.text)).strip()
        last, window = self._viewer(viewer)
        if last == said:
            return "the same message again"
        self._viewers[viewer] = (said, window)
        if message.is_mod or message.is_broadcaster:
            return None
        if not window.allow():
            return "too many messages from one viewer"
        if not self._channels[f"{message.platform}:{message.channel}"].allow():
            return "the channel is flooding"
        return None

    def _command(self, message: ViewerMessage, name: str, target: str | None) -> GateVerdict:
        if not (message.is_mod or message.is_broadcaster):
            return GateVerdict("rejected", "chat commands are for mods")
        key = f"{message.platform}:{(target or '').lower()}"
        if name == "mute" and target:
            self.muted.add(key)
        elif name == "unmute" and target:
            self.muted.discard(key)
        elif name == "pause":
            self.paused = True
        elif name == "resume":
            self.paused = False
        else:
            # one reason for every unknown name: the counters by reason stay a fixed set
            return GateVerdict("rejected", "an unknown command", command=name)
        return GateVerdict("command", command=name, target=target)

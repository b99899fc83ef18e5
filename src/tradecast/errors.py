"""Error types users see; each message says what to do about it.

Every error tradecast raises on purpose derives from :class:`TradecastError`, so a caller can
tell a refusal from a bug, and the API maps each kind to its HTTP status in one place
(``api/errors.py``).
"""

from __future__ import annotations

from typing import Literal


class TradecastError(Exception):
    """Base of every error tradecast raises on purpose."""


class SettingsError(TradecastError, ValueError):
    """A setting is invalid; the message names the environment variable(s) to fix."""


class NotFound(TradecastError):
    """What was asked for does not exist (answered as 404): no such decision, thread or pending
    approval. Not a ``KeyError``, so a lookup bug elsewhere never reads as a missing thing."""


class Conflict(TradecastError):
    """The request cannot be done in the current state (answered as 409)."""


class DeskConflict(Conflict, ValueError):
    """The desk cannot do that in its current state (answered as 409)."""


class Unavailable(TradecastError):
    """A service the desk depends on cannot be reached (the message says why)."""


class StoreUnavailable(Unavailable, RuntimeError):
    """The desk store's database cannot be reached (the message says why)."""


class ArchiveUnavailable(Unavailable, RuntimeError):
    """The event archive cannot be reached (the message says why)."""


class TickLockError(Conflict):
    """The tick lock could not be taken: no tick may run now."""


class TickBusy(TickLockError):
    """Another replica is still ticking this desk."""

    def __init__(self, holder: str | None, waited_s: float) -> None:
        super().__init__(
            f"another replica ({holder or 'unknown'}) has been ticking this desk for more than "
            f"{waited_s:.0f} s; try again when its tick ends"
        )


class SubscriberDropped(TradecastError):
    """The subscriber fell too far behind (its queue filled up) and was cut off.

    It should reconnect with the last id it processed; nothing is lost while that id is in the
    replay buffer.
    """


LLMErrorKind = Literal["unreachable", "timeout", "unparseable", "model_missing", "backend"]


class LLMError(TradecastError):
    """A chat-model call failed; ``kind`` says how, the message says what to do."""

    def __init__(self, kind: LLMErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: LLMErrorKind = kind


class SpeechError(TradecastError):
    """Text-to-speech failed (the persona's line is still shown as a caption)."""


class MarketDataError(TradecastError):
    """Market data could not be had (unknown symbol, no bars before the time asked, ...)."""


class BrokerError(TradecastError):
    """The broker refused an order or could not record it."""


class ConfirmationRequired(Conflict):
    """A limit change loosens a limit a lot: it applies only once confirmed with ``token``
    (answered as 409 ``confirmation_required``, the token in the body)."""

    def __init__(self, token: str, message: str) -> None:
        super().__init__(message)
        self.token = token


class RiskLimitsError(TradecastError, ValueError):
    """A risk limit was set to something invalid; the message names the limit and the rule."""


class MemoryStoreError(TradecastError):
    """The vector memory refused the input or failed."""


class EvalError(TradecastError):
    """The eval could not run or its books do not add up; the message says why."""


class ChatSourceError(TradecastError):
    """A livestream chat source cannot go on: credentials rejected, the chat ended or is
    disabled, the channel is gone. Reconnecting would not help; the message says what to fix.
    A network blip is never one of these (the sources reconnect by themselves)."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source


class NewsError(TradecastError):
    """A news source cannot be used as configured (a missing or malformed file, a bad
    setting); the message says what to fix. A feed that is down is never one of these."""

"""Error types users see; each message says what to do about it."""

from __future__ import annotations

from typing import Literal


class TradecastError(Exception):
    """Base of every error tradecast raises on purpose."""


LLMErrorKind = Literal["unreachable", "timeout", "unparseable", "model_missing", "backend"]


class LLMError(TradecastError):
    """A chat-model call failed; ``kind`` says how, the message says what to do."""

    def __init__(self, kind: LLMErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: LLMErrorKind = kind


class MarketDataError(TradecastError):
    """Market data could not be had (unknown symbol, no bars before the time asked, ...)."""


class BrokerError(TradecastError):
    """The broker refused an order or could not record it."""


class RiskLimitsError(TradecastError, ValueError):
    """A risk limit was set to something invalid; the message names the limit and the rule."""


class MemoryStoreError(TradecastError):
    """The vector memory refused the input or failed."""

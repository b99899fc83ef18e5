"""News items as the desk reads them, and the headlines a decision saw.

Every string is bounded: a source clips what a feed sends to these lengths, so a hostile or
buggy feed can never make an item fail validation or grow a prompt without end.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from tradecast.domain.base import DomainModel, UtcDatetime

MAX_ID_CHARS = 200
MAX_TITLE_CHARS = 300
MAX_SUMMARY_CHARS = 2000
MAX_SOURCE_CHARS = 100
MAX_URL_CHARS = 2000
MAX_SYMBOLS = 20
MAX_ASSET_CHARS = 20

SentimentLabel = Literal["positive", "negative", "neutral"]
Asset = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ASSET_CHARS)]
"""A base asset's ticker, e.g. BTC."""


class NewsItem(DomainModel):
    """One article or post, with the instant it was published.

    ``first_seen_at`` is when a live source first fetched it (None in a file that does not
    record it): an item can never have been read before it was seen, whatever its feed
    claims about ``published_at``.
    """

    id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    published_at: UtcDatetime
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    summary: str = Field(default="", max_length=MAX_SUMMARY_CHARS)
    source: str = Field(min_length=1, max_length=MAX_SOURCE_CHARS)
    url: str = Field(default="", max_length=MAX_URL_CHARS)
    symbols: tuple[Asset, ...] = Field(
        default=(), max_length=MAX_SYMBOLS, description="base assets it is about, e.g. BTC"
    )
    first_seen_at: UtcDatetime | None = None

    def visible_from(self, delay: timedelta) -> datetime:
        """The first instant the desk may read this item: published (and seen), plus the
        ingestion delay."""
        seen = self.published_at if self.first_seen_at is None else self.first_seen_at
        return max(self.published_at, seen) + delay


class NewsHeadline(DomainModel):
    """A news item as one decision read it: what it was, how relevant, and its tone."""

    id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    source: str = Field(min_length=1, max_length=MAX_SOURCE_CHARS)
    url: str = Field(default="", max_length=MAX_URL_CHARS)
    published_at: UtcDatetime
    relevance: float = Field(ge=-1.0, le=1.0, description="recency-weighted similarity")
    sentiment: float = Field(ge=-1.0, le=1.0, description="-1 very negative to +1 very positive")
    sentiment_label: SentimentLabel
    sentiment_method: str = Field(min_length=1, max_length=100)

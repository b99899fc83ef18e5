"""What the desk may read of the news at an instant, ranked for the analyst.

An item is readable at ``t`` only from its publication (and first sighting) plus the
ingestion delay; nothing published later can reach a decision at ``t``, its prompt, its
ranking or its dedup. Readable items of the last ``lookback_h`` are deduplicated, embedded with
the memory's sentence model and ranked by similarity to the symbol and the market situation,
weighted by recency; the top ``k`` become a few bounded lines of the analyst's context, each
with a tone from a packaged classifier (no LLM call per item).
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from tradecast.domain import parse_symbol
from tradecast.domain.news import NewsHeadline, NewsItem
from tradecast.memory.embeddings import Embedder, Vectors
from tradecast.news.base import NewsSource
from tradecast.news.dedup import distinct_stories
from tradecast.news.sentiment import SentimentScorer, label
from tradecast.settings import NewsConfig

ASSET_NAMES: dict[str, tuple[str, ...]] = {
    "BTC": ("bitcoin",),
    "ETH": ("ethereum", "ether"),
    "SOL": ("solana",),
    "XRP": ("ripple",),
    "BNB": ("binance coin",),
    "ADA": ("cardano",),
    "DOGE": ("dogecoin",),
    "DOT": ("polkadot",),
    "LTC": ("litecoin",),
}
"""Names an article uses for a base asset besides its ticker."""
MENTION_BONUS = 0.15
"""Added to the similarity of an item that names the symbol's asset."""
OTHER_ASSET_FACTOR = 0.5
"""An item tagged with other assets only, and not naming this one, counts half."""
TITLE_CHARS = 140
MAX_CANDIDATES = 500
"""The most recently readable items a decision considers: bounds its work whatever the
feeds send (choosing them by readability keeps the choice time-safe)."""
VECTOR_CACHE = 4 * MAX_CANDIDATES


@dataclass(frozen=True)
class NewsReading:
    """What one decision read of the news."""

    headlines: tuple[NewsHeadline, ...]
    text: str
    """The lines added to the analyst's context."""
    readable: int
    """Items readable in the look-back window considered (at most 500), before dedup."""
    duplicates: int


class NewsView:
    """The time-safe, ranked view of every configured source."""

    def __init__(
        self,
        sources: Sequence[NewsSource],
        embedder: Embedder,
        sentiment: SentimentScorer,
        config: NewsConfig,
    ) -> None:
        self._sources = list(sources)
        self._embedder = embedder
        self._sentiment = sentiment
        self._config = config
        self._delay = timedelta(seconds=config.ingestion_delay_s)
        self._lookback = timedelta(hours=config.lookback_h)
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    @property
    def sources(self) -> list[str]:
        """The sources' names."""
        return [source.name for source in self._sources]

    def dropped(self) -> dict[str, int]:
        """Records the sources left out so far, by reason, summed over sources."""
        total: dict[str, int] = {}
        for source in self._sources:
            for reason, count in source.dropped().items():
                total[reason] = total.get(reason, 0) + count
        return total

    async def published_between(self, since: datetime, until: datetime) -> list[NewsItem]:
        """Every source's items published from ``since`` to ``until`` (not all readable yet)."""
        found: list[NewsItem] = []
        for source in self._sources:
            found.extend(await source.items(since, until))
        return found

    async def readable(self, at: datetime) -> list[NewsItem]:
        """Items readable at ``at`` published within the look-back, in the order they became
        readable."""
        found = await self.published_between(at - self._lookback, at)
        visible = [item for item in found if item.visible_from(self._delay) <= at]
        return sorted(visible, key=lambda i: (i.visible_from(self._delay), i.published_at, i.id))

    async def read(self, symbol: str, at: datetime, situation: str) -> NewsReading:
        """The top items for a decision on ``symbol`` at ``at`` in ``situation``.

        Args:
            symbol: the market, e.g. BTC/USDT.
            at: the decision instant (nothing readable only later is used).
            situation: the market situation text the memory is searched by.

        Returns:
            The headlines read and the context lines made of them.
        """
        readable = (await self.readable(at))[-MAX_CANDIDATES:]
        stories, duplicates = distinct_stories(readable)
        base = parse_symbol(symbol)[0]
        ranked = await self._rank(stories, base, at, situation)
        chosen = [(score, item) for score, item in ranked if score >= self._config.min_relevance]
        headlines = tuple(self._headline(item, score) for score, item in chosen[: self._config.k])
        return NewsReading(
            headlines=headlines,
            text=self._text(headlines, stories, at),
            readable=len(readable),
            duplicates=duplicates,
        )

    async def aclose(self) -> None:
        """Close every source."""
        for source in self._sources:
            await source.aclose()

    def item_texts(self, items: Sequence[NewsItem]) -> list[str]:
        """The texts items are embedded by (for warming a cache ahead of a replay)."""
        return [_embedded_text(item) for item in items]

    async def _rank(
        self, items: Sequence[NewsItem], base: str, at: datetime, situation: str
    ) -> list[tuple[float, NewsItem]]:
        if not items:
            return []
        names = " ".join(ASSET_NAMES.get(base, ()))
        query = f"{base} {names} crypto market news. {situation}"
        vectors = await self._embed([query, *(_embedded_text(i) for i in items)])
        similarity = vectors[1:] @ vectors[0]
        scored = []
        half_life_h = self._config.half_life_h
        for item, sim in zip(items, similarity, strict=True):
            age_h = max(0.0, (at - item.published_at).total_seconds() / 3600)
            mentioned = _mentions(item, base)
            score = float(sim) + (MENTION_BONUS if mentioned else 0.0)
            if item.symbols and not mentioned:
                score *= OTHER_ASSET_FACTOR
            scored.append((round(score * 0.5 ** (age_h / half_life_h), 4), item))
        return sorted(scored, key=lambda pair: (-pair[0], -pair[1].published_at.timestamp()))

    async def _embed(self, texts: list[str]) -> Vectors:
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            # the sentence model blocks for milliseconds: off the event loop
            fresh = await asyncio.to_thread(self._embedder.embed, missing)
            for text, vector in zip(missing, fresh, strict=True):
                self._vectors[text] = vector
        for text in texts:
            self._vectors.move_to_end(text)
        while len(self._vectors) > VECTOR_CACHE:
            self._vectors.popitem(last=False)
        return np.stack([self._vectors[t] for t in texts])

    def _headline(self, item: NewsItem, relevance: float) -> NewsHeadline:
        tone = self._sentiment.score(f"{item.title}. {item.summary}".strip())
        return NewsHeadline(
            id=item.id,
            title=item.title,
            source=item.source,
            url=item.url,
            published_at=item.published_at,
            relevance=max(-1.0, min(1.0, relevance)),
            sentiment=tone,
            sentiment_label=label(tone),
            sentiment_method=self._sentiment.method,
        )

    def _text(
        self, headlines: Sequence[NewsHeadline], stories: Sequence[NewsItem], at: datetime
    ) -> str:
        hours = f"{self._config.lookback_h:g}h"
        if not headlines:
            return f"News: nothing relevant published in the last {hours}."
        summaries: Mapping[str, str] = {item.id: item.summary for item in stories}
        lines = ["News published before now, most relevant first (tone -1 bad to +1 good):"]
        for headline in headlines:
            age = _age(at - headline.published_at)
            line = f"- {age} ago, {headline.source[:40]}, tone {headline.sentiment:+.2f}: "
            line += _clip(headline.title, TITLE_CHARS)
            summary = _clip(summaries.get(headline.id, ""), self._config.summary_chars)
            lines.append(f"{line}. {summary}" if summary else line)
        return "\n".join(lines)


def _embedded_text(item: NewsItem) -> str:
    return f"{item.title}. {item.summary[:300]}".strip()


def _mentions(item: NewsItem, base: str) -> bool:
    if base in item.symbols:
        return True
    text = f"{item.title} {item.summary}"
    if re.search(rf"\b{re.escape(base)}\b", text):
        return True
    lowered = text.lower()
    return any(re.search(rf"\b{re.escape(n)}\b", lowered) for n in ASSET_NAMES.get(base, ()))


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


def _age(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes}m"
    if minutes < 48 * 60:
        return f"{minutes // 60}h"
    return f"{minutes // 1440}d"

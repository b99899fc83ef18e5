"""One story once: the same article from several feeds, or the same headline re-worded.

Dedup is causal: items are taken in the order the desk could first read them, and an item is
a duplicate only of one readable earlier. A later copy therefore never hides an earlier one,
and no decision depends on an item it could not yet read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tradecast.domain.news import NewsItem
from tradecast.news.base import canonical_url

SIMILAR_TITLES = 0.6
"""Word-set overlap (Jaccard) from which two titles tell the same story."""
MIN_WORDS = 4
"""Shorter titles are compared whole: a few shared words say little."""

_STOPWORDS = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in",
        "is", "it", "its", "of", "on", "or", "the", "to", "was", "were", "with", "after",
        "over", "amid", "says", "said",
    }
)  # fmt: skip
_SUFFIX = re.compile(r"\s+[-|–—]\s+[^-|–—]{1,60}$")  # " - CoinDesk", " | Reuters"
_WORD = re.compile(r"[a-z0-9$€%.]+")


@dataclass(frozen=True)
class StoryKey:
    """What two items are compared by."""

    url: str
    words: frozenset[str]
    title: str

    @classmethod
    def of(cls, item: NewsItem) -> StoryKey:
        """The key of ``item``: its canonical URL and its title's content words."""
        title = _SUFFIX.sub("", item.title).lower()
        words = frozenset(w.strip(".") for w in _WORD.findall(title)) - _STOPWORDS - {""}
        return cls(canonical_url(item.url), words, " ".join(sorted(words)))

    def same_story(self, other: StoryKey) -> bool:
        """Whether both keys tell one story."""
        if self.url and self.url == other.url:
            return True
        if self.title == other.title:
            return bool(self.title)
        if min(len(self.words), len(other.words)) < MIN_WORDS:
            return False
        overlap = len(self.words & other.words) / len(self.words | other.words)
        return overlap >= SIMILAR_TITLES


def distinct_stories(items: Sequence[NewsItem]) -> tuple[list[NewsItem], int]:
    """The first item of each story, in the order given (the order they became readable),
    and how many later copies were left out."""
    kept: list[tuple[NewsItem, StoryKey]] = []
    duplicates = 0
    for item in items:
        key = StoryKey.of(item)
        if any(key.same_story(seen) for _, seen in kept):
            duplicates += 1
            continue
        kept.append((item, key))
    return [item for item, _ in kept], duplicates

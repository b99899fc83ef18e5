"""One story once: the same article from several feeds, or the same headline re-worded.

Dedup is causal: items are taken in the order the desk could first read them, and an item is
a duplicate only of one readable earlier. A later copy therefore never hides an earlier one,
and no decision depends on an item it could not yet read.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
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


class StoryIndex:
    """The stories kept so far, looked up by URL, by title, and by shared title words (so a
    new item is compared only with stories it shares a word with)."""

    def __init__(self) -> None:
        self._keys: list[StoryKey] = []
        self._urls: set[str] = set()
        self._titles: set[str] = set()
        self._by_word: defaultdict[str, list[int]] = defaultdict(list)

    def seen(self, key: StoryKey) -> bool:
        """Whether ``key`` tells a story already kept."""
        if (key.url and key.url in self._urls) or (key.title and key.title in self._titles):
            return True
        if len(key.words) < MIN_WORDS:
            return False
        shared = Counter(index for word in key.words for index in self._by_word[word])
        for index, count in shared.items():
            other = self._keys[index].words
            if len(other) >= MIN_WORDS and count / len(key.words | other) >= SIMILAR_TITLES:
                return True
        return False

    def add(self, key: StoryKey) -> None:
        """Keep the story ``key`` tells."""
        index = len(self._keys)
        self._keys.append(key)
        if key.url:
            self._urls.add(key.url)
        if key.title:
            self._titles.add(key.title)
        for word in key.words:
            self._by_word[word].append(index)


def distinct_stories(items: Sequence[NewsItem]) -> tuple[list[NewsItem], int]:
    """The first item of each story, in the order given (the order they became readable),
    and how many later copies were left out."""
    index = StoryIndex()
    kept: list[NewsItem] = []
    for item in items:
        key = StoryKey.of(item)
        if index.seen(key):
            continue
        index.add(key)
        kept.append(item)
    return kept, len(items) - len(kept)

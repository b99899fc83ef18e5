"""The time-safe news view: what a decision may read, one story once, ranking, tone and the
bounded lines the analyst gets (real MiniLM embeddings, real VADER)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from tradecast.domain.news import NewsItem
from tradecast.news.dedup import distinct_stories
from tradecast.news.sentiment import VaderSentiment, label
from tradecast.news.view import NewsView
from tradecast.settings import NewsConfig

AT = datetime(2021, 1, 8, 12, tzinfo=UTC)
SITUATION = "strong uptrend, overbought momentum, up 10% over the week, heavy volume"


class ListSource:
    """A source over a fixed list (the edge of these unit tests)."""

    name = "list"

    def __init__(self, items: list[NewsItem]) -> None:
        self._items = items

    async def items(self, since: datetime, until: datetime) -> list[NewsItem]:
        return sorted(
            (i for i in self._items if since <= i.published_at <= until),
            key=lambda i: i.published_at,
        )

    def dropped(self) -> Mapping[str, int]:
        return {"no_timezone": 2}

    async def aclose(self) -> None:
        return None


def item(n: int, hours_before: float, title: str, **fields: object) -> NewsItem:
    return NewsItem.model_validate(
        {
            "id": f"n{n}",
            "published_at": AT - timedelta(hours=hours_before),
            "title": title,
            "source": fields.pop("source", "Wire"),
            **fields,
        }
    )


def view(items: list[NewsItem], embedder: object, **config: object) -> NewsView:
    settings = NewsConfig.model_validate({"min_relevance": -1.0, **config})
    return NewsView([ListSource(items)], embedder, VaderSentiment(), settings)  # type: ignore[arg-type]


async def test_an_item_is_read_only_from_its_publication_plus_the_delay(embedder):
    items = [
        item(1, 0.5, "Bitcoin rallies to a record"),  # 30 min old: inside a 1 h delay
        item(2, 2, "Bitcoin climbs above $40,000"),
        item(3, -1, "Bitcoin crashes, published an hour after the decision"),
        # published before, but first fetched after the decision: never readable at AT
        item(4, 3, "Bitcoin exchange hacked", first_seen_at=AT + timedelta(minutes=5)),
    ]
    reading = await view(items, embedder, ingestion_delay_s=3600).read("BTC/USDT", AT, SITUATION)
    assert [h.id for h in reading.headlines] == ["n2"]
    assert reading.readable == 1
    later = await view(items, embedder, ingestion_delay_s=0, k=5).read(
        "BTC/USDT", AT + timedelta(hours=2), SITUATION
    )
    assert {h.id for h in later.headlines} == {"n1", "n2", "n3", "n4"}


async def test_items_older_than_the_lookback_are_not_read(embedder):
    items = [item(1, 49, "Bitcoin rallies"), item(2, 47, "Bitcoin slides")]
    reading = await view(items, embedder, lookback_h=48).read("BTC/USDT", AT, SITUATION)
    assert [h.id for h in reading.headlines] == ["n2"]


def test_one_story_from_several_feeds_is_kept_once_first_come_first_kept():
    first = item(1, 5, "Bitcoin breaks $40,000 as rally accelerates", url="https://a.example/1")
    same_url = item(2, 4, "Different words entirely here", url="https://www.a.example/1/?utm_x=1")
    reworded = item(3, 3, "Bitcoin breaks $40,000 as the rally accelerates - Coin Ticker")
    other = item(4, 2, "Ether slides 8% as profit-taking sets in")
    kept, duplicates = distinct_stories([first, same_url, reworded, other])
    assert [i.id for i in kept] == ["n1", "n4"] and duplicates == 2
    # a later copy never hides an earlier item: the order decides, not the text
    kept_later, _ = distinct_stories([reworded, first])
    assert [i.id for i in kept_later] == ["n3"]


async def test_relevance_prefers_the_symbol_and_recent_items(embedder):
    items = [
        item(1, 1, "Dogecoin doubles on social media buzz", symbols=("DOGE",)),
        item(2, 30, "Bitcoin surges as buyers pile in", symbols=("BTC",)),
        item(3, 1, "Bitcoin climbs to a record high as funds buy", symbols=("BTC",)),
        item(4, 1, "City council approves new park budget"),
    ]
    reading = await view(items, embedder, k=4).read("BTC/USDT", AT, SITUATION)
    ids = [h.id for h in reading.headlines]
    assert ids[0] == "n3", "the recent item about the symbol comes first"
    assert ids.index("n1") < ids.index("n4"), "an item on another asset still beats no asset"
    scores = [h.relevance for h in reading.headlines]
    assert scores == sorted(scores, reverse=True)
    strict = await view(items, embedder, k=4, min_relevance=0.3).read("BTC/USDT", AT, SITUATION)
    assert "n4" not in [h.id for h in strict.headlines], "an unrelated item is not read"


async def test_the_analyst_lines_are_bounded_whatever_the_items(embedder):
    words = "Bitcoin surges " + "higher " * 400
    items = [
        item(n, n, f"{n} {'ABCDEFGHIJ'[n - 1] * 20} {words}"[:300], summary=words[:2000])
        for n in range(1, 11)
    ]
    reading = await view(items, embedder, k=3, summary_chars=160).read("BTC/USDT", AT, SITUATION)
    assert len(reading.headlines) == 3
    lines = reading.text.splitlines()
    assert len(lines) == 4 and all(len(line) <= 80 + 140 + 160 for line in lines)
    assert all(h.sentiment_method == "vader-3.3.2+market-words" for h in reading.headlines)


async def test_no_relevant_news_says_so_in_one_line(embedder):
    reading = await view([], embedder).read("BTC/USDT", AT, SITUATION)
    assert reading.headlines == ()
    assert reading.text == "News: nothing relevant published in the last 48h."


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Bitcoin plunges 15% as liquidations cascade", "negative"),
        ("Exchange hacked, withdrawals halted", "negative"),
        ("Bitcoin surges to a record as inflows jump", "positive"),
        ("Ether rallies on strong adoption", "positive"),
        ("Bitcoin trades near $40,000", "neutral"),
    ],
)
def test_tone_comes_from_vader_with_market_words(title: str, expected: str):
    assert label(VaderSentiment().score(title)) == expected


async def test_dropped_records_are_summed_over_sources(embedder):
    news = NewsView([ListSource([]), ListSource([])], embedder, VaderSentiment(), NewsConfig())
    assert news.dropped() == {"no_timezone": 4}
    assert news.sources == ["list", "list"]


async def test_a_decision_considers_at_most_the_500_newest_readable_items(embedder):
    items = [item(n, n / 100, f"Story number {n} about markets") for n in range(1, 701)]
    reading = await view(items, embedder).read("BTC/USDT", AT, SITUATION)
    assert reading.readable == 500
    oldest_considered = AT - timedelta(hours=501 / 100)  # n=1 is inside the 1-minute delay
    assert all(h.published_at >= oldest_considered for h in reading.headlines)

"""One contract for every news source (the replay file, RSS/Atom feeds, CryptoPanic): items
in a publication window with both ends included, oldest first, unique ids, dropped records
counted by reason, a name that holds no secret, and a close that can be repeated."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.fake_news_server import TOKEN, FakeClocks, FakeNewsServer
from tradecast.news.base import NewsSource
from tradecast.news.cryptopanic import CryptoPanicSource
from tradecast.news.replay import ReplayNewsSource
from tradecast.news.rss import RssNewsSource

EARLY = datetime(2000, 1, 1, tzinfo=UTC)
LATE = datetime(2099, 1, 1, tzinfo=UTC)
SAMPLE = Path(__file__).parents[1] / "fixtures" / "news" / "sample-2021-01.jsonl"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeNewsServer]:
    fake = FakeNewsServer().start()
    yield fake
    fake.stop()


@pytest.fixture(params=["replay", "rss", "cryptopanic"])
async def source(
    request: pytest.FixtureRequest, server: FakeNewsServer
) -> AsyncIterator[NewsSource]:
    clocks = FakeClocks()
    made: NewsSource
    if request.param == "replay":
        made = ReplayNewsSource.from_file(SAMPLE)
    elif request.param == "rss":
        made = RssNewsSource(
            [f"{server.url}/rss.xml", f"{server.url}/atom.xml"],
            now=clocks.now,
            clock=clocks.monotonic,
        )
    else:
        made = CryptoPanicSource(TOKEN, base_url=f"{server.url}/api", clock=clocks.monotonic)
    yield made
    await made.aclose()


async def test_every_item_of_a_wide_window_oldest_first_with_unique_ids(source: NewsSource):
    items = await source.items(EARLY, LATE)
    assert items, source.name
    times = [item.published_at for item in items]
    assert times == sorted(times)
    assert len({item.id for item in items}) == len(items)
    assert all(item.published_at.tzinfo is not None for item in items)


async def test_both_ends_of_the_window_are_included(source: NewsSource):
    items = await source.items(EARLY, LATE)
    middle = items[len(items) // 2]
    exact = await source.items(middle.published_at, middle.published_at)
    assert middle in exact
    assert all(item.published_at == middle.published_at for item in exact)
    before = await source.items(EARLY, middle.published_at - timedelta(microseconds=1))
    assert middle not in before
    assert await source.items(LATE, LATE + timedelta(days=1)) == []


async def test_dropped_records_are_counted_by_reason(source: NewsSource):
    await source.items(EARLY, LATE)
    dropped = source.dropped()
    assert all(isinstance(k, str) and isinstance(v, int) and v > 0 for k, v in dropped.items())


async def test_the_name_holds_no_secret_and_close_can_be_repeated(source: NewsSource):
    await source.items(EARLY, LATE)
    assert source.name and TOKEN not in source.name
    await source.aclose()
    await source.aclose()

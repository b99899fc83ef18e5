"""RSS/Atom feeds and the polling rules, against a real HTTP server on loopback.

The clocks are injected (:class:`support.fake_news_server.FakeClocks`): schedules are checked by
moving them, never by sleeping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from structlog.testing import capture_logs

from support.fake_news_server import FakeClocks, FakeNewsServer
from support.net import free_port
from tradecast.domain.news import NewsItem
from tradecast.errors import NewsError
from tradecast.news.base import NewsSource
from tradecast.news.polling import USER_AGENT
from tradecast.news.rss import RssNewsSource
from tradecast.settings import NewsConfig

EARLY = datetime(2000, 1, 1, tzinfo=UTC)
LATE = datetime(2099, 1, 1, tzinfo=UTC)
INTERVAL = 10.0
MAX_BACKOFF = 100.0


@pytest.fixture
def server() -> Iterator[FakeNewsServer]:
    fake = FakeNewsServer().start()
    yield fake
    fake.stop()


@pytest.fixture
def clocks() -> FakeClocks:
    return FakeClocks()


@pytest.fixture
async def make(clocks: FakeClocks) -> AsyncIterator[Any]:
    """Builds RSS sources on the fake clocks (closed after the test)."""
    made: list[RssNewsSource] = []

    def factory(*feeds: str, **options: Any) -> RssNewsSource:
        options = {
            "poll_interval_s": INTERVAL,
            "max_backoff_s": MAX_BACKOFF,
            "timeout_s": 5.0,
            "now": clocks.now,
            "clock": clocks.monotonic,
            **options,
        }
        source = RssNewsSource(list(feeds), **options)
        made.append(source)
        return source

    yield factory
    for source in made:
        await source.aclose()


async def read(source: NewsSource) -> list[NewsItem]:
    return await source.items(EARLY, LATE)


async def test_rss_and_atom_parsed_with_utc_times(
    server: FakeNewsServer, clocks: FakeClocks, make: Any
) -> None:
    source = make(f"{server.url}/rss.xml", f"{server.url}/atom.xml")
    items = await read(source)

    by_title = {i.title: i for i in items}
    assert len(items) == 5
    btc = by_title["Bitcoin tops $95,000 as ETF inflows return"]
    assert btc.published_at == datetime(2025, 2, 26, 10, 20, 14, tzinfo=UTC)  # +01:00 in feed
    assert btc.id == "coinwire-1001"
    assert btc.source == "Coin Wire"
    assert btc.summary == "Spot bitcoin ETFs saw $1.2bn of inflows & more"
    eth = by_title["Ether climbs ahead of the Pectra upgrade"]
    assert eth.published_at == datetime(2025, 2, 26, 9, 5, tzinfo=UTC)
    assert eth.id == "https://coinwire.example/eth-pectra"  # no guid: the link
    etf = by_title["Ethereum ETF outflows slow"]
    assert etf.published_at == datetime(2025, 2, 26, 11, 30, tzinfo=UTC)  # published, -05:00
    assert etf.source == "Chain Ledger"
    assert etf.summary == "Outflows slowed to $40m."
    xrp = by_title["XRP rallies after court ruling"]
    assert xrp.published_at == datetime(2025, 2, 25, 23, 45, tzinfo=UTC)  # updated only
    assert xrp.id == "urn:uuid:7d1e4d2c-0000-4000-8000-000000000002"

    # No date in the feed: dated when fetched, counted apart from the records left out.
    sol = by_title["Solana memecoin volumes fade"]
    assert sol.published_at == clocks.wall
    assert sol.summary == "Volumes halved in a week."
    assert sol.id == "https://coinwire.example/sol-memes"
    assert source.undated() == 1
    assert source.dropped() == {}

    assert all(i.first_seen_at == clocks.wall for i in items)
    assert [i.published_at for i in items] == sorted(i.published_at for i in items)
    assert source.name == "rss:127.0.0.1"
    window = await source.items(
        datetime(2025, 2, 26, 9, 5, tzinfo=UTC), datetime(2025, 2, 26, 11, 30, tzinfo=UTC)
    )
    assert [i.title for i in window] == [eth.title, btc.title, etf.title]


async def test_requests_name_tradecast(server: FakeNewsServer, make: Any) -> None:
    await read(make(f"{server.url}/rss.xml"))

    (request,) = server.to("/rss.xml")
    assert request.headers["user-agent"] == USER_AGENT
    assert "tradecast" in USER_AGENT
    assert "application/rss+xml" in request.headers["accept"]


async def test_conditional_get_answers_304_and_keeps_items(
    server: FakeNewsServer, clocks: FakeClocks, make: Any
) -> None:
    source = make(f"{server.url}/rss.xml")
    first = await read(source)
    seen_at = clocks.wall

    clocks.advance(INTERVAL)
    again = await read(source)

    one, two = server.to("/rss.xml")
    assert "if-none-match" not in one.headers and one.status == 200
    assert two.headers["if-none-match"].startswith('"')
    assert two.headers["if-modified-since"] == "Wed, 26 Feb 2025 11:30:00 GMT"
    assert two.status == 304
    assert again == first

    # The feed changes: a 200 with the old entries again; they keep their first sight.
    server.add_rss_item(
        """<item><title>Dogecoin jumps 8%</title><guid isPermaLink="false">coinwire-1002</guid>
        <pubDate>Wed, 26 Feb 2025 12:00:30 GMT</pubDate></item>""",
        datetime(2025, 2, 26, 12, 0, 30, tzinfo=UTC),
    )
    clocks.advance(INTERVAL)
    latest = await read(source)

    assert server.to("/rss.xml")[-1].status == 200
    assert len(latest) == len(first) + 1
    assert len({i.id for i in latest}) == len(latest)
    new = next(i for i in latest if i.id == "coinwire-1002")
    assert new.first_seen_at == clocks.wall
    assert all(i.first_seen_at == seen_at for i in latest if i.id != "coinwire-1002")
    assert source.undated() == 1  # the undated entry came again: counted once


async def test_rate_limit_one_request_per_interval(
    server: FakeNewsServer, clocks: FakeClocks, make: Any
) -> None:
    source = make(f"{server.url}/rss.xml", f"{server.url}/atom.xml")
    await read(source)
    await read(source)
    clocks.advance(INTERVAL - 0.5)
    await read(source)

    assert len(server.to("/rss.xml")) == 1
    assert len(server.to("/atom.xml")) == 1

    clocks.advance(0.5)
    await read(source)
    assert len(server.to("/rss.xml")) == 2
    assert len(server.to("/atom.xml")) == 2


@pytest.mark.parametrize("form", ["seconds", "http-date"])
async def test_429_waits_for_retry_after(
    server: FakeNewsServer, clocks: FakeClocks, make: Any, form: str
) -> None:
    wait = 45.0
    server.retry_after = (
        str(int(wait))
        if form == "seconds"
        else format_datetime(clocks.wall + timedelta(seconds=wait), usegmt=True)
    )
    source = make(f"{server.url}/limited", f"{server.url}/rss.xml")

    assert len(await read(source)) == 3  # the other feed delivers
    clocks.advance(wait - 1)
    await read(source)
    assert len(server.to("/limited")) == 1
    assert len(server.to("/rss.xml")) == 2  # polled again once its interval passed

    clocks.advance(1)
    await read(source)
    assert len(server.to("/limited")) == 2


async def test_retry_after_is_capped_and_at_least_the_interval(
    server: FakeNewsServer, clocks: FakeClocks, make: Any
) -> None:
    server.retry_after = "86400"
    capped = make(f"{server.url}/limited")
    await read(capped)
    assert capped.endpoints()[0].next_poll_in_s == MAX_BACKOFF

    server.retry_after = "0"
    floor = make(f"{server.url}/limited")
    await read(floor)
    assert floor.endpoints()[0].next_poll_in_s == INTERVAL


@pytest.mark.parametrize("header", ["\xb2", "99999999999999999999999", "Sun, 99 Foo 2025 99:99"])
async def test_a_garbled_retry_after_backs_off_as_usual_and_never_raises(
    server: FakeNewsServer, make: Any, header: str
) -> None:
    server.retry_after = header
    source = make(f"{server.url}/limited")
    assert await read(source) == []
    assert INTERVAL <= source.endpoints()[0].next_poll_in_s <= MAX_BACKOFF


async def test_dead_and_failing_feeds_back_off_and_never_raise(
    server: FakeNewsServer, clocks: FakeClocks, make: Any
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/feed.xml"
    source = make(dead, f"{server.url}/broken", f"{server.url}/rss.xml")

    with capture_logs() as logs:
        waits = []
        for _ in range(5):
            assert len(await read(source)) == 3  # the healthy feed still delivers
            status = source.endpoints()
            assert status[0].next_poll_in_s == status[1].next_poll_in_s
            waits.append(status[1].next_poll_in_s)
            clocks.advance(waits[-1])

    # min(max_backoff, interval * 2**failures): 20, 40, 80, then the cap.
    assert waits == [20.0, 40.0, 80.0, 100.0, 100.0]
    assert len(server.to("/broken")) == 5
    assert source.endpoints()[0].polls == 5
    assert source.endpoints()[0].failures == 5
    failed = [e for e in logs if e["event"] == "news.feed_failed"]
    assert sorted(e["feed"] for e in failed) == sorted([dead, f"{server.url}/broken"])  # once each

    # The 500 ends: the feed answers, is logged back once, and polls at the interval again.
    server.broken = False
    with capture_logs() as logs:
        await read(source)
    assert [e["event"] for e in logs if e.get("feed") == f"{server.url}/broken"] == [
        "news.feed_again"
    ]
    assert source.endpoints()[1].failures == 0
    assert source.endpoints()[1].next_poll_in_s == INTERVAL


async def test_gone_feed_is_never_polled_again(
    server: FakeNewsServer, clocks: FakeClocks, make: Any
) -> None:
    source = make(f"{server.url}/gone", f"{server.url}/rss.xml")
    with capture_logs() as logs:
        for _ in range(4):
            await read(source)
            clocks.advance(MAX_BACKOFF * 10)

    assert len(server.to("/gone")) == 1
    assert len(server.to("/rss.xml")) == 4
    assert [e["event"] for e in logs if e["event"].startswith("news.feed")] == ["news.feed_gone"]
    assert source.endpoints()[0].gone


async def test_an_answer_that_never_ends_times_out(server: FakeNewsServer, make: Any) -> None:
    # Each read arrives within httpx's per-read timeout; the whole answer never does.
    source = make(f"{server.url}/slow", f"{server.url}/rss.xml", timeout_s=0.3)
    with capture_logs() as logs:
        assert len(await read(source)) == 3

    (failed,) = [e for e in logs if e["event"] == "news.feed_failed"]
    assert failed["reason"] == "no answer within 0.3 s"
    assert failed["feed"] == f"{server.url}/slow"


@pytest.mark.parametrize("route", ["/huge", "/huge-declared"])
async def test_oversized_body_is_refused(
    server: FakeNewsServer, clocks: FakeClocks, make: Any, route: str
) -> None:
    source = make(f"{server.url}{route}", max_body_bytes=1024 * 1024)
    with capture_logs() as logs:
        assert await read(source) == []

    (failed,) = [e for e in logs if e["event"] == "news.feed_failed"]
    assert "cap" in failed["reason"]
    assert source.endpoints()[0].failures == 1


async def test_default_body_cap_is_5_mb(server: FakeNewsServer, make: Any) -> None:
    source = make(f"{server.url}/huge")  # 6 MB, streamed
    assert await read(source) == []
    assert source.endpoints()[0].failures == 1


async def test_a_page_that_is_not_a_feed_is_a_failure(server: FakeNewsServer, make: Any) -> None:
    source = make(f"{server.url}/not-a-feed")
    with capture_logs() as logs:
        assert await read(source) == []

    (failed,) = [e for e in logs if e["event"] == "news.feed_failed"]
    assert "not an RSS or Atom feed" in failed["reason"]


async def test_oldest_items_go_past_the_limit_and_do_not_come_back(
    server: FakeNewsServer, clocks: FakeClocks, make: Any
) -> None:
    source = make(f"{server.url}/rss.xml", max_items=2)
    kept = await read(source)
    assert [i.title for i in kept] == [
        "Bitcoin tops $95,000 as ETF inflows return",
        "Solana memecoin volumes fade",  # dated at fetch time, the newest
    ]

    # No guid, no link, no date: an id digested from what it says, dated when fetched.
    server.add_rss_item("<item><title>Later news</title></item>", clocks.wall)
    clocks.advance(INTERVAL)
    again = await read(source)
    assert [i.title for i in again] == ["Solana memecoin volumes fade", "Later news"]
    assert again[1].id.startswith("news-")

    # The forgotten entries are still in the feed: they do not come back as new.
    clocks.advance(INTERVAL)
    server.add_rss_item("<item><title>Even later</title></item>", clocks.wall)
    assert [i.title for i in await read(source)] == ["Later news", "Even later"]


async def test_settings_and_bad_urls(server: FakeNewsServer) -> None:
    config = NewsConfig(feeds=(f"{server.url}/rss.xml",), poll_interval_s=42, timeout_s=2)
    source = RssNewsSource.from_config(config)
    assert source.poll_interval_s == 42 and source.timeout_s == 2
    await source.aclose()
    await source.aclose()
    assert await read(source) == []  # closed: no poll

    with pytest.raises(NewsError, match="TRADECAST_NEWS__FEEDS"):
        RssNewsSource.from_config(NewsConfig())
    with pytest.raises(NewsError, match="not an http"):
        RssNewsSource(["ftp://user:pw@example.com/feed.xml"])

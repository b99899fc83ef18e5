"""CryptoPanic's posts API against a real HTTP server on loopback: parsing, and the key kept
out of names, logs and errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from support.fake_news_server import TOKEN, FakeClocks, FakeNewsServer
from support.net import free_port
from tradecast.errors import NewsError
from tradecast.news.cryptopanic import CryptoPanicSource
from tradecast.settings import NewsConfig

EARLY = datetime(2000, 1, 1, tzinfo=UTC)
LATE = datetime(2099, 1, 1, tzinfo=UTC)


@pytest.fixture
def server() -> Iterator[FakeNewsServer]:
    fake = FakeNewsServer().start()
    yield fake
    fake.stop()


async def test_posts_parsed_with_symbols(server: FakeNewsServer) -> None:
    clocks = FakeClocks()
    config = NewsConfig(cryptopanic_token=SecretStr(TOKEN), cryptopanic_url=f"{server.url}/api")
    source = CryptoPanicSource.from_config(config, now=clocks.now, clock=clocks.monotonic)
    try:
        items = await source.items(EARLY, LATE)
    finally:
        await source.aclose()

    assert [i.title for i in items] == [
        "ETH and SOL lead altcoin rebound",
        "Bitcoin miners sell as hashprice slumps",
    ]
    alts, btc = items
    assert btc.id == "cryptopanic-20750357"
    assert btc.published_at == datetime(2025, 2, 26, 11, 20, 14, tzinfo=UTC)
    assert btc.symbols == ("BTC",)
    assert btc.source == "CoinDesk"
    assert btc.url == "https://cryptopanic.com/news/20750357/Bitcoin-miners-sell"
    assert btc.first_seen_at == clocks.wall
    assert alts.symbols == ("ETH", "SOL")
    assert source.dropped() == {"no_title": 1}
    assert source.undated() == 0

    (request,) = server.to("/api/posts/")
    assert request.query["auth_token"] == [TOKEN]
    assert request.query["public"] == ["true"] and request.query["kind"] == ["news"]
    assert "currencies" not in request.query


async def test_currencies_filter_and_name(server: FakeNewsServer) -> None:
    clocks = FakeClocks()
    source = CryptoPanicSource(
        TOKEN, base_url=f"{server.url}/api/", currencies=["btc", "ETH"], clock=clocks.monotonic
    )
    await source.items(EARLY, LATE)
    await source.aclose()

    (request,) = server.to("/api/posts/")
    assert request.query["currencies"] == ["BTC,ETH"]
    assert source.name == "cryptopanic:BTC,ETH"


async def test_token_never_in_name_logs_or_errors(
    server: FakeNewsServer, caplog: pytest.LogCaptureFixture
) -> None:
    # httpx and httpcore log every request at INFO/DEBUG; configure_logging (run by other
    # tests in this process) quiets them to WARNING, so their own levels are set here
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    caplog.set_level(logging.DEBUG, logger="httpcore")
    clocks = FakeClocks()
    wrong = "cp-wrong-key-0c4d8e2a"
    sources = [
        CryptoPanicSource(TOKEN, base_url=f"{server.url}/api", clock=clocks.monotonic),
        CryptoPanicSource(wrong, base_url=f"{server.url}/api", clock=clocks.monotonic),
        CryptoPanicSource(TOKEN, base_url=f"http://127.0.0.1:{free_port()}", timeout_s=1),
    ]
    with capture_logs() as logs:
        for source in sources:
            await source.items(EARLY, LATE)
            assert TOKEN not in source.name and wrong not in source.name
            assert all(TOKEN not in str(e) for e in source.endpoints())
            await source.aclose()

    assert server.to("/api/posts/")[1].status == 401  # the wrong key was sent, and refused
    failures = [e for e in logs if e["event"] == "news.feed_failed"]
    assert len(failures) == 2
    everything = repr(logs) + caplog.text + repr([r.__dict__ for r in caplog.records])
    assert TOKEN not in everything and wrong not in everything
    assert "HTTP 401" in everything
    assert "/api/posts/?public=true&kind=news" in caplog.text  # httpx did log the requests


async def test_key_is_not_sent_to_another_host(server: FakeNewsServer) -> None:
    # The API at "localhost" redirects to "127.0.0.1": another host, which must not get the key.
    source = CryptoPanicSource(TOKEN, base_url=f"http://localhost:{server.port}/moved")
    with capture_logs() as logs:
        assert await source.items(EARLY, LATE) == []
    await source.aclose()

    (moved,) = server.to("/moved/posts/")
    assert moved.query["auth_token"] == [TOKEN]  # the API's own host gets it
    (redirected,) = server.to("/api/posts/")
    assert "auth_token" not in redirected.query
    assert redirected.status == 401
    assert [e["reason"] for e in logs if e["event"] == "news.feed_failed"] == ["HTTP 401"]


def test_settings_without_a_key() -> None:
    with pytest.raises(NewsError, match="TRADECAST_NEWS__CRYPTOPANIC_TOKEN"):
        CryptoPanicSource.from_config(NewsConfig())
    with pytest.raises(NewsError, match="not an http"):
        CryptoPanicSource(TOKEN, base_url="file:///etc/passwd")

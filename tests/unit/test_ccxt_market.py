"""The ccxt market on ccxt's real Binance class, fed recorded Binance REST bodies.

Only the socket is fake (``support.binance_wire.BinanceWire``, an aiohttp session stand-in): ccxt
builds the requests, throttles, maps HTTP errors and parses klines, tickers and depth itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import aiohttp
import pytest
import structlog

from support.binance_wire import BINANCE_FIXTURES, RECORDED_AT, BinanceWire, binance_market
from tradecast.bootstrap import build_market_data
from tradecast.errors import MarketDataError
from tradecast.market.base import MarketData
from tradecast.market.ccxt_market import CcxtMarket
from tradecast.market.replay import ReplayMarket
from tradecast.settings import load_settings


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class RecordedSleeps:
    """Stands in for asyncio.sleep so the backoff schedule is checked without waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def wire() -> BinanceWire:
    return BinanceWire()


@pytest.fixture
def sleeps() -> RecordedSleeps:
    return RecordedSleeps()


async def test_ccxt_market_lists_the_recorded_exchange_info(wire: BinanceWire) -> None:
    async with binance_market(wire) as market:
        assert isinstance(market, MarketData)
        assert await market.symbols() == ["BTC/USDT", "ETH/BUSD"]
        assert market.exchange_id == "binance"
    assert wire.paths() == ["/api/v3/exchangeInfo"]


async def test_ccxt_candles_drop_bars_after_until_and_see_past_a_gap(wire: BinanceWire) -> None:
    # Binance has no 05:00-07:00 bars that day: asked from 24 bars further back, it answers
    # with every recorded bar from Apr 24 20:00 up to 12:00, and the ones after 08:30 go
    replay = ReplayMarket()
    until = utc(2021, 4, 25, 8, 30)
    async with binance_market(wire) as market:
        bars = await market.candles("BTC/USDT", until=until, limit=5)
    assert [b.timestamp.hour for b in bars] == [1, 2, 3, 4, 8]
    assert bars[-2].close == Decimal("49683.94") and bars[-2].volume == Decimal("5.887034")
    assert list(bars) == list(await replay.candles("BTC/USDT", until=until, limit=5))
    (klines,) = [url for url in wire.requests if url.path == "/api/v3/klines"]
    assert klines.query["interval"] == "1h"
    assert klines.query["limit"] == str(5 + 24)
    assert int(klines.query["startTime"]) == int((until.timestamp() - 29 * 3600) * 1000) + 1


async def test_ccxt_candles_default_to_the_clock_and_match_the_replay(wire: BinanceWire) -> None:
    replay = ReplayMarket(clock=lambda: RECORDED_AT)
    async with binance_market(wire) as market:
        live = await market.candles("BTC/USDT", limit=5)
    assert [b.timestamp.hour for b in live] == [8, 9, 10, 11, 12]
    # the recorded klines are the bundled bars, so both sources must agree bar for bar
    assert list(live) == list(await replay.candles("BTC/USDT", limit=5))
    assert wire.paths().count("/api/v3/klines") == 1


async def test_ccxt_candles_page_forward_when_the_exchange_caps_a_page() -> None:
    wire = BinanceWire(max_klines=4)
    async with binance_market(wire) as market:
        bars = await market.candles("BTC/USDT", until=utc(2021, 4, 25, 3, 10), limit=8)
    assert [b.timestamp.hour for b in bars] == [20, 21, 22, 23, 0, 1, 2, 3]
    assert [u.query["limit"] for u in wire.requests if u.path == "/api/v3/klines"] == ["32", "5"]


async def test_ccxt_live_ticker_is_parsed_by_ccxt(wire: BinanceWire) -> None:
    recorded = json.loads((BINANCE_FIXTURES / "ticker_24hr_BTCUSDT.json").read_text())
    async with binance_market(wire) as market:
        ticker = await market.ticker("BTC/USDT")
    assert ticker.symbol == "BTC/USDT"
    assert ticker.last == Decimal(recorded["lastPrice"]) == Decimal("49859.54")
    assert ticker.bid == Decimal("49859.53") and ticker.ask == Decimal("49859.54")
    assert ticker.timestamp == RECORDED_AT  # Binance's closeTime
    assert wire.paths()[-1] == "/api/v3/ticker/24hr"


async def test_ccxt_ticker_in_the_past_comes_from_the_last_bar(wire: BinanceWire) -> None:
    async with binance_market(wire) as market:
        ticker = await market.ticker("BTC/USDT", at=utc(2021, 4, 25, 6, 30))
    assert ticker.last == Decimal("49683.94") and ticker.timestamp == utc(2021, 4, 25, 4)
    assert ticker.bid is None
    assert "/api/v3/ticker/24hr" not in wire.paths()


async def test_ccxt_order_book_best_levels_first(wire: BinanceWire) -> None:
    async with binance_market(wire, order_book_depth=5) as market:
        book = await market.order_book("BTC/USDT")
        past = await market.order_book("BTC/USDT", at=utc(2021, 4, 24))
    assert book is not None and past is None
    assert book.symbol == "BTC/USDT"
    assert [level.price for level in book.bids[:2]] == [Decimal("49859.53"), Decimal("49859.52")]
    assert book.asks[0].price == Decimal("49859.54") and book.asks[0].quantity == Decimal("0.04615")
    assert len(book.bids) == len(book.asks) == 5
    assert wire.requests[-1].query["limit"] == "5"


async def test_ccxt_unknown_symbol_is_refused_before_any_request(wire: BinanceWire) -> None:
    async with binance_market(wire) as market:
        with pytest.raises(MarketDataError, match=r"binance does not list XRP/USDT.*BTC/USDT"):
            await market.candles("XRP/USDT")
    assert wire.paths() == ["/api/v3/exchangeInfo"]


async def test_ccxt_bad_symbol_from_the_exchange_is_not_retried(
    wire: BinanceWire, sleeps: RecordedSleeps
) -> None:
    wire.fail("/api/v3/klines", (400, (BINANCE_FIXTURES / "error_invalid_symbol.json").read_text()))
    async with binance_market(wire, sleep=sleeps) as market:
        with pytest.raises(MarketDataError, match=r"does not know this symbol.*BadSymbol"):
            await market.candles("BTC/USDT", limit=2)
    assert wire.paths().count("/api/v3/klines") == 1 and sleeps.delays == []


async def test_ccxt_authentication_error_is_mapped(wire: BinanceWire) -> None:
    body = (BINANCE_FIXTURES / "error_invalid_api_key.json").read_text()
    wire.fail("/api/v3/ticker/24hr", (401, body))
    async with binance_market(wire) as market:
        with pytest.raises(MarketDataError, match=r"rejected the API credentials.*Authentication"):
            await market.ticker("BTC/USDT")


async def test_ccxt_network_errors_are_retried_with_exponential_backoff(
    wire: BinanceWire, sleeps: RecordedSleeps
) -> None:
    wire.fail("/api/v3/depth", aiohttp.ClientConnectionError("connection reset"), times=2)
    with structlog.testing.capture_logs() as logs:
        async with binance_market(wire, sleep=sleeps, backoff_s=0.5) as market:
            book = await market.order_book("BTC/USDT")
    assert book is not None and len(book.bids) == 5
    assert sleeps.delays == [0.5, 1.0]
    assert wire.paths().count("/api/v3/depth") == 3
    retries = [entry for entry in logs if entry["event"] == "ccxt.retry"]
    assert [entry["attempt"] for entry in retries] == [1, 2]
    assert "ExchangeNotAvailable" in retries[0]["error"]


@pytest.mark.parametrize(
    "failure",
    [
        aiohttp.ClientConnectionError("connection refused"),
        TimeoutError(),
        (503, "<html>Service Unavailable</html>"),
        (429, '{"code":-1003,"msg":"Too much request weight used; IP banned until 1619355600000"}'),
    ],
    ids=["connection", "timeout", "http-503", "rate-limit"],
)
async def test_ccxt_retries_are_bounded_then_mapped(
    wire: BinanceWire, sleeps: RecordedSleeps, failure: object
) -> None:
    wire.fail("/api/v3/klines", failure, times=10)  # type: ignore[arg-type]
    async with binance_market(wire, sleep=sleeps, max_retries=3, backoff_s=0.25) as market:
        with pytest.raises(MarketDataError, match=r"unreachable or unavailable after 4 attempt"):
            await market.candles("BTC/USDT", limit=2)
    assert wire.paths().count("/api/v3/klines") == 4
    assert sleeps.delays == [0.25, 0.5, 1.0]


async def test_ccxt_market_closes_the_exchange_session_even_on_error(wire: BinanceWire) -> None:
    market = binance_market(wire)
    exchange = market._exchange
    with pytest.raises(MarketDataError):
        async with market:
            await market.candles("NOPE/USDT")
    assert exchange.session is None and exchange.closed_by_user
    await market.aclose()  # a second close is harmless


async def test_ccxt_rejects_bad_arguments_clearly(wire: BinanceWire) -> None:
    with pytest.raises(MarketDataError, match="unknown exchange id 'not-an-exchange'"):
        CcxtMarket("not-an-exchange")
    with pytest.raises(MarketDataError, match=r"binance has no '7m' candles; it offers 1s, 1m"):
        CcxtMarket("binance", "7m")
    async with binance_market(wire) as market:
        with pytest.raises(MarketDataError, match="timezone-aware"):
            await market.candles("BTC/USDT", until=datetime(2021, 4, 25))
        with pytest.raises(MarketDataError, match="limit must be at least 1"):
            await market.candles("BTC/USDT", limit=0)


async def test_ccxt_market_turns_rate_limiting_on() -> None:
    market = CcxtMarket("kraken", "1h")
    assert market._exchange.enableRateLimit is True
    await market.aclose()


async def test_bootstrap_builds_replay_by_default_and_ccxt_on_request() -> None:
    replay = build_market_data(load_settings())
    assert isinstance(replay, ReplayMarket)
    live = build_market_data(load_settings(market={"source": "ccxt", "exchange": "kraken"}))
    assert isinstance(live, CcxtMarket) and live.exchange_id == "kraken"
    await live.aclose()
    await replay.aclose()

"""The MarketData contract, run against every implementation: the replay of the bundled
candles and the ccxt market (ccxt's real Binance class on recorded Binance responses).

Both see the same real bars (the recorded klines are the bundled ones) and the same clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from support.binance_wire import RECORDED_AT, BinanceWire, binance_market
from tradecast.domain import Candle, OrderBook, Ticker
from tradecast.errors import MarketDataError
from tradecast.market.base import MarketData
from tradecast.market.replay import ReplayMarket

# inside the recorded window (2021-04-24T20:00Z .. 2021-04-25T12:00Z, 05-07 missing)
UNTIL_TIMES = [
    datetime(2021, 4, 25, 3, 0, tzinfo=UTC),
    datetime(2021, 4, 25, 6, 59, 59, tzinfo=UTC),
    datetime(2021, 4, 25, 11, 30, tzinfo=UTC),
]


@pytest.fixture(params=["replay", "ccxt"])
async def market(request: pytest.FixtureRequest) -> AsyncIterator[MarketData]:
    source: MarketData
    if request.param == "replay":
        source = ReplayMarket(clock=lambda: RECORDED_AT)
    else:
        source = binance_market(BinanceWire())
    try:
        yield source
    finally:
        await source.aclose()


async def test_market_contract_is_a_market_data_listing_btc(market: MarketData) -> None:
    assert isinstance(market, MarketData)
    assert "BTC/USDT" in await market.symbols()


@pytest.mark.parametrize("until", UNTIL_TIMES)
async def test_market_contract_candles_end_at_until_oldest_first(
    market: MarketData, until: datetime
) -> None:
    bars = await market.candles("BTC/USDT", until=until, limit=4)
    assert len(bars) == 4
    assert all(isinstance(b, Candle) for b in bars)
    stamps = [b.timestamp for b in bars]
    assert stamps == sorted(set(stamps))
    assert stamps[-1] <= until
    # the newest bar is the last one that opened at or before until (no bar skipped)
    later = await market.candles("BTC/USDT", until=until + timedelta(hours=1), limit=1)
    assert later[0].timestamp > until or later[0].timestamp == stamps[-1]


async def test_market_contract_now_comes_from_the_clock(market: MarketData) -> None:
    bars = await market.candles("btc/usdt", limit=2)
    assert [b.timestamp for b in bars] == [
        datetime(2021, 4, 25, 11, tzinfo=UTC),
        datetime(2021, 4, 25, 12, tzinfo=UTC),
    ]
    ticker = await market.ticker("BTC/USDT")
    assert isinstance(ticker, Ticker) and ticker.symbol == "BTC/USDT"
    assert ticker.last == bars[-1].close
    assert ticker.timestamp <= RECORDED_AT


async def test_market_contract_past_ticker_is_the_last_close_before_it(market: MarketData) -> None:
    at = datetime(2021, 4, 25, 6, 30, tzinfo=UTC)
    ticker = await market.ticker("BTC/USDT", at=at)
    (bar,) = await market.candles("BTC/USDT", until=at, limit=1)
    assert ticker.last == bar.close and ticker.timestamp <= at


async def test_market_contract_order_book_is_none_or_for_the_symbol(market: MarketData) -> None:
    book = await market.order_book("BTC/USDT")
    if book is not None:
        assert isinstance(book, OrderBook) and book.symbol == "BTC/USDT"
        assert book.bids[0].price < book.asks[0].price


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.candles("NOPE/USDT"), "NOPE/USDT"),
        (lambda m: m.ticker("NOPE/USDT"), "NOPE/USDT"),
        (lambda m: m.candles("BTC/USDT", limit=0), "limit"),
        (lambda m: m.candles("BTC/USDT", until=datetime(2021, 4, 25)), "timezone-aware"),
    ],
    ids=["unknown-symbol", "unknown-ticker", "limit-0", "naive-until"],
)
async def test_market_contract_bad_requests_raise_market_data_error(
    market: MarketData, call: object, message: str
) -> None:
    with pytest.raises(MarketDataError, match=message):
        await call(market)  # type: ignore[operator]

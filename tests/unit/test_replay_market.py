"""The replay market on the bundled Binance candles and on user CSV files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradecast.domain import Candle
from tradecast.errors import MarketDataError
from tradecast.market.base import MarketData
from tradecast.market.replay import ReplayMarket


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture(scope="module")
def replay() -> ReplayMarket:
    return ReplayMarket()


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(["timestamp,open,high,low,close,volume", *lines]) + "\n")
    return path


async def test_replay_serves_the_bundled_binance_symbols(replay: ReplayMarket) -> None:
    assert isinstance(replay, MarketData)
    assert await replay.symbols() == ["BTC/USDT", "ETH/BUSD"]
    assert replay.span("BTC/USDT") == (utc(2020, 6, 9), utc(2021, 7, 14, 4))
    assert replay.interval("ETH/BUSD") == timedelta(hours=1)


async def test_replay_candles_stop_at_until_and_skip_the_gap(replay: ReplayMarket) -> None:
    # 2021-04-25: Binance published no 05:00, 06:00, 07:00 bars (maintenance)
    bars = await replay.candles("BTC/USDT", until=utc(2021, 4, 25, 7, 59), limit=3)
    assert [b.timestamp for b in bars] == [utc(2021, 4, 25, h) for h in (2, 3, 4)]
    # the CSV line 2021-04-25T04:00:00Z,49626.76,49705.04,49600.24,49683.94,5.887034
    assert bars[-1] == Candle(
        timestamp=utc(2021, 4, 25, 4),
        open=Decimal("49626.76"),
        high=Decimal("49705.04"),
        low=Decimal("49600.24"),
        close=Decimal("49683.94"),
        volume=Decimal("5.887034"),
    )
    assert str(bars[-1].close) == "49683.94"  # via str: no float noise
    after = await replay.candles("BTC/USDT", until=utc(2021, 4, 25, 8), limit=2)
    assert [b.timestamp for b in after] == [utc(2021, 4, 25, 4), utc(2021, 4, 25, 8)]


async def test_replay_until_is_inclusive_and_limit_counts_bars(replay: ReplayMarket) -> None:
    bars = await replay.candles("eth/busd", until=utc(2021, 1, 1, 12), limit=5)
    assert len(bars) == 5
    assert bars[-1].timestamp == utc(2021, 1, 1, 12)
    assert [b.timestamp for b in bars] == sorted(b.timestamp for b in bars)
    one = await replay.candles("ETH/BUSD", until=utc(2021, 1, 1, 12, 59, 59), limit=1)
    assert one == bars[-1:]


async def test_replay_before_the_first_bar_has_no_candles_and_no_ticker(
    replay: ReplayMarket,
) -> None:
    assert await replay.candles("BTC/USDT", until=utc(2020, 6, 8, 23, 59)) == []
    first = await replay.candles("BTC/USDT", until=utc(2020, 6, 9), limit=10)
    assert [b.timestamp for b in first] == [utc(2020, 6, 9)]
    with pytest.raises(MarketDataError, match="replay starts at 2020-06-09"):
        await replay.ticker("BTC/USDT", at=utc(2020, 1, 1))


async def test_replay_now_is_the_last_bar_without_a_clock_and_the_clock_with_one(
    replay: ReplayMarket,
) -> None:
    assert (await replay.candles("BTC/USDT", limit=1))[0].timestamp == utc(2021, 7, 14, 4)
    assert (await replay.ticker("ETH/BUSD")).timestamp == utc(2021, 7, 14, 6)
    now = utc(2021, 3, 1, 10, 30)
    clocked = ReplayMarket(clock=lambda: now)
    bars = await clocked.candles("BTC/USDT", limit=2)
    assert [b.timestamp for b in bars] == [utc(2021, 3, 1, 9), utc(2021, 3, 1, 10)]
    ticker = await clocked.ticker("BTC/USDT")
    assert ticker.last == bars[-1].close
    assert ticker.timestamp == utc(2021, 3, 1, 10)
    assert len(clocked.frame("BTC/USDT")) == len(replay.frame("BTC/USDT", until=now))


async def test_replay_ticker_is_the_last_close_without_bid_or_ask(replay: ReplayMarket) -> None:
    ticker = await replay.ticker("BTC/USDT", at=utc(2021, 4, 25, 6, 30))
    assert ticker.symbol == "BTC/USDT"
    assert ticker.last == Decimal("49683.94")  # the 04:00 bar: 05:00-07:00 are missing
    assert ticker.timestamp == utc(2021, 4, 25, 4)
    assert ticker.bid is None and ticker.ask is None


async def test_replay_has_no_order_book_but_checks_the_symbol(replay: ReplayMarket) -> None:
    assert await replay.order_book("BTC/USDT") is None
    with pytest.raises(MarketDataError):
        await replay.order_book("NOPE/USDT")


async def test_replay_unknown_symbol_lists_the_known_ones(replay: ReplayMarket) -> None:
    with pytest.raises(MarketDataError, match=r"DOGE/USDT.*known: BTC/USDT, ETH/BUSD"):
        await replay.candles("DOGE/USDT")
    with pytest.raises(MarketDataError, match="BASE/QUOTE"):
        await replay.candles("BTCUSDT")


async def test_replay_rejects_naive_times_and_limits_below_one(replay: ReplayMarket) -> None:
    with pytest.raises(MarketDataError, match="timezone-aware"):
        await replay.candles("BTC/USDT", until=datetime(2021, 1, 1))
    with pytest.raises(MarketDataError, match="limit must be at least 1"):
        await replay.candles("BTC/USDT", limit=0)


def test_replay_reports_the_gaps_and_never_invents_bars(replay: ReplayMarket) -> None:
    gaps = replay.gaps("BTC/USDT")
    # 8 maintenance windows, 15 missing hourly bars in all (see src/tradecast/data/README.md)
    assert len(gaps) == 15
    assert {utc(2021, 4, 25, 5), utc(2021, 4, 25, 6), utc(2021, 4, 25, 7)} <= set(gaps)
    assert utc(2020, 6, 28, 2) in gaps and utc(2020, 6, 28, 4) in gaps
    frame = replay.frame("BTC/USDT")
    assert not set(gaps) & set(frame.index.to_pydatetime())
    first, last = replay.span("BTC/USDT")
    assert len(frame) + len(gaps) == (last - first) // timedelta(hours=1) + 1


def test_replay_logs_the_gaps_when_it_loads() -> None:
    with structlog.testing.capture_logs() as logs:
        ReplayMarket()
    loaded = {entry["symbol"]: entry for entry in logs if entry["event"] == "replay.loaded"}
    assert loaded["BTC/USDT"]["gaps"] == 8
    assert loaded["BTC/USDT"]["missing_bars"] == 15
    assert loaded["BTC/USDT"]["gap_runs"][0] == "2020-06-28T02:00:00+00:00 x3"


def test_replay_frame_is_a_float_frame_on_utc_open_times(replay: ReplayMarket) -> None:
    frame = replay.frame("BTC/USDT")
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert all(str(dtype) == "float64" for dtype in frame.dtypes)
    assert isinstance(frame.index, pd.DatetimeIndex) and str(frame.index.tz) == "UTC"
    assert frame.index.is_monotonic_increasing
    assert frame.loc["2020-06-09T00:00:00Z", "close"] == 9703.05
    upto = replay.frame("BTC/USDT", until=utc(2020, 6, 9, 2, 30))
    assert list(upto.index) == [pd.Timestamp(f"2020-06-09T0{h}:00Z") for h in range(3)]
    upto.loc[upto.index[0], "close"] = -1.0  # copy-on-write: the replay is untouched
    assert replay.frame("BTC/USDT").iloc[0]["close"] == 9703.05


async def test_replay_reads_a_user_csv_and_it_overrides_a_bundled_symbol(tmp_path: Path) -> None:
    csv = write_csv(
        tmp_path / "mine.csv",
        [
            "2022-01-01T01:00:00Z,11,12,10,11.5,3",
            "2022-01-01T00:00:00Z,10,11,9,10.5,2",  # unsorted on purpose
            "2022-01-01T03:00:00+00:00,12,13,11,12.5,0",
        ],
    )
    market = ReplayMarket(csv_paths={"btc/usdt": csv, "FOO/BAR": csv})
    assert await market.symbols() == ["BTC/USDT", "ETH/BUSD", "FOO/BAR"]
    bars = await market.candles("BTC/USDT", limit=10)
    assert [b.close for b in bars] == [Decimal("10.5"), Decimal("11.5"), Decimal("12.5")]
    assert market.gaps("FOO/BAR") == (utc(2022, 1, 1, 2),)
    only = ReplayMarket(csv_paths={"FOO/BAR": csv}, include_bundled=False)
    assert await only.symbols() == ["FOO/BAR"]


@pytest.mark.parametrize(
    ("lines", "header", "message"),
    [
        (
            ["2022-01-01T00:00:00Z,1,2,1,2"],
            "timestamp,open,high,low,close",
            r"bad\.csv: missing column\(s\) volume",
        ),
        ([], "time,o,h,l,c,volume", r"missing column\(s\) timestamp, open, high, low, close"),
        (["2022-01-01T00:00:00Z,1,2,1,x,5"], None, r"non-numeric value on line\(s\) 2"),
        (
            ["2022-01-01T00:00:00Z,1,2,1,1.5,5", "2022-01-01T01:00:00Z,1,2,1,,5"],
            None,
            r"line\(s\) 3",
        ),
        (["yesterday,1,2,1,1.5,5"], None, r"unreadable timestamp on line\(s\) 2"),
        (["2022-01-01T00:00:00Z,1,2,1,2.5,5"], None, r"bracket open and close; bad line\(s\) 2"),
        (["2022-01-01T00:00:00Z,0,2,0,1,5"], None, r"prices must be > 0"),
        (["2022-01-01T00:00:00Z,1,2,1,1,-5"], None, r"volume >= 0"),
        (
            ["2022-01-01T00:00:00Z,1,2,1,1,5", "2022-01-01T00:00:00Z,1,2,1,1,5"],
            None,
            r"appears twice on line\(s\) 2, 3",
        ),
        ([], None, "no rows"),
    ],
)
def test_replay_rejects_a_bad_csv_naming_file_and_lines(
    tmp_path: Path, lines: list[str], header: str | None, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("\n".join([header or "timestamp,open,high,low,close,volume", *lines]) + "\n")
    with pytest.raises(MarketDataError, match=message) as caught:
        ReplayMarket(csv_paths={"BAD/USDT": path})
    assert "bad.csv" in str(caught.value)


def test_replay_rejects_a_missing_or_empty_file(tmp_path: Path) -> None:
    with pytest.raises(MarketDataError, match=r"nope\.csv: no such CSV file"):
        ReplayMarket(csv_paths={"X/Y": tmp_path / "nope.csv"})
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(MarketDataError, match=r"empty\.csv: cannot read it as CSV"):
        ReplayMarket(csv_paths={"X/Y": tmp_path / "empty.csv"})


async def test_replay_from_frames_validates_like_a_csv(replay: ReplayMarket) -> None:
    frame = replay.frame("BTC/USDT").iloc[:48]
    market = ReplayMarket.from_frames({"btc/usdt": frame})
    assert await market.symbols() == ["BTC/USDT"]
    assert (await market.ticker("BTC/USDT")).timestamp == utc(2020, 6, 10, 23)
    with pytest.raises(MarketDataError, match="timezone-aware DatetimeIndex"):
        ReplayMarket.from_frames({"A/B": frame.reset_index(drop=True)})
    broken = frame.copy()
    broken.iloc[3, broken.columns.get_loc("high")] = 1.0
    with pytest.raises(MarketDataError, match="bracket open and close"):
        ReplayMarket.from_frames({"A/B": broken})


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    minutes=st.integers(min_value=-120, max_value=60 * 24 * 410),
    limit=st.integers(min_value=1, max_value=300),
)
async def test_replay_never_returns_a_bar_after_until(
    replay: ReplayMarket, minutes: int, limit: int
) -> None:
    until = utc(2020, 6, 9) + timedelta(minutes=minutes)
    bars = await replay.candles("BTC/USDT", until=until, limit=limit)
    expected = replay.frame("BTC/USDT").loc[:until].iloc[-limit:]
    assert [b.timestamp for b in bars] == list(expected.index.to_pydatetime())
    assert all(b.timestamp <= until for b in bars)
    assert [float(b.close) for b in bars] == list(expected["close"])

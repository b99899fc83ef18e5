"""Indicators against numbers worked out by hand on tiny series (the arithmetic is in the
comments), plus the no-look-ahead property on the real bundled candles."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradecast.domain import Candle
from tradecast.market.indicators import (
    IndicatorSummary,
    atr,
    bars_per_year,
    bollinger,
    candles_to_frame,
    ema,
    indicator_frame,
    log_returns,
    macd,
    realized_volatility,
    rsi,
    simple_returns,
    sma,
    summarize,
    summary_from_indicators,
    true_range,
)
from tradecast.market.replay import ReplayMarket

approx = pytest.approx


def series(*values: float) -> pd.Series:
    return pd.Series(values, dtype="float64")


def hourly_frame(closes: list[float], spread: float = 1.0) -> pd.DataFrame:
    index = pd.date_range("2021-01-01", periods=len(closes), freq="h", tz="UTC")
    close = np.array(closes, dtype="float64")
    return pd.DataFrame(
        {
            "open": close,
            "high": close + spread,
            "low": close - spread,
            "close": close,
            "volume": 1.0,
        },
        index=index,
    )


def values(result: pd.Series) -> list[float | None]:
    return [None if math.isnan(v) else v for v in result]


def test_indicator_sma() -> None:
    # (1+2+3)/3 = 2, (2+3+4)/3 = 3, (3+4+5)/3 = 4
    assert values(sma(series(1, 2, 3, 4, 5), 3)) == [None, None, 2.0, 3.0, 4.0]


def test_indicator_ema_seeded_with_the_first_sma() -> None:
    # period 3: alpha = 2/(3+1) = 0.5; seed at bar 2 = (2+4+6)/3 = 4
    # bar 3: 0.5*8 + 0.5*4 = 6;  bar 4: 0.5*3 + 0.5*6 = 4.5
    assert values(ema(series(2, 4, 6, 8, 3), 3)) == [None, None, 4.0, 6.0, 4.5]


def test_indicator_rsi_wilder() -> None:
    # closes 10 11 12 11 13 12 -> moves +1 +1 -1 +2 -1; period 3, alpha 1/3
    # bar 3: avg gain (1+1+0)/3 = 2/3, avg loss (0+0+1)/3 = 1/3, RS 2, RSI 100-100/3
    # bar 4: gain (2/3*2+2)/3 = 10/9, loss (1/3*2+0)/3 = 2/9, RS 5, RSI 100-100/6
    # bar 5: gain (10/9*2+0)/3 = 20/27, loss (2/9*2+1)/3 = 13/27, RS 20/13, RSI 100-1300/33
    result = values(rsi(series(10, 11, 12, 11, 13, 12), 3))
    assert result[:3] == [None, None, None]
    assert result[3:] == approx([100 - 100 / 3, 100 - 100 / 6, 100 - 1300 / 33])


def test_indicator_rsi_edges() -> None:
    assert values(rsi(series(1, 2, 3, 4), 3))[-1] == 100.0  # no losses
    assert values(rsi(series(5, 5, 5, 5), 3))[-1] == 50.0  # no moves
    assert values(rsi(series(4, 3, 2, 1), 3))[-1] == 0.0  # no gains


def test_indicator_macd_line_signal_histogram() -> None:
    # closes 1 2 3 5 8; fast 2 (alpha 2/3), slow 3 (alpha 1/2), signal 2 (alpha 2/3)
    # EMA2: bar1 1.5, bar2 2/3*3+1/3*1.5 = 2.5, bar3 2/3*5+1/3*2.5 = 25/6, bar4 16/3+25/18 = 121/18
    # EMA3: bar2 2, bar3 0.5*5+0.5*2 = 3.5, bar4 0.5*8+0.5*3.5 = 5.75
    # line: bar2 0.5, bar3 25/6-3.5 = 2/3, bar4 121/18-5.75 = 35/36
    # signal: seed bar3 (0.5+2/3)/2 = 7/12, bar4 2/3*35/36+1/3*7/12 = 91/108
    # histogram: bar3 2/3-7/12 = 1/12, bar4 35/36-91/108 = 7/54
    result = macd(series(1, 2, 3, 5, 8), fast=2, slow=3, signal=2)
    assert values(result["macd"]) == [None, None, approx(0.5), approx(2 / 3), approx(35 / 36)]
    assert values(result["signal"]) == [None, None, None, approx(7 / 12), approx(91 / 108)]
    assert values(result["hist"]) == [None, None, None, approx(1 / 12), approx(7 / 54)]
    with pytest.raises(ValueError, match="shorter"):
        macd(series(1, 2), fast=3, slow=3)


def test_indicator_bollinger_population_std_and_percent_b() -> None:
    # window 3, k 2. Bar 2: (1,2,3) mid 2, sigma sqrt(2/3); %b = 0.5 + (3-2)/(4 sigma)
    # Bar 4: (3,4,6) mid 13/3, sigma sqrt(((4/3)^2+(1/3)^2+(5/3)^2)/3) = sqrt(14/9)
    bands = bollinger(series(1, 2, 3, 4, 6), window=3, k=2.0)
    sigma2, sigma4 = math.sqrt(2 / 3), math.sqrt(14 / 9)
    assert bands["mid"].iloc[2] == approx(2.0)
    assert bands["upper"].iloc[2] == approx(2 + 2 * sigma2)
    assert bands["lower"].iloc[2] == approx(2 - 2 * sigma2)
    assert bands["pct_b"].iloc[2] == approx(0.5 + 1 / (4 * sigma2))
    assert bands["pct_b"].iloc[4] == approx(0.5 + (6 - 13 / 3) / (4 * sigma4))
    flat = bollinger(series(5, 5, 5), window=3)
    assert math.isnan(flat["pct_b"].iloc[2])  # zero width: %b undefined, not a crash


def test_indicator_true_range_and_wilder_atr() -> None:
    frame = pd.DataFrame(
        {"high": [10, 11, 12, 11], "low": [8, 9, 11, 9], "close": [9, 10.5, 11.5, 9.5]},
        dtype="float64",
    )
    # bar1: max(11-9, |11-9|, |9-9|) = 2; bar2: max(1, |12-10.5|, |11-10.5|) = 1.5
    # bar3: max(2, |11-11.5|, |9-11.5|) = 2.5 (the gap down counts)
    assert values(true_range(frame)) == [None, 2.0, 1.5, 2.5]
    # period 2: seed bar2 (2+1.5)/2 = 1.75; bar3 (1.75*1 + 2.5)/2 = 2.125
    assert values(atr(frame, 2)) == [None, None, 1.75, 2.125]


def test_indicator_simple_and_log_returns() -> None:
    close = series(100, 110, 99)
    assert values(simple_returns(close)) == [None, approx(0.1), approx(-0.1)]
    assert values(simple_returns(close, 2))[-1] == approx(99 / 100 - 1)
    assert values(log_returns(close)) == [None, approx(math.log(1.1)), approx(math.log(0.9))]


def test_indicator_realized_volatility_sample_std_annualised() -> None:
    close = series(100, 110, 99, 99)
    # window 2 of log returns (ln 1.1, ln 0.9), then (ln 0.9, 0): std of two = |a-b|/sqrt 2
    vol = realized_volatility(close, window=2)
    expected = [
        abs(math.log(1.1) - math.log(0.9)) / math.sqrt(2),
        abs(math.log(0.9)) / math.sqrt(2),
    ]
    assert values(vol) == [None, None, approx(expected[0]), approx(expected[1])]
    annual = realized_volatility(close, window=2, periods_per_year=8760)
    assert annual.iloc[-1] == approx(expected[1] * math.sqrt(8760))


def test_indicator_bars_per_year() -> None:
    assert bars_per_year(hourly_frame([1, 2, 3]).index) == approx(8760)
    assert bars_per_year(hourly_frame([1]).index) is None


def test_indicator_summary_of_a_steady_rise() -> None:
    closes = [100.0 + i for i in range(60)]  # 100 .. 159
    summary = summarize(hourly_frame(closes))
    assert summary.bars == 60 and summary.last_close == 159.0
    assert summary.as_of == datetime(2021, 1, 1, tzinfo=UTC) + timedelta(hours=59)
    assert summary.return_1 == approx(159 / 158 - 1)
    assert summary.return_24 == approx(159 / 135 - 1)
    assert summary.sma_20 == approx(149.5)  # mean of 140..159
    assert summary.sma_50 == approx(134.5)  # mean of 110..159
    assert summary.trend == "up"
    assert summary.rsi_14 == 100.0  # no losing bar
    # an EMA of a straight line seeded with its SMA lags by exactly (period-1)/2:
    # EMA12 = close - 5.5, EMA26 = close - 12.5, so MACD = 7, its signal 7, histogram 0
    assert summary.macd == approx(7.0) and summary.macd_signal == approx(7.0)
    assert summary.macd_hist == approx(0.0, abs=1e-9)
    # 20 consecutive integers: population std sqrt((20^2-1)/12); %b = 0.5 + 9.5/(4 std)
    assert summary.bollinger_pct_b == approx(0.5 + 9.5 / (4 * math.sqrt(399 / 12)))
    assert summary.atr_14 == approx(2.0)  # every bar spans close-1 .. close+1
    last_24 = np.diff(np.log(closes))[-24:]
    assert summary.volatility_24 == approx(float(np.std(last_24, ddof=1)))
    assert summary.volatility_annualised == approx(summary.volatility_24 * math.sqrt(8760))


def test_indicator_summary_trend_down_and_mixed() -> None:
    falling = summarize(hourly_frame([200.0 - i for i in range(60)]))
    assert falling.trend == "down" and falling.rsi_14 == 0.0
    dip = summarize(hourly_frame([100.0 + i for i in range(59)] + [120.0]))
    assert dip.trend == "mixed"  # close below SMA20 but SMA20 above SMA50


def test_indicator_summary_with_too_few_bars_is_mostly_none() -> None:
    summary = summarize(hourly_frame([10.0, 11.0, 12.0]))
    assert summary.last_close == 12.0 and summary.return_1 == approx(12 / 11 - 1)
    assert summary.rsi_14 is None and summary.macd is None and summary.sma_20 is None
    assert summary.atr_14 is None and summary.trend is None and summary.return_24 is None
    assert "rsi14=n/a" in summary.as_text() and "close=12" in summary.as_text()
    assert summarize(hourly_frame([])) == IndicatorSummary()


def test_indicator_prompt_text_keeps_what_the_situation_sentence_lacks() -> None:
    summary = summarize(hourly_frame([100.0 + i for i in range(60)]))
    text = summary.as_prompt_text()
    assert text.split() == [
        f"rsi14={summary.rsi_14:.1f}",
        f"macd_hist={summary.macd_hist:+.4g}",
        f"boll_pct_b={summary.bollinger_pct_b:.2f}",
        "trend=up",
    ]
    assert set(text.split()) < set(summary.as_text().split())


def test_indicator_candles_to_frame_converts_decimals() -> None:
    stamp = datetime(2021, 1, 1, tzinfo=UTC)
    candles = [
        Candle(
            timestamp=stamp + timedelta(hours=i),
            open=Decimal("1.1"),
            high=Decimal("2.5"),
            low=Decimal("1"),
            close=Decimal("2.2"),
            volume=Decimal("3"),
        )
        for i in (1, 0)
    ]
    frame = candles_to_frame(candles)
    assert list(frame.index) == [pd.Timestamp(stamp), pd.Timestamp(stamp + timedelta(hours=1))]
    assert frame.iloc[0].tolist() == [1.1, 2.5, 1.0, 2.2, 3.0]
    assert str(frame.index.tz) == "UTC"
    assert candles_to_frame([]).empty


@pytest.fixture(scope="module")
def btc_slice() -> pd.DataFrame:
    return ReplayMarket().frame("BTC/USDT").iloc[5000:5300]


@settings(max_examples=25, deadline=None)
@given(cut=st.integers(min_value=1, max_value=300))
def test_indicator_values_never_depend_on_later_bars(btc_slice: pd.DataFrame, cut: int) -> None:
    full = indicator_frame(btc_slice)
    part = indicator_frame(btc_slice.iloc[:cut])
    pd.testing.assert_frame_equal(part, full.iloc[:cut])
    assert summary_from_indicators(full.iloc[:cut]) == summarize(btc_slice.iloc[:cut])

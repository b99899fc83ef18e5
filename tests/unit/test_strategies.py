"""The strategy agents on synthetic series whose answer is known: a clean trend, a range, a
breakout, a stretched fall; and the daily bars they read never include a later bar."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradecast.agents.strategies import STRATEGIES, StrategyInputs, strategy_signals
from tradecast.agents.strategies.breakout import breakout_signal
from tradecast.agents.strategies.dca import TARGET_WEIGHT, dca_signal
from tradecast.agents.strategies.mean_reversion import mean_reversion_signal
from tradecast.agents.strategies.trend import trend_signal
from tradecast.domain import Action, Candle

HOURS = 24


def hourly(closes: np.ndarray, spread: float = 0.002) -> pd.DataFrame:
    """Hourly bars around ``closes`` (high and low ``spread`` either side)."""
    index = pd.date_range("2021-01-01", periods=len(closes), freq="h", tz="UTC")
    return pd.DataFrame(
        {
            "open": closes,
            "high": closes * (1 + spread),
            "low": closes * (1 - spread),
            "close": closes,
            "volume": 1.0,
        },
        index=index,
    )


def inputs_of(closes: np.ndarray, held_weight: float = 0.0) -> StrategyInputs:
    return StrategyInputs.from_frame(hourly(closes), HOURS, held_weight)


def wiggle(n: int, amplitude: float = 0.01, period: float = 37.0) -> np.ndarray:
    return 1 + amplitude * np.sin(np.arange(n) * 2 * math.pi / period)


def trend(days: int, daily_drift: float) -> np.ndarray:
    n = days * HOURS
    return 100 * np.exp(np.arange(n) * daily_drift / HOURS) * wiggle(n)


def range_bound(days: int) -> np.ndarray:
    n = days * HOURS
    return 100 * (1 + 0.03 * np.sin(np.arange(n) * 2 * math.pi / (9 * HOURS)))


def test_daily_bars_end_at_the_last_bar_and_drop_a_partial_first_day() -> None:
    closes = np.arange(1.0, 51.0)  # 50 hourly bars: 2 whole days, 2 bars dropped
    days = StrategyInputs.from_frame(hourly(closes, spread=0.0), HOURS).days
    assert list(days.close) == [26.0, 50.0]
    assert list(days.high) == [26.0, 50.0]
    assert list(days.low) == [3.0, 27.0]


def test_a_clean_up_trend_is_bought_and_a_down_trend_sold() -> None:
    up = trend_signal(inputs_of(trend(45, 0.01)))
    down = trend_signal(inputs_of(trend(45, -0.01)))
    assert up.action is Action.BUY and up.confidence > 0.8
    assert down.action is Action.SELL and down.confidence > 0.8
    assert "up trend" in up.rationale and "down trend" in down.rationale


def test_trend_holds_in_a_range_and_abstains_without_history() -> None:
    assert trend_signal(inputs_of(range_bound(45))).action is Action.HOLD
    short = trend_signal(inputs_of(trend(20, 0.01)))
    assert short.abstained and "needs 31 days" in (short.abstain_reason or "")


def test_mean_reversion_buys_a_stretched_fall_and_sells_a_stretched_rise() -> None:
    base = range_bound(40)
    fall = np.concatenate([base, base[-1] * np.linspace(1, 0.8, 3 * HOURS)])
    rise = np.concatenate([base, base[-1] * np.linspace(1, 1.25, 3 * HOURS)])
    bought = mean_reversion_signal(inputs_of(fall))
    sold = mean_reversion_signal(inputs_of(rise))
    assert bought.action is Action.BUY and "oversold" in bought.rationale
    assert sold.action is Action.SELL and "overbought" in sold.rationale


def test_mean_reversion_holds_in_the_middle_of_a_range() -> None:
    closes = range_bound(45)
    closes = closes[: len(closes) - (len(closes) % (9 * HOURS))]  # end mid-cycle
    signal = mean_reversion_signal(inputs_of(closes[: 40 * HOURS]))
    assert signal.action is Action.HOLD


def test_breakout_above_the_channel_is_a_buy_below_a_sell_inside_a_hold() -> None:
    base = range_bound(40)
    up = np.concatenate([base, base[-1] * np.linspace(1, 1.15, HOURS)])
    down = np.concatenate([base, base[-1] * np.linspace(1, 0.85, HOURS)])
    assert breakout_signal(inputs_of(up)).action is Action.BUY
    assert breakout_signal(inputs_of(down)).action is Action.SELL
    assert breakout_signal(inputs_of(base)).action is Action.HOLD


def test_dca_accumulates_a_small_step_until_its_target_and_never_sells() -> None:
    closes = trend(45, -0.01)
    flat = dca_signal(inputs_of(closes, held_weight=0.0))
    built = dca_signal(inputs_of(closes, held_weight=TARGET_WEIGHT))
    assert flat.action is Action.BUY and flat.size_fraction == 0.25
    assert flat.confidence == 0.6  # below its 30-day average: keener
    assert built.action is Action.HOLD


def test_only_the_enabled_strategies_vote_in_a_fixed_order() -> None:
    inputs = inputs_of(trend(45, 0.01))
    signals = strategy_signals(inputs, {"dca", "trend"})
    assert [s.agent for s in signals] == ["trend", "dca"]
    assert len(strategy_signals(inputs, STRATEGIES)) == 4


@settings(max_examples=50, deadline=None)
@given(
    drift=st.floats(-0.05, 0.05),
    noise=st.floats(0.0, 0.05),
    days=st.integers(1, 60),
    held=st.floats(0.0, 2.0),
)
def test_every_strategy_answers_a_bounded_signal_on_any_series(
    drift: float, noise: float, days: int, held: float
) -> None:
    rng = np.random.default_rng(7)
    steps = drift / HOURS + noise * rng.standard_normal(days * HOURS) / math.sqrt(HOURS)
    closes = 100 * np.exp(np.cumsum(steps))
    inputs = inputs_of(closes, held)
    for signal in strategy_signals(inputs, STRATEGIES):
        assert 0.0 <= signal.confidence <= 1.0
        assert signal.abstained or signal.rationale


def test_changing_later_bars_never_changes_an_earlier_signal() -> None:
    closes = trend(50, 0.004)
    cut = 46 * HOURS
    before = strategy_signals(inputs_of(closes[:cut]), STRATEGIES)
    rewritten = closes.copy()
    rewritten[cut:] *= 0.5
    after = strategy_signals(inputs_of(rewritten[:cut]), STRATEGIES)
    assert before == after


def test_candles_and_frames_group_into_the_same_days() -> None:
    frame = hourly(trend(3, 0.01)[5:])
    candles = [
        Candle(
            timestamp=t,
            open=Decimal(str(float(row.open))),
            high=Decimal(str(float(row.high))),
            low=Decimal(str(float(row.low))),
            close=Decimal(str(float(row.close))),
            volume=Decimal(1),
        )
        for t, row in frame.iterrows()
    ]
    from_candles = StrategyInputs.from_candles(candles, HOURS).days
    from_frame = StrategyInputs.from_frame(frame, HOURS).days
    for name in ("high", "low", "close"):
        assert list(getattr(from_candles, name)) == list(getattr(from_frame, name))
    assert len(from_frame) == 2 and len(StrategyInputs.from_candles([], HOURS).days) == 0


def test_bars_per_day_must_be_positive() -> None:
    with pytest.raises(ValueError, match="bars_per_day"):
        StrategyInputs.from_frame(hourly(trend(2, 0.0)), 0.0)

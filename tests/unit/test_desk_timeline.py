"""When the desk loop ticks: replay spans and live cadence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tradecast.bootstrap import build_market
from tradecast.desk.timeline import (
    LiveTimeline,
    ReplayTimeline,
    floor_instant,
    live_timeline,
    replay_timeline,
)
from tradecast.errors import DeskConflict
from tradecast.settings import DeskConfig, Settings

HOUR = timedelta(hours=1)


class Replay:
    def span(self, symbol: str) -> tuple[datetime, datetime]:
        assert symbol == "BTC/USDT"
        return datetime(2021, 1, 1, tzinfo=UTC), datetime(2021, 2, 1, tzinfo=UTC)


def test_floor_instant_rounds_down_to_the_cadence():
    moment = datetime(2021, 1, 5, 12, 34, 56, tzinfo=UTC)
    assert floor_instant(moment, HOUR) == datetime(2021, 1, 5, 12, tzinfo=UTC)
    assert floor_instant(moment, timedelta(hours=4)) == datetime(2021, 1, 5, 12, tzinfo=UTC)
    assert floor_instant(moment, timedelta(days=1)) == datetime(2021, 1, 5, tzinfo=UTC)


def test_a_replay_starts_once_enough_bars_have_closed_and_ends_at_the_last_close():
    timeline = replay_timeline(Replay().span, DeskConfig(candles=30, every="4h"), HOUR)
    assert timeline.mode == "replay" and timeline.step == timedelta(hours=4)
    # 30 bars after the first open is 2021-01-02T06:00, rounded up to the 4h cadence
    assert timeline.first == datetime(2021, 1, 2, 8, tzinfo=UTC)
    assert timeline.last == datetime(2021, 2, 1, 1, tzinfo=UTC)
    assert not timeline.finished(timeline.last)
    assert timeline.finished(timeline.last + timedelta(seconds=1))


def test_replay_from_is_taken_as_given_and_checked():
    start = datetime(2021, 1, 10, 3, tzinfo=UTC)
    timeline = replay_timeline(Replay().span, DeskConfig(replay_from=start), HOUR)
    assert timeline.first == start
    with pytest.raises(DeskConflict, match="TRADECAST_DESK__REPLAY_FROM"):
        replay_timeline(
            Replay().span, DeskConfig(replay_from=datetime(2022, 1, 1, tzinfo=UTC)), HOUR
        )


def test_a_live_timeline_starts_at_the_current_bar_and_never_ends():
    timeline = live_timeline(DeskConfig(every="15m"))
    assert timeline == LiveTimeline(timedelta(minutes=15), timeline.first)
    assert timeline.first <= datetime.now(UTC) < timeline.first + timedelta(minutes=15)
    assert not timeline.finished(datetime(2100, 1, 1, tzinfo=UTC))


def test_a_live_tick_waits_for_its_bar_to_close_and_decides_no_later_than_now():
    timeline = live_timeline(DeskConfig(every="1h"))
    ahead = timeline.first + 2 * HOUR
    assert timeline.moment(ahead) == timeline.first
    assert 3600 < timeline.seconds_until_due(ahead) <= 2 * 3600 + 5
    assert timeline.seconds_until_due(timeline.first - HOUR) == 0.0


def test_bootstrap_pairs_the_bundled_replay_with_a_replay_timeline(tmp_path):
    market, timelines = build_market(Settings(data_dir=tmp_path))
    timeline = timelines(DeskConfig(symbol="BTC/USDT", every="1h"))
    assert isinstance(timeline, ReplayTimeline) and timeline.resumable
    _, last_open = market.span("BTC/USDT")
    assert timeline.last == last_open + HOUR
    assert timeline.moment(timeline.first) == timeline.first
    assert timeline.seconds_until_due(timeline.first) == 0.0

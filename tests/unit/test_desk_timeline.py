"""When the desk loop ticks: replay spans and live cadence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from tradecast.desk.service import Timeline, build_timeline, floor_instant
from tradecast.errors import DeskConflict
from tradecast.settings import DeskConfig

HOUR = timedelta(hours=1)


class Replay:
    def span(self, symbol: str) -> tuple[datetime, datetime]:
        assert symbol == "BTC/USDT"
        return datetime(2021, 1, 1, tzinfo=UTC), datetime(2021, 2, 1, tzinfo=UTC)


def runtime(source: object) -> SimpleNamespace:
    return SimpleNamespace(market=SimpleNamespace(market=source))


def test_floor_instant_rounds_down_to_the_cadence():
    moment = datetime(2021, 1, 5, 12, 34, 56, tzinfo=UTC)
    assert floor_instant(moment, HOUR) == datetime(2021, 1, 5, 12, tzinfo=UTC)
    assert floor_instant(moment, timedelta(hours=4)) == datetime(2021, 1, 5, 12, tzinfo=UTC)
    assert floor_instant(moment, timedelta(days=1)) == datetime(2021, 1, 5, tzinfo=UTC)


def test_a_replay_starts_once_enough_bars_have_closed_and_ends_at_the_last_close():
    timeline = build_timeline(runtime(Replay()), DeskConfig(candles=30, every="4h"), HOUR)
    assert timeline.mode == "replay" and timeline.step == timedelta(hours=4)
    # 30 bars after the first open is 2021-01-02T06:00, rounded up to the 4h cadence
    assert timeline.first == datetime(2021, 1, 2, 8, tzinfo=UTC)
    assert timeline.last == datetime(2021, 2, 1, 1, tzinfo=UTC)
    assert not timeline.finished(timeline.last)
    assert timeline.finished(timeline.last + timedelta(seconds=1))


def test_replay_from_is_taken_as_given_and_checked():
    start = datetime(2021, 1, 10, 3, tzinfo=UTC)
    timeline = build_timeline(runtime(Replay()), DeskConfig(replay_from=start), HOUR)
    assert timeline.first == start
    with pytest.raises(DeskConflict, match="TRADECAST_DESK__REPLAY_FROM"):
        build_timeline(
            runtime(Replay()), DeskConfig(replay_from=datetime(2022, 1, 1, tzinfo=UTC)), HOUR
        )


def test_a_market_without_a_replay_span_is_live():
    timeline = build_timeline(runtime(object()), DeskConfig(every="15m"), HOUR)
    assert timeline == Timeline("live", timedelta(minutes=15), timeline.first)
    assert timeline.first <= datetime.now(UTC) < timeline.first + timedelta(minutes=15)
    assert not timeline.finished(datetime(2100, 1, 1, tzinfo=UTC))

"""A desk ready to tick: what :func:`tradecast.bootstrap.open_desk` hands the API, the CLI and
the eval harness, and the clock its replayed ticks run on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tradecast.broker.paper import Broker
from tradecast.desk.timeline import TimelineFactory
from tradecast.domain import utc_now
from tradecast.graphs.desk import DeskDependencies
from tradecast.graphs.runner import DeskRunner
from tradecast.market.base import MarketData
from tradecast.memory.base import DecisionMemory
from tradecast.news.view import NewsView
from tradecast.risk.execution import GatedExecutor
from tradecast.settings import Settings


class TickClock:
    """The desk's clock: the tick's instant while replaying, the wall clock otherwise."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start

    def set(self, at: datetime) -> None:
        """Make ``at`` the current instant (a replayed tick)."""
        self._now = at

    def __call__(self) -> datetime:
        return self._now or utc_now()


@dataclass
class DeskRuntime:
    """A desk ready to tick, with the parts the API and CLI read from."""

    settings: Settings
    market: MarketData
    broker: Broker
    executor: GatedExecutor
    memory: DecisionMemory
    runner: DeskRunner
    clock: TickClock
    timelines: TimelineFactory
    """The timeline of a desk configuration on this market (replay or live)."""
    news: NewsView | None = None
    """The news the analyst reads (None: no news source)."""
    deps: DeskDependencies | None = None
    """What the desk graph was built from (the portfolio desk builds its graph from it)."""

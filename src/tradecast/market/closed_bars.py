"""The market as the desk may see it at an instant: only bars that have closed by then.

A bar that opened at 10:00 is not known until 11:00. Sources answer "bars that opened at or
before t"; this view shifts every question back by one bar, so a decision at t sees exactly
the bars closed by t and is priced at the last close, in replays and live alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from tradecast.domain import Candle, OrderBook, Ticker
from tradecast.domain.base import parse_duration
from tradecast.market.base import MarketData


class ClosedBarsView:
    """A ``MarketData`` that answers as of the last bar closed at the asked instant."""

    def __init__(self, market: MarketData, bar: timedelta) -> None:
        if bar <= timedelta(0):
            raise ValueError("bar length must be positive")
        self.market = market
        self.bar = bar

    def _shift(self, moment: datetime | None) -> datetime | None:
        return None if moment is None else moment - self.bar

    async def symbols(self) -> Sequence[str]:
        """The source's symbols."""
        return await self.market.symbols()

    async def candles(
        self, symbol: str, until: datetime | None = None, limit: int = 200
    ) -> Sequence[Candle]:
        """The last ``limit`` bars closed at or before ``until``."""
        if until is None:
            bars = await self.market.candles(symbol, None, limit + 1)
            return bars[:-1][-limit:]
        return await self.market.candles(symbol, self._shift(until), limit)

    async def ticker(self, symbol: str, at: datetime | None = None) -> Ticker:
        """The last close known at ``at``, stamped with the instant it became known."""
        ticker = await self.market.ticker(symbol, self._shift(at))
        if at is None:
            return ticker
        return ticker.model_copy(update={"timestamp": ticker.timestamp + self.bar})

    async def order_book(self, symbol: str, at: datetime | None = None) -> OrderBook | None:
        """The source's order book (sources only have one live)."""
        return await self.market.order_book(symbol, at)

    async def aclose(self) -> None:
        """Close the source (a ccxt session, for instance)."""
        await self.market.aclose()


def parse_timeframe(timeframe: str) -> timedelta:
    """'1h' -> 1 hour; units m, h, d, w."""
    return parse_duration(timeframe, "timeframe")

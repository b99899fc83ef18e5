"""The market-data interface every source implements (replay of bundled candles, ccxt live)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from tradecast.domain import Candle, OrderBook, Ticker


@runtime_checkable
class MarketData(Protocol):
    """Candles up to a time, the latest ticker, and an order book where the source has one.

    ``until`` is inclusive and is the caller's notion of "now": a source never returns a bar
    that opened after it. Unknown symbols raise :class:`tradecast.errors.MarketDataError`.
    """

    async def symbols(self) -> Sequence[str]:
        """Symbols this source can serve, as 'BASE/QUOTE'."""
        ...

    async def candles(
        self, symbol: str, until: datetime | None = None, limit: int = 200
    ) -> Sequence[Candle]:
        """The last ``limit`` bars that opened at or before ``until`` (None: now), oldest first."""
        ...

    async def ticker(self, symbol: str, at: datetime | None = None) -> Ticker:
        """The latest price at ``at`` (None: now)."""
        ...

    async def order_book(self, symbol: str, at: datetime | None = None) -> OrderBook | None:
        """The order book at ``at`` where the source has one, else None."""
        ...

    async def aclose(self) -> None:
        """Release the source's connections (an exchange session); safe to call twice."""
        ...

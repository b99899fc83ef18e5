"""The paper account's exposure as the desk sees it: signed position values at the broker's
marks, and VaR from the daily returns of the bars closed by an instant."""

from __future__ import annotations

from datetime import datetime, timedelta

from tradecast.domain import Portfolio
from tradecast.market.base import MarketData
from tradecast.risk.exposure import Exposure, daily_returns, measure
from tradecast.settings import RiskLimits

MAX_BARS = 20_000
"""The most bars read per symbol for the returns (a year of 30-minute bars)."""


def bars_needed(limits: RiskLimits, bar: timedelta) -> int:
    """How many bars cover the correlation and VaR window (two days spare)."""
    return int(timedelta(days=limits.risk_window_days + 2) / bar) + 1


def bars_for(limits: RiskLimits, bar: timedelta) -> int:
    """The bars read per symbol: the window's, at most :data:`MAX_BARS`."""
    return min(MAX_BARS, bars_needed(limits, bar))


def window_note(limits: RiskLimits, bar: timedelta) -> str | None:
    """Why VaR covers fewer days than ``risk_window_days`` (None: it covers them all)."""
    if bars_needed(limits, bar) <= MAX_BARS:
        return None
    days = MAX_BARS * bar / timedelta(days=1)
    return (
        f"VaR and correlation read {MAX_BARS:,} bars a symbol: {days:.0f} days of "
        f"{bar} bars, not the {limits.risk_window_days} days of risk_window_days"
    )


async def book_exposure(
    market: MarketData, bar: timedelta, book: Portfolio, at: datetime, limits: RiskLimits
) -> Exposure:
    """The book's exposure at its marks, with VaR from the bars closed by ``at``.

    Raises:
        MarketDataError: the bars could not be read.
    """
    values = {
        p.symbol: p.market_value(book.prices.get(p.symbol, p.avg_price))
        for p in book.positions
        if p.quantity > 0
    }
    returns = {
        symbol: daily_returns(
            await market.candles(symbol, until=at, limit=bars_for(limits, bar)), bar
        )
        for symbol in values
    }
    return measure(values, book.equity, returns, limits)

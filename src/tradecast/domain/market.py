"""Market data: candles, tickers and order books."""

from __future__ import annotations

from pydantic import Field, model_validator

from tradecast.domain.base import DomainModel, Price, Quantity, Symbol, UtcDatetime


class Candle(DomainModel):
    """One OHLCV bar; ``timestamp`` is the bar's open time."""

    timestamp: UtcDatetime
    open: Price
    high: Price
    low: Price
    close: Price
    volume: Quantity

    @model_validator(mode="after")
    def _consistent_range(self) -> Candle:
        if self.low > min(self.open, self.close) or self.high < max(self.open, self.close):
            raise ValueError(
                f"candle at {self.timestamp.isoformat()}: low/high must bracket open and close"
            )
        return self


class Ticker(DomainModel):
    """The latest price of a symbol at a moment."""

    symbol: Symbol
    timestamp: UtcDatetime
    last: Price
    bid: Price | None = None
    ask: Price | None = None


class OrderBookLevel(DomainModel):
    """One price level of an order book."""

    price: Price
    quantity: Quantity


class OrderBook(DomainModel):
    """Bids (best first) and asks (best first) at a moment."""

    symbol: Symbol
    timestamp: UtcDatetime
    bids: tuple[OrderBookLevel, ...] = Field(default=())
    asks: tuple[OrderBookLevel, ...] = Field(default=())

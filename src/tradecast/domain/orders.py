"""Orders, fills, positions and the portfolio."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from tradecast.domain.base import (
    DomainModel,
    Money,
    PositiveQuantity,
    Price,
    Quantity,
    Symbol,
    UtcDatetime,
)


class Side(StrEnum):
    """Order direction."""

    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    """How an order is priced."""

    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(StrEnum):
    """Lifecycle of an order at the broker."""

    OPEN = "open"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


class OrderIntent(DomainModel):
    """What someone wants to trade, before the risk gate and the broker see it."""

    symbol: Symbol
    side: Side
    quantity: PositiveQuantity
    order_type: OrderType = OrderType.MARKET
    limit_price: Price | None = None
    stop_loss: Price | None = None
    take_profit: Price | None = None
    time_stop_at: UtcDatetime | None = Field(
        default=None,
        description="close the whole position at the first price at or after this instant",
    )
    client_order_id: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _limit_has_price(self) -> OrderIntent:
        if self.order_type is OrderType.LIMIT and self.limit_price is None:
            raise ValueError("a limit order needs limit_price")
        if self.order_type is OrderType.MARKET and self.limit_price is not None:
            raise ValueError("a market order takes no limit_price")
        return self


class Order(DomainModel):
    """An order the broker accepted (or rejected), with its identity."""

    id: str
    client_order_id: str
    intent: OrderIntent
    status: OrderStatus
    created_at: UtcDatetime
    reason: str | None = None


class Fill(DomainModel):
    """An execution of (part of) an order."""

    order_id: str
    symbol: Symbol
    side: Side
    quantity: PositiveQuantity
    price: Price
    fee: Money
    timestamp: UtcDatetime


PositionSide = Literal["long", "short"]


class Position(DomainModel):
    """A position in one symbol: long (spot or margin), or short (a margin account only).
    ``quantity`` is never negative; ``side`` says which way it points."""

    symbol: Symbol
    quantity: Quantity
    avg_price: Price
    side: PositionSide = "long"
    realized_pnl: Money = Decimal(0)
    stop_loss: Price | None = None
    take_profit: Price | None = None
    time_stop_at: UtcDatetime | None = None
    opened_at: UtcDatetime | None = None
    liquidation_price: Price | None = Field(
        default=None,
        description="a short's price at which the margin account reaches its maintenance "
        "line, other marks unchanged (None: a long, or a spot account)",
    )

    @property
    def signed_quantity(self) -> Decimal:
        """The quantity, negative for a short."""
        return -self.quantity if self.side == "short" else self.quantity

    def market_value(self, price: Decimal) -> Decimal:
        """Value of the position at ``price`` (negative for a short: what buying it back
        costs)."""
        return self.signed_quantity * price

    def unrealized_pnl(self, price: Decimal) -> Decimal:
        """Gain or loss if the position were closed at ``price`` (before fees)."""
        return (price - self.avg_price) * self.signed_quantity


class Portfolio(DomainModel):
    """Cash, positions and their value at the latest known prices."""

    cash: Money
    quote_currency: str = "USDT"
    positions: tuple[Position, ...] = ()
    prices: dict[str, Price] = Field(default_factory=dict)
    realized_pnl: Money = Decimal(0)
    fees_paid: Money = Decimal(0)
    peak_equity: Money | None = None
    day_start_equity: Money | None = None
    timestamp: UtcDatetime | None = None
    stop_outs: dict[str, UtcDatetime] = Field(
        default_factory=dict, description="when each symbol last hit its stop-loss (cooldown)"
    )
    borrow_paid: Money = Field(
        default=Decimal(0),
        description="borrow fees paid on shorts so far (margin accounts; in realized_pnl)",
    )

    def position(self, symbol: str) -> Position | None:
        """The open long position in ``symbol``, if any."""
        return next(
            (
                p
                for p in self.positions
                if p.symbol == symbol and p.quantity > 0 and p.side == "long"
            ),
            None,
        )

    def short(self, symbol: str) -> Position | None:
        """The open short position in ``symbol``, if any (margin accounts only)."""
        return next(
            (
                p
                for p in self.positions
                if p.symbol == symbol and p.quantity > 0 and p.side == "short"
            ),
            None,
        )

    @property
    def positions_value(self) -> Decimal:
        """Market value of every position at the known prices (avg price when unknown)."""
        return sum(
            (p.market_value(self.prices.get(p.symbol, p.avg_price)) for p in self.positions),
            Decimal(0),
        )

    @property
    def equity(self) -> Decimal:
        """Cash plus positions at market."""
        return self.cash + self.positions_value

    @property
    def unrealized_pnl(self) -> Decimal:
        """Sum of open positions' unrealised P&L at the known prices."""
        return sum(
            (p.unrealized_pnl(self.prices.get(p.symbol, p.avg_price)) for p in self.positions),
            Decimal(0),
        )

    @property
    def open_positions(self) -> int:
        """How many symbols have a non-zero position."""
        return sum(1 for p in self.positions if p.quantity > 0)

"""The tools agents may call: prices, an indicator summary, the portfolio, and orders.

:func:`build_agent_tools` returns langchain-core tools closed over one
:class:`~tradecast.risk.execution.GatedExecutor` (market data, broker, risk limits, clock).
``submit_order`` always goes through the risk gate and returns its verdict. Arguments are
validated by pydantic; bad arguments and refused requests come back to the model as a clear
error message (a ``ToolMessage`` with ``status="error"`` when called with a tool call), never as
an exception through the graph. The tools are async: call them with ``ainvoke``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
)

from tradecast.domain import Order, OrderIntent, OrderType, Portfolio, Side, canonical_symbol
from tradecast.errors import MarketDataError
from tradecast.market.indicators import candles_to_frame, summarize
from tradecast.risk.execution import ExecutionReport, GatedExecutor

SUMMARY_BARS = 200
"""Bars fed to the indicator summary (enough for SMA50 and a settled MACD)."""

# Small local models decode against the JSON schema: advertise plain numbers, accept strings.
PositiveNumber = Annotated[
    Decimal,
    Field(gt=0, allow_inf_nan=False),
    WithJsonSchema({"type": "number", "exclusiveMinimum": 0}),
]


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SymbolArgs(_Args):
    """Arguments of the per-symbol read tools."""

    symbol: str = Field(description="market symbol as BASE/QUOTE, e.g. BTC/USDT")

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        return canonical_symbol(value)


class NoArgs(_Args):
    """No arguments."""


class SubmitOrderArgs(SymbolArgs):
    """Arguments of ``submit_order``."""

    side: Annotated[Literal["BUY", "SELL"], BeforeValidator(_upper)] = Field(
        description="BUY or SELL (spot: SELL only what is held)"
    )
    quantity: PositiveNumber = Field(description="amount of the base asset, e.g. 0.01 BTC")
    order_type: Annotated[Literal["market", "limit"], BeforeValidator(_lower)] = Field(
        default="market", description="market (now) or limit (at limit_price or better)"
    )
    limit_price: PositiveNumber | None = Field(default=None, description="for limit orders")
    stop_loss: PositiveNumber | None = Field(
        default=None, description="BUY only: sell everything if the price falls to this"
    )
    take_profit: PositiveNumber | None = Field(
        default=None, description="BUY only: sell everything if the price rises to this"
    )
    client_order_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="optional id making a retry safe (the same id never fills twice)",
    )

    def to_intent(self) -> OrderIntent:
        """The order intent these arguments describe (ValidationError if inconsistent)."""
        return OrderIntent(
            symbol=self.symbol,
            side=Side(self.side),
            quantity=self.quantity,
            order_type=OrderType(self.order_type),
            limit_price=self.limit_price,
            stop_loss=self.stop_loss,
            take_profit=self.take_profit,
            client_order_id=self.client_order_id,
        )


def describe_validation_error(error: ValidationError | Any) -> str:
    """A validation error as one line a model can act on."""
    if not isinstance(error, ValidationError):
        return f"invalid arguments: {error}"
    problems = []
    for err in error.errors():
        message = err["msg"].removeprefix("Value error, ")
        if err["loc"]:
            where = ".".join(str(p) for p in err["loc"])
            problems.append(f"{where}: {message} (got {err.get('input')!r})")
        else:
            problems.append(message)
    return "invalid arguments: " + "; ".join(problems)


def build_agent_tools(executor: GatedExecutor) -> list[BaseTool]:
    """``get_price``, ``get_candles_summary``, ``get_portfolio`` and ``submit_order``."""

    async def get_price(symbol: str) -> dict[str, Any]:
        try:
            ticker = await executor.market.ticker(symbol, at=executor.now())
        except MarketDataError as exc:
            raise ToolException(str(exc)) from None
        return {
            "symbol": ticker.symbol,
            "price": str(ticker.last),
            "as_of": ticker.timestamp.isoformat(),
        }

    async def get_candles_summary(symbol: str) -> dict[str, Any]:
        try:
            candles = await executor.market.candles(
                symbol, until=executor.now(), limit=SUMMARY_BARS
            )
        except MarketDataError as exc:
            raise ToolException(str(exc)) from None
        if not candles:
            raise ToolException(f"no {symbol} candles before {executor.now().isoformat()}")
        summary = summarize(candles_to_frame(candles))
        return {"symbol": symbol, **summary.model_dump(mode="json"), "text": summary.as_text()}

    async def get_portfolio() -> dict[str, Any]:
        return portfolio_view(
            await _current_portfolio(executor), open_orders=executor.broker.orders()
        )

    async def submit_order(**arguments: Any) -> dict[str, Any]:
        try:
            intent = SubmitOrderArgs.model_validate(arguments).to_intent()
        except ValidationError as exc:
            raise ToolException(describe_validation_error(exc)) from None
        return report_view(await executor.submit(intent))

    common: dict[str, Any] = {
        "handle_validation_error": describe_validation_error,
        "handle_tool_error": True,
    }
    return [
        StructuredTool.from_function(
            coroutine=get_price,
            name="get_price",
            args_schema=SymbolArgs,
            description="Latest price of a symbol (BASE/QUOTE).",
            **common,
        ),
        StructuredTool.from_function(
            coroutine=get_candles_summary,
            name="get_candles_summary",
            args_schema=SymbolArgs,
            description=(
                "Latest indicators of a symbol: returns, RSI14, MACD, Bollinger %B, ATR14, "
                "volatility, SMA20/50 and the trend."
            ),
            **common,
        ),
        StructuredTool.from_function(
            coroutine=get_portfolio,
            name="get_portfolio",
            args_schema=NoArgs,
            description="Cash, equity, open positions with P&L, and open orders.",
            **common,
        ),
        StructuredTool.from_function(
            coroutine=submit_order,
            name="submit_order",
            args_schema=SubmitOrderArgs,
            description=(
                "Submit a spot order. It always passes the risk gate first, which may reject "
                "it or shrink its quantity; the answer gives the verdict with reasons and, "
                "when approved, the order and its fills."
            ),
            **common,
        ),
    ]


async def _current_portfolio(executor: GatedExecutor) -> Portfolio:
    """The portfolio valued at the market's prices now (read-only: nothing is marked)."""
    held = executor.broker.portfolio()
    prices: dict[str, Decimal] = {}
    for position in held.positions:
        try:
            ticker = await executor.market.ticker(position.symbol, at=executor.now())
        except MarketDataError:
            continue  # keep the broker's last mark for this one
        prices[position.symbol] = ticker.last
    return executor.broker.portfolio(prices) if prices else held


def portfolio_view(portfolio: Portfolio, open_orders: list[Order] | None = None) -> dict[str, Any]:
    """The portfolio as JSON values for a model (money as exact decimal strings)."""
    positions = []
    for p in portfolio.positions:
        price = portfolio.prices.get(p.symbol, p.avg_price)
        positions.append(
            {
                "symbol": p.symbol,
                "quantity": str(p.quantity),
                "avg_price": str(p.avg_price),
                "price": str(price),
                "value": _money(p.market_value(price)),
                "unrealized_pnl": _money(p.unrealized_pnl(price)),
                "stop_loss": _opt(p.stop_loss),
                "take_profit": _opt(p.take_profit),
            }
        )
    resting = [o for o in (open_orders or []) if o.status.value == "open"]
    return {
        "cash": _money(portfolio.cash),
        "equity": _money(portfolio.equity),
        "quote_currency": portfolio.quote_currency,
        "positions": positions,
        "open_orders": [_order_view(o) for o in resting],
        "realized_pnl": _money(portfolio.realized_pnl),
        "unrealized_pnl": _money(portfolio.unrealized_pnl),
        "fees_paid": _money(portfolio.fees_paid),
        "as_of": portfolio.timestamp.isoformat() if portfolio.timestamp else None,
    }


def report_view(report: ExecutionReport) -> dict[str, Any]:
    """An execution report as JSON values for a model."""
    verdict = report.verdict
    view: dict[str, Any] = {
        "approved": verdict.approved,
        "shrunk": verdict.shrunk,
        "reasons": list(verdict.reasons),
        "price_checked": _opt(report.price),
        "approved_order": _intent_view(verdict.intent) if verdict.intent else None,
    }
    if report.execution is not None:
        view["order"] = _order_view(report.execution.order)
        view["fills"] = [
            {
                "quantity": str(f.quantity),
                "price": str(f.price),
                "fee": str(f.fee),
                "at": f.timestamp.isoformat(),
            }
            for f in report.execution.fills
        ]
        view["duplicate"] = report.execution.duplicate
    if report.error:
        view["error"] = report.error
    return view


def _intent_view(intent: OrderIntent) -> dict[str, Any]:
    return {
        "symbol": intent.symbol,
        "side": intent.side.value,
        "quantity": str(intent.quantity),
        "order_type": intent.order_type.value,
        "limit_price": _opt(intent.limit_price),
        "stop_loss": _opt(intent.stop_loss),
        "take_profit": _opt(intent.take_profit),
        "client_order_id": intent.client_order_id,
    }


def _order_view(order: Order) -> dict[str, Any]:
    return {"id": order.id, "status": order.status.value, **_intent_view(order.intent)}


def _money(amount: Decimal) -> str:
    return str(amount.quantize(Decimal("0.01")))


def _opt(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


__all__ = [
    "SubmitOrderArgs",
    "SymbolArgs",
    "build_agent_tools",
    "describe_validation_error",
    "portfolio_view",
    "report_view",
]

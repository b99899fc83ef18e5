"""The agent tools, invoked as a model would, on the real replay market and paper broker."""

from __future__ import annotations

import json
import math
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from tradecast.agents.tools import build_agent_tools
from tradecast.broker.paper import PaperBroker
from tradecast.domain import OrderIntent, Side
from tradecast.market.indicators import summarize
from tradecast.market.replay import ReplayMarket
from tradecast.risk.execution import GatedExecutor
from tradecast.settings import RiskLimits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.broker import BTC, ETH, Clock, paper_broker

D = Decimal
NOW = datetime(2021, 1, 5, 12, 0, tzinfo=UTC)


@cache
def bundled() -> ReplayMarket:
    return ReplayMarket()


class Desk:
    """The tools with what they close over, for a test to look behind them."""

    def __init__(self, limits: RiskLimits | None = None) -> None:
        self.clock = Clock(NOW)
        self.market = ReplayMarket.from_frames(
            {s: bundled().frame(s) for s in (BTC, ETH)}, clock=self.clock
        )
        self.broker: PaperBroker = paper_broker(clock=self.clock)
        self.executor = GatedExecutor(self.broker, self.market, limits or RiskLimits(), self.clock)
        self.tools: dict[str, BaseTool] = {t.name: t for t in build_agent_tools(self.executor)}

    async def call(self, name: str, args: dict[str, Any] | None = None) -> Any:
        return await self.tools[name].ainvoke(args or {})

    def books(self) -> tuple[object, ...]:
        return (self.broker.portfolio(), self.broker.orders(), self.broker.fills())


@pytest.fixture
def desk() -> Desk:
    return Desk()


def close_at(symbol: str, moment: datetime) -> Decimal:
    frame = bundled().frame(symbol, until=moment)
    return D(repr(float(frame["close"].iloc[-1])))


def test_broker_tools_are_the_four_expected_with_number_schemas(desk: Desk) -> None:
    assert sorted(desk.tools) == [
        "get_candles_summary",
        "get_portfolio",
        "get_price",
        "submit_order",
    ]
    params = convert_to_openai_tool(desk.tools["submit_order"])["function"]["parameters"]
    assert params["properties"]["quantity"]["type"] == "number"
    assert params["properties"]["side"]["enum"] == ["BUY", "SELL"]
    assert params["required"] == ["symbol", "side", "quantity"]


async def test_broker_tool_get_price_is_the_replay_close_at_the_clock(desk: Desk) -> None:
    answer = await desk.call("get_price", {"symbol": "btc/usdt"})
    assert answer == {"symbol": BTC, "price": str(close_at(BTC, NOW)), "as_of": NOW.isoformat()}
    desk.clock.advance(hours=3)
    later = await desk.call("get_price", {"symbol": BTC})
    assert later["price"] == str(close_at(BTC, NOW + timedelta(hours=3)))


async def test_broker_tool_candles_summary_uses_the_indicators(desk: Desk) -> None:
    answer = await desk.call("get_candles_summary", {"symbol": ETH})
    expected = summarize(bundled().frame(ETH, until=NOW).iloc[-200:])
    assert answer["bars"] == 200
    assert answer["as_of"].startswith("2021-01-05T12:00")
    assert math.isclose(answer["rsi_14"], expected.rsi_14 or 0)
    assert answer["trend"] == expected.trend
    assert answer["text"] == expected.as_text()


async def test_broker_tool_submit_order_passes_the_gate_and_fills(desk: Desk) -> None:
    answer = await desk.call(
        "submit_order", {"symbol": BTC, "side": "buy", "quantity": 1, "stop_loss": 25000}
    )
    assert answer["approved"] and answer["shrunk"]
    assert "limited by max position 10% of equity 10000.00" in answer["reasons"][0]
    assert answer["order"]["status"] == "filled"
    assert answer["order"]["stop_loss"] == "25000"
    (fill,) = answer["fills"]
    assert D(fill["quantity"]) == D(answer["approved_order"]["quantity"]) < 1
    position = desk.broker.portfolio().position(BTC)
    assert position is not None
    assert position.quantity * close_at(BTC, NOW) <= D("0.10") * desk.broker.portfolio().equity


async def test_broker_tool_get_portfolio_values_at_the_market_now(desk: Desk) -> None:
    await desk.call("submit_order", {"symbol": ETH, "side": "BUY", "quantity": "0.5"})
    desk.clock.advance(hours=6)
    answer = await desk.call("get_portfolio")
    (position,) = answer["positions"]
    price = close_at(ETH, NOW + timedelta(hours=6))
    assert position["symbol"] == ETH and position["quantity"] == "0.5"
    assert position["price"] == str(price)
    cash = desk.broker.portfolio().cash
    assert answer["equity"] == str((cash + D("0.5") * price).quantize(D("0.01")))
    assert answer["open_orders"] == []
    # Reading never marks: the broker still holds the price it traded at.
    assert desk.broker.portfolio().prices[ETH] == close_at(ETH, NOW)


async def test_broker_tool_rejections_come_back_with_reasons(desk: Desk) -> None:
    before = desk.books()
    answer = await desk.call("submit_order", {"symbol": BTC, "side": "SELL", "quantity": 1})
    assert answer["approved"] is False
    assert answer["reasons"] == ["no BTC/USDT position to sell; spot desk: no shorts"]
    assert "order" not in answer
    desk.executor.update_limits(kill_switch=True)
    answer = await desk.call("submit_order", {"symbol": BTC, "side": "BUY", "quantity": 0.001})
    assert answer["reasons"] == ["kill switch is on: no new orders until an admin turns it off"]
    # Only the marks moved: no order, no fill, same cash.
    assert desk.books()[1:] == before[1:]
    assert desk.broker.portfolio().cash == before[0].cash  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"symbol": BTC, "side": "BUY", "quantity": -1}, "quantity: Input should be greater than"),
        ({"symbol": BTC, "side": "BUY", "quantity": "NaN"}, "quantity: Input should be a finite"),
        ({"symbol": BTC, "side": "HOLD", "quantity": 1}, "side: Input should be 'BUY' or 'SELL'"),
        ({"symbol": "BTCUSDT", "side": "BUY", "quantity": 1}, "must look like BASE/QUOTE"),
        ({"symbol": BTC, "side": "BUY"}, "quantity: Field required"),
        (
            {"symbol": BTC, "side": "BUY", "quantity": 1, "leverage": 50},
            "leverage: Extra inputs are not permitted",
        ),
        (
            {"symbol": BTC, "side": "BUY", "quantity": 1, "order_type": "limit"},
            "a limit order needs limit_price",
        ),
        (
            {"symbol": "DOGE/USDT", "side": "BUY", "quantity": 1},
            "unknown symbol 'DOGE/USDT' for the replay market",
        ),
    ],
)
async def test_broker_tool_bad_arguments_return_a_clear_error(
    desk: Desk, args: dict[str, Any], message: str
) -> None:
    before = desk.books()
    answer = await desk.call("submit_order", args)
    assert message in str(answer)  # an error string, or a rejection saying why
    assert desk.books()[1:] == before[1:]


async def test_broker_tool_errors_reach_the_model_as_error_tool_messages(desk: Desk) -> None:
    call = {
        "type": "tool_call",
        "id": "call-1",
        "name": "get_price",
        "args": {"symbol": "NOPE/USDT"},
    }
    message = await desk.tools["get_price"].ainvoke(call)
    assert isinstance(message, ToolMessage)
    assert message.status == "error" and message.tool_call_id == "call-1"
    assert "unknown symbol 'NOPE/USDT'" in str(message.content)
    ok = await desk.tools["get_price"].ainvoke({**call, "args": {"symbol": ETH}})
    assert ok.status == "success"
    assert json.loads(ok.content)["symbol"] == ETH


async def test_broker_tool_repeated_client_order_id_fills_once(desk: Desk) -> None:
    args = {"symbol": ETH, "side": "BUY", "quantity": 0.2, "client_order_id": "decision-9"}
    first = await desk.call("submit_order", args)
    desk.clock.advance(hours=1)
    again = await desk.call("submit_order", args)
    assert first["duplicate"] is False and again["duplicate"] is True
    assert again["order"]["id"] == first["order"]["id"]
    assert again["fills"] == first["fills"]
    assert len(desk.broker.fills()) == 1


async def test_broker_tool_absurd_orders_never_breach_the_limits() -> None:
    limits = RiskLimits(
        max_position_pct=D("0.2"), max_order_notional=D("1500"), max_open_positions=1
    )
    desk = Desk(limits)
    absurd = [
        {"symbol": BTC, "side": "BUY", "quantity": 1e9},
        {"symbol": ETH, "side": "BUY", "quantity": 1e6},
        {
            "symbol": BTC,
            "side": "BUY",
            "quantity": "12345.6789",
            "order_type": "limit",
            "limit_price": 1e7,
        },
        {"symbol": BTC, "side": "SELL", "quantity": 1e9},
        {"symbol": BTC, "side": "BUY", "quantity": 5, "stop_loss": 1e9},
        {"symbol": BTC, "side": "BUY", "quantity": 1e-9},
    ]
    for args in absurd * 3:
        answer = await desk.call("submit_order", args)
        assert isinstance(answer, dict)
        portfolio = desk.broker.portfolio()  # marked at the price the gate judged
        assert portfolio.cash >= 0
        assert portfolio.open_positions <= limits.max_open_positions
        for fill in desk.broker.fills():
            assert fill.quantity * fill.price <= limits.max_order_notional
        if answer.get("fills") and not answer["duplicate"] and answer["order"]["side"] == "BUY":
            # What a buy adds stays within the position limit at the time it fills
            # (price moves afterwards may carry a position past it; no new buy is then allowed).
            position = portfolio.position(answer["order"]["symbol"])
            assert position is not None
            value = position.quantity * portfolio.prices[position.symbol]
            assert value <= limits.max_position_pct * portfolio.equity
        desk.clock.advance(hours=1)
    assert desk.broker.fills()  # the absurd requests were shrunk, not all refused


async def test_broker_executor_review_judges_without_submitting(desk: Desk) -> None:
    verdict, price = await desk.executor.review(
        OrderIntent(symbol=BTC, side=Side.BUY, quantity=D("0.001"))
    )
    assert verdict.approved and price == close_at(BTC, NOW)
    assert desk.broker.orders() == []

"""Domain types: frozen, Decimal money, validation errors that say what is wrong."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from tradecast.domain import (
    Action,
    AgentSignal,
    Candle,
    Decision,
    OrderIntent,
    OrderType,
    Portfolio,
    Position,
    Side,
)

T0 = datetime(2021, 1, 1, tzinfo=UTC)


def test_order_intent_normalises_symbol_and_keeps_decimal():
    intent = OrderIntent(symbol="btc/usdt", side=Side.BUY, quantity="0.015")
    assert intent.symbol == "BTC/USDT"
    assert intent.quantity == Decimal("0.015")
    with pytest.raises(ValidationError):
        intent.quantity = Decimal(1)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"quantity": "NaN"}, "finite"),
        ({"quantity": "-1"}, "greater than 0"),
        ({"quantity": "0"}, "greater than 0"),
        ({"symbol": "BTCUSDT"}, "BASE/QUOTE"),
        ({"order_type": OrderType.LIMIT}, "limit_price"),
        ({"limit_price": "0", "order_type": OrderType.LIMIT}, "greater than 0"),
        ({"leverage": 10}, "Extra inputs are not permitted"),
    ],
)
def test_bad_order_intents_say_what_is_wrong(fields, message):
    base = {"symbol": "BTC/USDT", "side": Side.BUY, "quantity": "1"}
    with pytest.raises(ValidationError, match=message):
        OrderIntent(**{**base, **fields})


def test_candle_requires_consistent_range_and_aware_time():
    with pytest.raises(ValidationError, match="bracket"):
        Candle(timestamp=T0, open=10, high=9, low=8, close=9.5, volume=1)
    with pytest.raises(ValidationError, match="timezone-aware"):
        Candle(timestamp=datetime(2021, 1, 1), open=10, high=11, low=9, close=10, volume=1)


def test_portfolio_equity_is_cash_plus_positions_at_market():
    position = Position(symbol="BTC/USDT", quantity=Decimal("0.5"), avg_price=Decimal(30000))
    portfolio = Portfolio(
        cash=Decimal(5000), positions=(position,), prices={"BTC/USDT": Decimal(32000)}
    )
    assert portfolio.equity == Decimal(5000) + Decimal("0.5") * 32000
    assert portfolio.unrealized_pnl == Decimal(1000)
    assert portfolio.open_positions == 1


def test_abstention_must_be_explained_and_hold_has_no_size():
    signal = AgentSignal.abstain("analyst", "model timed out")
    assert signal.abstained and signal.action is Action.HOLD and signal.confidence == 0
    with pytest.raises(ValidationError, match="abstain_reason"):
        AgentSignal(agent="risk", action=Action.HOLD, confidence=0, abstained=True)
    with pytest.raises(ValidationError, match="quantity 0"):
        Decision(
            id="d1",
            symbol="BTC/USDT",
            action=Action.HOLD,
            quantity=1,
            price=1,
            confidence=0.5,
            decided_at=T0,
        )

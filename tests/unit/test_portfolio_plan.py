"""How the portfolio desk turns each symbol's decision into a target and the target into
orders (graphs.portfolio): exits before additions, never a flip in one order."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tradecast.domain import Action, Decision, OrderIntent, Side
from tradecast.graphs.portfolio_plan import planned_orders, proposed_target

AT = datetime(2021, 3, 1, tzinfo=UTC)
D = Decimal


def decision(action: str, quantity: str = "0") -> Decision:
    return Decision(
        id=f"BTCUSDT-{action}",
        symbol="BTC/USDT",
        action=Action(action),
        quantity=D(quantity),
        price=D(100),
        confidence=0.8,
        decided_at=AT,
    )


@pytest.mark.parametrize(
    ("action", "quantity", "current", "shorts", "target"),
    [
        ("HOLD", "0", "3", False, "3"),
        ("BUY", "2", "3", False, "5"),
        ("BUY", "2", "-3", True, "0"),  # a BUY while short covers the short first
        ("SELL", "3", "3", False, "0"),
        ("SELL", "1", "3", False, "2"),  # a trim
        ("SELL", "2", "0", False, "0"),  # spot: nothing to sell
        ("SELL", "2", "0", True, "-2"),  # margin: opens a short
        ("SELL", "2", "-1", True, "-3"),
    ],
)
def test_each_decision_asks_for_a_target(action, quantity, current, shorts, target):
    assert proposed_target(decision(action, quantity), D(current), shorts) == D(target)


def test_a_target_past_zero_is_an_exit_then_an_opening_order_with_mirrored_stops():
    sell_intent = OrderIntent(
        symbol="BTC/USDT", side=Side.SELL, quantity=D(2), client_order_id="tc-x"
    )
    orders = planned_orders(decision("SELL", "2"), sell_intent, D(3), D(-2))
    assert [(o.intent.side, o.intent.quantity, o.exit) for o in orders] == [
        (Side.SELL, D(3), True),
        (Side.SELL, D(2), False),
    ]
    assert [o.intent.client_order_id for o in orders] == ["tc-BTCUSDT-SELL", "tc-BTCUSDT-SELL-1"]


def test_an_opening_order_carries_the_consensus_exits_and_an_exit_none():
    intent = OrderIntent(
        symbol="BTC/USDT", side=Side.SELL, quantity=D(2), stop_loss=D(110), take_profit=D(80)
    )
    exit_, opening = planned_orders(decision("SELL", "2"), intent, D(1), D(-2))
    assert exit_.intent.stop_loss is None and exit_.intent.take_profit is None
    assert opening.intent.stop_loss == D(110) and opening.intent.take_profit == D(80)


def test_covering_and_buying_are_two_orders_and_equal_targets_none():
    orders = planned_orders(decision("BUY", "4"), None, D(-1), D(3))
    assert [(o.intent.side, o.intent.quantity, o.exit) for o in orders] == [
        (Side.BUY, D(1), True),
        (Side.BUY, D(3), False),
    ]
    assert planned_orders(decision("HOLD"), None, D(2), D(2)) == []


def test_the_book_counts_positions_the_desk_no_longer_decides():
    from tradecast.domain import Portfolio, Position
    from tradecast.graphs.portfolio_plan import book_symbols

    book = Portfolio(
        cash=D(1000),
        positions=(
            Position(symbol="SOL/USDT", quantity=D(1), avg_price=D(20)),
            Position(symbol="BTC/USDT", quantity=D(1), avg_price=D(100)),
        ),
    )
    assert book_symbols(["ETH/BUSD", "BTC/USDT"], book) == ["ETH/BUSD", "BTC/USDT", "SOL/USDT"]

"""Answers to an order waiting for a human: the desk's own form and the human-in-the-loop
middleware's decisions; an edit only ever makes the order smaller."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradecast.domain import OrderIntent, Side
from tradecast.graphs.review import (
    ReviewAnswer,
    order_action,
    parse_answer,
    parse_answers,
    review_request,
)

Q = Decimal("0.5")


def action(quantity: Decimal = Q) -> dict:
    """The action request of a waiting BUY of ``quantity``."""
    intent = OrderIntent(symbol="BTC/USDT", side=Side.BUY, quantity=quantity)
    return order_action("BTCUSDT-20210105T1200", intent, [])


def edit_args(**args: object) -> dict:
    """An edit as Agent Chat UI sends it: every argument, the changed ones as text."""
    return {
        "type": "edit",
        "edited_action": {"name": "submit_order", "args": {**action()["args"], **args}},
    }


def edit(quantity: object, name: str = "submit_order") -> dict:
    return {"type": "edit", "edited_action": {"name": name, "args": {"quantity": quantity}}}


def test_the_request_is_in_the_middleware_shape_and_keeps_the_desks_keys() -> None:
    intent = OrderIntent(symbol="BTC/USDT", side=Side.BUY, quantity=Q, stop_loss=Decimal(28000))
    request = review_request("BTCUSDT-20210105T1200", intent, ["shrunk to the position cap"])
    (action,) = request["action_requests"]
    assert action["name"] == "submit_order"
    assert action["args"] == {
        "decision_id": "BTCUSDT-20210105T1200",
        "symbol": "BTC/USDT",
        "side": "BUY",
        "quantity": "0.5",
        "order_type": "market",
        "stop_loss": "28000",
    }
    assert "shrunk to the position cap" in action["description"]
    assert request["review_configs"] == [
        {"action_name": "submit_order", "allowed_decisions": ["approve", "edit", "reject"]}
    ]
    assert request["decision_id"] == "BTCUSDT-20210105T1200" and request["intent"]["quantity"]


@pytest.mark.parametrize(
    ("resume", "expected"),
    [
        (True, ReviewAnswer(True)),
        ({"approved": False}, ReviewAnswer(False)),
        ({"approved": True, "quantity": "0.25"}, ReviewAnswer(True, Decimal("0.25"))),
        ({"decisions": [{"type": "approve"}]}, ReviewAnswer(True)),
        (
            {"decisions": [{"type": "reject", "message": " too big "}]},
            ReviewAnswer(False, None, "too big"),
        ),
        ({"decisions": [edit("0.1")]}, ReviewAnswer(True, Decimal("0.1"))),
        ({"decisions": [edit(0.5)]}, ReviewAnswer(True, Decimal("0.5"))),
        ({"decisions": [edit_args(quantity="0.25")]}, ReviewAnswer(True, Decimal("0.25"))),
    ],
)
def test_accepted_answers(resume: object, expected: ReviewAnswer) -> None:
    assert parse_answer(resume, action()) == expected


@pytest.mark.parametrize(
    ("resume", "why"),
    [
        ("yes", "an answer is"),
        ({"approved": "true"}, "true or false"),
        ({"approved": False, "quantity": "0.1"}, "rejected order"),
        ({"decisions": []}, "one per waiting order"),
        ({"decisions": [{"type": "approve"}, {"type": "approve"}]}, "one per waiting order"),
        ({"decisions": [{"type": "ignore"}]}, "approve, edit, reject"),
        ({"decisions": [edit("0.6")]}, "only make the order smaller"),
        ({"decisions": [edit("0")]}, "positive"),
        ({"decisions": [edit("-1")]}, "positive"),
        ({"decisions": [edit("NaN")]}, "positive"),
        ({"decisions": [edit("Infinity")]}, "positive"),
        ({"decisions": [edit("1e999999")]}, "positive|smaller"),
        ({"decisions": [edit("lots")]}, "a number"),
        ({"decisions": [edit(True)]}, "a number"),
        ({"decisions": [edit("1" * 50)]}, "too many digits"),
        ({"decisions": [edit("0.1", name="transfer_funds")]}, "only submit_order"),
        ({"decisions": [{"type": "edit", "edited_action": {"args": {}}}]}, "args.quantity"),
        ({"decisions": [{"type": "reject", "message": "x" * 501}]}, "at most 500"),
        ({"decisions": [edit_args(quantity="0.1", side="SELL")]}, "changed: side"),
        ({"decisions": [edit_args(quantity="0.1", stop_loss="1")]}, "changed: stop_loss"),
        ({"decisions": [edit_args(quantity="0.1", symbol="ETH/USDT")]}, "changed: symbol"),
    ],
)
def test_refused_answers_say_why(resume: object, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_answer(resume, action())


def test_several_waiting_orders_take_one_decision_each_in_order() -> None:
    answers = parse_answers(
        {"decisions": [{"type": "reject"}, edit("1")]}, [action(), action(Decimal(2))]
    )
    assert answers == [ReviewAnswer(False), ReviewAnswer(True, Decimal(1))]
    with pytest.raises(ValueError, match="2 orders wait"):
        parse_answers({"approved": True}, [action(), action(Decimal(2))])


@given(
    limit=st.decimals(min_value="0.00000001", max_value="1000000", places=8),
    asked=st.one_of(
        st.decimals(allow_nan=True, allow_infinity=True, places=8).map(str),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
    ),
)
def test_an_accepted_edit_never_raises_the_order(limit: Decimal, asked: object) -> None:
    try:
        answer = parse_answer({"decisions": [edit(asked)]}, action(limit))
    except ValueError:
        return
    assert answer.quantity is not None and 0 < answer.quantity <= limit

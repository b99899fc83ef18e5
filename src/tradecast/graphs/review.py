"""A human's review of an order, in the shape of LangChain's human-in-the-loop middleware
(``action_requests`` with ``review_configs`` allowing approve, edit or reject): the shape
Agent Chat UI draws as an approval card, so any LangGraph client can answer the desk.

An answer is either the desk's own ``{"approved": bool}`` or the middleware's
``{"decisions": [{"type": "approve" | "edit" | "reject", ...}]}``. An edit may only make the
order smaller: a human can take risk off an order, never put more on than the gate allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from tradecast.domain import OrderIntent

ORDER_ACTION = "submit_order"
ALLOWED_DECISIONS = ("approve", "edit", "reject")
MAX_MESSAGE_CHARS = 500
MAX_QUANTITY_CHARS = 40


@dataclass(frozen=True)
class ReviewAnswer:
    """What a human decided about one waiting order."""

    approved: bool
    quantity: Decimal | None = None
    """An approved order's new, smaller quantity (None: as the gate allowed it)."""
    message: str | None = None
    """Why, when the human said (a reject's message)."""

    def as_resume(self) -> dict[str, Any]:
        """The value the desk graph's approval step is resumed with."""
        answer: dict[str, Any] = {"approved": self.approved}
        if self.quantity is not None:
            answer["quantity"] = str(self.quantity)
        if self.message:
            answer["message"] = self.message
        return answer


def review_request(
    decision_id: str, intent: OrderIntent | None, reasons: list[str]
) -> dict[str, Any]:
    """The interrupt value of an order waiting for a human: the desk's own keys
    (``decision_id``, ``intent``, ``reasons``) and the middleware's action request."""
    return {
        "decision_id": decision_id,
        "intent": intent.model_dump(mode="json") if intent else None,
        "reasons": list(reasons),
        "action_requests": [order_action(decision_id, intent, reasons)],
        "review_configs": [
            {"action_name": ORDER_ACTION, "allowed_decisions": list(ALLOWED_DECISIONS)}
        ],
    }


def order_action(
    decision_id: str, intent: OrderIntent | None, reasons: list[str]
) -> dict[str, Any]:
    """One action request: the order's fields as arguments, and a line a person can read."""
    args: dict[str, Any] = {"decision_id": decision_id}
    if intent is not None:
        args |= {
            "symbol": intent.symbol,
            "side": intent.side.value,
            "quantity": str(intent.quantity),
            "order_type": intent.order_type.value,
        }
        for name in ("limit_price", "stop_loss", "take_profit", "time_stop_at"):
            value = getattr(intent, name)
            if value is not None:
                args[name] = value.isoformat() if name == "time_stop_at" else str(value)
    what = (
        f"{intent.side.value.upper()} {intent.quantity} {intent.symbol}" if intent else "an order"
    )
    notes = f" The risk gate noted: {'; '.join(reasons)}." if reasons else ""
    return {
        "name": ORDER_ACTION,
        "args": args,
        "description": (
            f"Decision {decision_id} waits for you: {what}.{notes} Approve it, edit the "
            "quantity down, or reject it."
        ),
    }


def parse_answer(resume: Any, action: dict[str, Any]) -> ReviewAnswer:
    """The answer to one waiting order (see :func:`parse_answers`)."""
    return parse_answers(resume, [action])[0]


def parse_answers(resume: Any, actions: list[dict[str, Any]]) -> list[ReviewAnswer]:
    """The answers to the waiting orders' action requests ``actions``, in their order: one
    decision each, or the desk's ``{"approved": ...}`` form when one order waits.

    Raises:
        ValueError: the answer is not one of the accepted shapes, decisions and orders do
            not pair up, an edit changes anything but the quantity, raises it or is not a
            positive number, or a message is over-long.
    """
    if isinstance(resume, bool) and len(actions) == 1:
        return [ReviewAnswer(approved=resume)]
    if not isinstance(resume, dict):
        raise ValueError('an answer is {"decisions": [...]} (or {"approved": true|false})')
    if "decisions" not in resume:
        if len(actions) != 1:
            raise ValueError(f"{len(actions)} orders wait: send one decision for each")
        return [_desk_answer(resume, _limit(actions[0]))]
    decisions = resume["decisions"]
    if not isinstance(decisions, list) or len(decisions) != len(actions):
        raise ValueError(
            f"decisions: one per waiting order, in the order asked ({len(actions)} wait)"
        )
    return [_decision(d, a) for d, a in zip(decisions, actions, strict=True)]


def _limit(action: dict[str, Any]) -> Decimal | None:
    raw = action.get("args", {}).get("quantity")
    return Decimal(raw) if raw is not None else None


def _desk_answer(resume: dict[str, Any], quantity: Decimal | None) -> ReviewAnswer:
    approved = resume.get("approved")
    if not isinstance(approved, bool):
        raise ValueError("approved must be true or false")
    edited = _quantity(resume["quantity"], quantity) if "quantity" in resume else None
    if edited is not None and not approved:
        raise ValueError("a rejected order has no quantity to change")
    return ReviewAnswer(approved, edited, _message(resume.get("message")))


def _decision(decision: Any, action: dict[str, Any]) -> ReviewAnswer:
    kind: Literal["approve", "edit", "reject"] | None = (
        decision.get("type") if isinstance(decision, dict) else None
    )
    if kind == "approve":
        return ReviewAnswer(approved=True)
    if kind == "reject":
        return ReviewAnswer(approved=False, message=_message(decision.get("message")))
    if kind == "edit":
        edited = decision.get("edited_action")
        args = edited.get("args") if isinstance(edited, dict) else None
        if not isinstance(args, dict) or "quantity" not in args:
            raise ValueError("an edit sends edited_action.args.quantity")
        if edited.get("name", ORDER_ACTION) != ORDER_ACTION:
            raise ValueError(f"only {ORDER_ACTION} can be edited")
        _only_quantity_changed(args, action.get("args", {}))
        return ReviewAnswer(approved=True, quantity=_quantity(args["quantity"], _limit(action)))
    raise ValueError(f"a decision's type is one of {', '.join(ALLOWED_DECISIONS)}")


def _only_quantity_changed(edited: dict[str, Any], original: dict[str, Any]) -> None:
    """Refuse an edit of anything but the quantity: it would be ignored, and a human who
    changed the side or a stop must not believe the desk did it."""
    changed = sorted(
        str(key)[:40]
        for key, value in edited.items()
        if key != "quantity" and (key not in original or str(value) != str(original[key]))
    )
    if changed:
        raise ValueError(
            f"only the quantity can be edited (and only down); changed: {', '.join(changed)}"
        )


def _quantity(raw: Any, limit: Decimal | None) -> Decimal:
    """A new quantity, at most the gate's (clients send numbers or strings)."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError("quantity must be a number")
    text = str(raw).strip()
    if len(text) > MAX_QUANTITY_CHARS:
        raise ValueError("quantity: too many digits")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"quantity must be a number (got {text[:20]!r})") from None
    if not value.is_finite() or value <= 0:
        raise ValueError("quantity must be a positive number")
    if limit is None:
        raise ValueError("there is no order quantity to change")
    if value > limit:
        raise ValueError(f"an edit may only make the order smaller: {value} is more than {limit}")
    return value


def _message(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValueError("message must be text")
    if len(raw) > MAX_MESSAGE_CHARS:
        raise ValueError(f"message: at most {MAX_MESSAGE_CHARS} characters")
    return raw.strip() or None

"""The chat graph's side of human review: what a chat run is given (a message, or LangGraph
chat messages), and the ``review`` step that puts the orders waiting for a human to the
operator as one interrupt and applies the answers through the desk's controls.

A reply is followed by ``review`` whenever orders wait, so a chat client such as Agent Chat
UI shows an approval card under the desk's reply. The operator answers with LangGraph's
``Command(resume={"decisions": [...]})``; the desk's gate checks an approved (or cut) order
again when it executes.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import interrupt

from tradecast.errors import DeskConflict, NotFound
from tradecast.graphs.controls import DeskControls, Role, finished_anyway, role_allows
from tradecast.graphs.review import ReviewAnswer, parse_answers

MAX_MESSAGE_CHARS = 2000


def chat_input(payload: Any) -> dict[str, Any]:
    """The chat graph's input from a run's ``input``: ``{"message": text}``, or LangGraph
    chat ``messages`` (the last is the operator's; text blocks of a list content count).

    Raises:
        ValueError: no message of 1 to 2000 characters.
    """
    if not isinstance(payload, dict):
        raise ValueError('input: {"message": "..."} or {"messages": [...]}')
    if "message" in payload:
        text, message = payload["message"], None
    else:
        message = _last_message(payload.get("messages"))
        text = _text(message.get("content"))
    if not isinstance(text, str) or not 1 <= len(text.strip()) <= MAX_MESSAGE_CHARS:
        raise ValueError(f"a chat run needs a message of 1 to {MAX_MESSAGE_CHARS} characters")
    # the operator's message is kept as the client sent it (Agent Chat UI sends text blocks)
    content = message["content"] if message else text
    human = HumanMessage(content, id=(message or {}).get("id") or str(uuid.uuid4()))
    return {"message": text, "messages": [human]}


def _last_message(messages: Any) -> dict[str, Any]:
    if not isinstance(messages, list) or not messages:
        raise ValueError('input: {"message": "..."} or {"messages": [...]}')
    last = messages[-1]
    if not isinstance(last, dict) or last.get("type", last.get("role")) not in ("human", "user"):
        raise ValueError("input.messages: the last message must be the operator's (human)")
    if last.get("id") is not None and not isinstance(last["id"], str):
        raise ValueError("input.messages: a message id is text")
    return last


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            block.get("text", "")
            for block in content
            if isinstance(block, dict) and block.get("type") == "text"
        ]
        return " ".join(p for p in parts if isinstance(p, str)) or None
    return None


def chat_config(
    thread_id: str,
    *,
    role: Role,
    actor: str,
    emit: Any = None,
    reply_id: str | None = None,
) -> RunnableConfig:
    """A chat run's config: who asks (read by ``review`` when it is resumed, possibly by
    another operator), where the persona's speech goes, and the id of the reply message."""
    return {
        "configurable": {
            "thread_id": thread_id,
            "role": role,
            "actor": actor,
            "emit": emit,
            "reply_id": reply_id or str(uuid.uuid4()),
        }
    }


def reply_id(config: RunnableConfig) -> str:
    """The id the reply message of this run gets (a client may stream it by that id)."""
    return str(config["configurable"].get("reply_id") or uuid.uuid4())


def waiting_request(waiting: list[dict[str, Any]]) -> dict[str, Any]:
    """One interrupt value for every waiting order: their action requests in order."""
    return {
        "decision_ids": [w["decision_id"] for w in waiting],
        "action_requests": [w["action_requests"][0] for w in waiting],
        "review_configs": [w["review_configs"][0] for w in waiting],
    }


def review_node(controls: DeskControls) -> Any:
    """Put the waiting orders to the operator; apply each answer through ``controls``."""

    async def node(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        request = waiting_request(state["waiting"])
        resume = interrupt(request)
        who = config["configurable"]
        message_id = f"{reply_id(config)}-review"
        if not role_allows(who.get("role", "viewer"), "operator"):
            return _said("Not done: answering an approval needs the operator role.", message_id)
        try:
            answers = parse_answers(resume, request["action_requests"])
        except ValueError as exc:
            return _said(f"Not done: {exc}.", message_id)
        lines = [
            await _apply(controls, who.get("actor", "chat"), decision_id, answer)
            for decision_id, answer in zip(request["decision_ids"], answers, strict=True)
        ]
        return _said(" ".join(lines), message_id)

    return node


async def _apply(controls: DeskControls, actor: str, decision_id: str, answer: ReviewAnswer) -> str:
    try:
        result = await finished_anyway(
            controls.decide_approval(
                actor, decision_id, answer.approved, quantity=answer.quantity, note=answer.message
            )
        )
    except NotFound:
        return f"{decision_id} no longer waits (it was answered already)."
    except DeskConflict as exc:
        return f"{decision_id}: not done, {exc}."
    if not answer.approved:
        return f"Rejected {decision_id}."
    if result.fills:
        filled = sum((fill.quantity for fill in result.fills), Decimal(0))
        return f"Approved {decision_id}: filled {filled} {result.fills[0].symbol}."
    reasons = "; ".join(result.risk.reasons) or "no fill"
    return f"Approved {decision_id}, but nothing filled ({reasons})."


def _said(text: str, message_id: str) -> dict[str, Any]:
    return {"messages": [AIMessage(text, id=message_id)], "waiting": []}

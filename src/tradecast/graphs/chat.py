"""The chat-control graph: an operator message becomes a command (validated, authorised and
journaled through ``DeskControls``) or a question answered in the persona's voice.

    START -> parse -> {deny | apply | answer} -> respond -> {review | END}

Each thread's conversation is kept as LangGraph chat ``messages`` (checkpointed when the
controller has a checkpointer); ``review`` puts orders waiting for a human to the operator
(:mod:`tradecast.graphs.chat_review`).

Use::

    controller = ChatController(controls, model, card)
    reply = await controller.handle(message, thread_id=..., role="operator", actor="ops-key",
                                    emit=lambda event, data: ...)

``emit`` receives the persona's ``token``/``sentence``/``blocked`` events while an answer
streams. A question never places an order: answering has no access to anything that trades.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel, ConfigDict
from typing_extensions import TypedDict

from tradecast.agents.calls import load_prompt
from tradecast.agents.grounding import (
    PersonaFacts,
    beyond_the_facts,
    check_sentence,
    echoes,
    fallback_sentence,
    instruction_runs,
    names_in,
    unsupported_claim,
)
from tradecast.agents.persona import PersonaEmit, Speech, default_emotion, facts_prompt, speak
from tradecast.agents.persona_card import PersonaCard
from tradecast.domain import Action
from tradecast.errors import ConfirmationRequired, NotFound
from tradecast.graphs.chat_review import chat_config, chat_input, reply_id, review_node
from tradecast.graphs.commands import Command, loosens, parse_command
from tradecast.graphs.controls import DeskControls, Role, finished_anyway, role_allows
from tradecast.logs import get_logger

log = get_logger(__name__)
NUMBERS_FREE = "No decisions yet, so I have no numbers to share."


class ChatReply(BaseModel):
    """What came of one operator message."""

    model_config = ConfigDict(frozen=True)

    command: str
    applied: bool
    message: str
    denied: str | None = None
    result: dict[str, Any] | None = None


class ChatState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    """The conversation, as LangGraph chat clients (Agent Chat UI) show it."""
    message: str
    role: Role
    actor: str
    command: Command
    reply: ChatReply
    waiting: list[dict[str, Any]]
    """The review requests of the orders waiting for a human when the reply was made."""


def route_command(state: ChatState) -> Literal["deny", "apply", "answer"]:
    """Questions are answered; commands run only when valid and the role allows them."""
    command = state["command"]
    if command.error or not role_allows(state["role"], command.needed_role):
        return "deny"
    return "answer" if command.name == "ask" else "apply"


def route_waiting(state: ChatState) -> Literal["review", "__end__"]:
    """An order waiting for a human is put to the operator after every reply."""
    return "review" if state.get("waiting") else "__end__"


class ChatController:
    """Handles operator chat messages for one desk."""

    def __init__(
        self,
        controls: DeskControls,
        model: BaseChatModel,
        card: PersonaCard,
        max_tokens: int = 90,
        checkpointer: BaseCheckpointSaver | None = None,
    ) -> None:
        self.controls = controls
        self.model = model
        self.card = card
        self.max_tokens = max_tokens
        self.checkpointer = checkpointer
        self.graph = self.build(checkpointer)

    def build(self, checkpointer: BaseCheckpointSaver | None = None) -> CompiledStateGraph:
        """The compiled chat-control graph (each thread's conversation kept by
        ``checkpointer`` when one is given)."""
        graph = StateGraph(ChatState)
        graph.add_node("parse", self._parse)
        graph.add_node("deny", self._deny)
        graph.add_node("apply", self._apply)
        graph.add_node("answer", self._answer)
        graph.add_node("respond", self._respond)
        graph.add_node("review", review_node(self.controls))
        graph.add_edge(START, "parse")
        graph.add_conditional_edges("parse", route_command, ["deny", "apply", "answer"])
        for node in ("deny", "apply", "answer"):
            graph.add_edge(node, "respond")
        graph.add_conditional_edges("respond", route_waiting, ["review", END])
        graph.add_edge("review", END)
        return graph.compile(checkpointer=checkpointer, name="chat")

    async def handle(
        self,
        message: str,
        *,
        thread_id: str,
        role: Role,
        actor: str,
        emit: PersonaEmit | None = None,
    ) -> ChatReply:
        """Apply or answer ``message``; the reply says what happened and why. Calls on
        different threads may run concurrently (each call's ``emit`` travels in its own run
        config); calls on one thread must take turns, as its checkpoints are one history."""
        state = await self.graph.ainvoke(
            {**chat_input({"message": message}), "role": role, "actor": actor},
            chat_config(thread_id, role=role, actor=actor, emit=emit),
        )
        reply: ChatReply = state["reply"]
        log.info(
            "chat.handled",
            actor=actor,
            role=role,
            command=reply.command,
            applied=reply.applied,
            denied=reply.denied,
        )
        return reply

    async def _parse(self, state: ChatState) -> dict[str, Any]:
        return {"command": parse_command(state["message"])}

    async def _respond(self, state: ChatState, config: RunnableConfig) -> dict[str, Any]:
        """The reply as the conversation's next message, and the orders still waiting."""
        reply = AIMessage(state["reply"].message, id=reply_id(config))
        return {"messages": [reply], "waiting": await self.controls.pending_reviews()}

    async def _deny(self, state: ChatState) -> dict[str, Any]:
        command = state["command"]
        reason = command.error or (
            f"{command.name} needs the {command.needed_role} role; you are {state['role']}"
        )
        return {
            "reply": ChatReply(
                command=command.name, applied=False, denied=reason, message=f"Not done: {reason}."
            )
        }

    async def _apply(self, state: ChatState) -> dict[str, Any]:
        command, actor = state["command"], state["actor"]
        try:
            result = await finished_anyway(self._run(command, actor, state["role"]))
        except PermissionError as exc:
            return _refused(command, str(exc))
        except ConfirmationRequired as exc:
            return _refused(command, str(exc), "Not done yet", {"confirm": exc.token})
        except (NotFound, ValueError) as exc:
            return _refused(command, str(exc.args[0]) if exc.args else str(exc))
        return {
            "reply": ChatReply(
                command=command.name,
                applied=True,
                result=result,
                message=_done_message(command, result),
            )
        }

    async def _run(self, command: Command, actor: str, role: Role) -> dict[str, Any]:
        controls = self.controls
        name, args = command.name, command.args
        if name == "pause":
            return await controls.pause(actor)
        if name == "resume":
            return await controls.resume(actor)
        if name == "status":
            return controls.status()
        if name == "tick":
            return (await controls.force_tick(actor)).model_dump(mode="json")
        if name in ("approve", "reject"):
            result = await controls.decide_approval(actor, args["decision_id"], name == "approve")
            return result.model_dump(mode="json")
        if name == "kill_switch":
            limits = await controls.set_limits(actor, kill_switch=args["on"])
            return limits.model_dump(mode="json")
        if name == "confirm":
            return (await controls.confirm_limits(actor, args["token"])).model_dump(mode="json")
        return await self._set_limit(args, actor, role)

    async def _set_limit(self, args: dict[str, Any], actor: str, role: Role) -> dict[str, Any]:
        field, value = args["field"], args["value"]
        current = getattr(self.controls.limits(), field)
        if role != "admin" and loosens(field, current, value):
            raise PermissionError(
                f"operators may only tighten limits; loosening {field} needs the admin role"
            )
        limits = await self.controls.set_limits(actor, **{field: value})
        return limits.model_dump(mode="json")

    async def _answer(self, state: ChatState, config: RunnableConfig) -> dict[str, Any]:
        facts = latest_facts(self.controls.recent_decisions(1))
        status = self.controls.status()
        question = state["command"].args.get("question", state["message"])
        system = load_prompt("chat").format(
            name=self.card.name,
            style=self.card.style,
            facts=facts_prompt(facts) if facts else NUMBERS_FREE,
            status=status.get("state", "unknown"),
        )
        messages = [SystemMessage(system), HumanMessage(question[:2000])]
        emit: PersonaEmit = config["configurable"].get("emit") or _ignore
        speech = _answer_speech(self.card, facts, emit, load_prompt("chat"))
        lines, _ = await speak(self.model, messages, speech, self.max_tokens)
        text = " ".join(line.text for line in lines)
        return {
            "reply": ChatReply(
                command="ask",
                applied=False,
                message=text,
                result={"emotion": lines[0].emotion if lines else None},
            )
        }


def _answer_speech(
    card: PersonaCard, facts: PersonaFacts | None, emit: PersonaEmit, instructions: str
) -> Speech:
    grounded = (lambda text: check_sentence(text, facts)) if facts else _no_numbers
    runs = instruction_runs(instructions)
    names = names_in(facts_prompt(facts) if facts else "", card.name)

    def check(text: str) -> str | None:
        return echoes(text, runs) or grounded(text) or beyond_the_facts(text, names)

    if facts is None:
        return Speech(card, check, NUMBERS_FREE, "thinking", emit)
    return Speech(card, check, fallback_sentence(facts), default_emotion(facts), emit)


def _no_numbers(text: str) -> str | None:
    if any(c.isdigit() for c in text):
        return "states a number with no decision behind it"
    return unsupported_claim(text)


def latest_facts(decisions: list[dict[str, Any]]) -> PersonaFacts | None:
    """Facts of the most recent decision (as ``TickResult.decision`` dicts), if any."""
    if not decisions or not decisions[0]:
        return None
    latest = decisions[0]
    return PersonaFacts(
        symbol=latest["symbol"],
        action=Action(latest["action"]),
        quantity=Decimal(str(latest["quantity"])),
        price=Decimal(str(latest["price"])),
        confidence=float(latest["confidence"]),
        executed=bool(latest.get("executed", False)),
    )


def _refused(
    command: Command, reason: str, lead: str = "Not done", result: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The reply to a command that changed nothing, and why."""
    reply = ChatReply(
        command=command.name,
        applied=False,
        denied=reason,
        result=result,
        message=f"{lead}: {reason}.",
    )
    return {"reply": reply}


def _done_message(command: Command, result: dict[str, Any]) -> str:
    if command.name in ("pause", "resume", "status"):
        return f"Desk is {result.get('state', 'updated')}."
    if command.name == "tick":
        decision = result.get("decision") or {}
        return f"Ticked: {decision.get('action', '?')} {decision.get('symbol', '')}".strip() + "."
    if command.name in ("approve", "reject"):
        return f"{command.name.capitalize()}d {command.args['decision_id']}."
    if command.name == "kill_switch":
        return f"Kill switch is {'on' if command.args['on'] else 'off'}."
    if command.name == "confirm":
        return f"Confirmed {command.args['token']}: the limits changed."
    return f"Set {command.args['field']} to {command.args['value']}."


def _ignore(_event: str, _data: dict[str, Any]) -> None:
    return None

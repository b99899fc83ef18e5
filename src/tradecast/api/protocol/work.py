"""What a run of each assistant does, and how its chunks become the run's stream items.

- ``desk``: one tick (on the ``desk`` thread), or the answer to a waiting order
  (``command.resume`` on ``desk`` or a ``tick:`` thread). The tick runs through the desk's
  service, so it is journaled, gated and published like any other; the run follows it in the
  stream modes asked for. A tick cannot be rolled back.
- ``chat``: one operator message on a chat thread (or the answer to the review it ended
  with). The conversation is the chat graph's checkpointed state; a rollback deletes what
  the run wrote to it.

Token streams: ``messages-tuple`` never carries a model's raw tokens where they would be the
persona's words, which are only said once checked. A chat answer streams its checked
sentences as chunks of the reply message (same id as the message the thread keeps); the
desk persona's raw tokens are left out.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessageChunk
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from tradecast.api.auth import Principal
from tradecast.api.deps import ApiContext
from tradecast.api.errors import ApiError
from tradecast.api.protocol.schemas import RunCommand, RunCreate
from tradecast.api.protocol.serde import jsonable
from tradecast.api.runs import RunJob, RunRecord, RunStatus
from tradecast.domain import StreamEvent
from tradecast.graphs.chat_review import chat_config, chat_input
from tradecast.graphs.checkpoints import delete_run_checkpoints, has_checkpoint
from tradecast.graphs.controls import finished_anyway
from tradecast.graphs.review import ReviewAnswer, parse_answers
from tradecast.graphs.runner import TICK_PREFIX
from tradecast.graphs.streaming import GraphTap, stream_graph

DESK_THREAD = "desk"
SPOKEN_NODES = frozenset({"persona", "answer"})
"""Nodes whose model output is the persona's voice: streamed only once checked."""


def kind_of(thread_id: str) -> str:
    """``desk``, ``tick`` or ``chat``."""
    if thread_id == DESK_THREAD:
        return "desk"
    return "tick" if thread_id.startswith(TICK_PREFIX) else "chat"


def graph_modes(modes: list[str]) -> frozenset[str]:
    """The graph's stream modes behind a run's: ``messages-tuple`` is LangGraph's
    ``messages``; ``custom`` is followed through the desk's own events instead."""
    return frozenset(
        "messages" if mode == "messages-tuple" else mode for mode in modes if mode != "custom"
    )


def deliver(run: RunRecord, mode: str, chunk: Any) -> None:
    """One graph chunk as a stream item (``messages`` as ``[message, metadata]``)."""
    if mode == "messages":
        message, metadata = chunk
        if metadata.get("langgraph_node") in SPOKEN_NODES:
            return
        run.append("messages", [jsonable(message), jsonable(metadata)])
        return
    run.append(mode, jsonable(chunk))


# --- desk ---------------------------------------------------------------------------------


async def desk_job(ctx: ApiContext, who: Principal, thread_id: str, body: RunCreate) -> RunJob:
    """A tick, or the answer to a waiting order.

    Raises:
        ApiError: a tick asked for off the desk thread, a finished replay, or an answer
            that does not fit the order waiting.
    """
    resume = body.command.resume if body.command else None
    if body.command and body.command.goto:
        raise ApiError(422, "validation_error", "a desk run answers with command.resume")
    if resume is None:
        if thread_id != DESK_THREAD:
            raise ApiError(
                422,
                "validation_error",
                "a desk tick runs on the 'desk' thread; to answer an approval send command.resume",
            )
        if ctx.desk.finished:
            raise ApiError(409, "conflict", "the replay has ended; nothing is left to tick")
    modes = body.modes()
    answer = await _desk_answer(ctx, thread_id, resume) if resume is not None else None

    async def execute(run: RunRecord) -> RunStatus:
        tap = GraphTap(graph_modes(modes), lambda mode, chunk: deliver(run, mode, chunk))
        observe = _observer(run) if "custom" in modes else None
        if answer is None:
            work = ctx.desk.force_tick(who.name, observe, tap=tap)
        else:
            decision_id, review = answer
            work = ctx.desk.decide_approval(
                who.name,
                decision_id,
                review.approved,
                observe,
                quantity=review.quantity,
                note=review.message,
                tap=tap,
            )
        result = await finished_anyway(work)
        run.kwargs |= {
            "decision_id": result.decision_id,
            "tick_thread_id": result.thread_id,
            "tick_status": result.status,
        }
        if "values" in modes and run.values() is None:
            # a tick that had finished before (a replay resumed) streams no chunks
            run.append("values", jsonable(await ctx.desk.runtime.runner.state(result.thread_id)))
        return "success"

    return RunJob(execute, final="what a desk tick did at the broker stays done")


def _observer(run: RunRecord) -> Any:
    def observe(event: StreamEvent) -> None:
        run.append("custom", event.model_dump(mode="json"))

    return observe


async def _desk_answer(ctx: ApiContext, thread_id: str, resume: Any) -> tuple[str, ReviewAnswer]:
    """The waiting order a resume answers, and the answer, checked against that order."""
    pending = ctx.desk.status()["pending_approvals"]
    decision_id = resume.get("decision_id") if isinstance(resume, dict) else None
    if thread_id.startswith(TICK_PREFIX):
        own = thread_id.removeprefix(TICK_PREFIX)
        if decision_id not in (None, own):
            raise ApiError(
                422,
                "validation_error",
                f"thread {thread_id!r} answers {own!r}, not {decision_id!r}",
            )
        decision_id = own
    elif thread_id != DESK_THREAD:
        raise ApiError(
            422, "validation_error", "approvals resume the 'desk' thread or a tick thread"
        )
    if decision_id is None:
        if len(pending) != 1:
            raise ApiError(
                422,
                "validation_error",
                "command.resume.decision_id is needed: "
                f"{len(pending)} orders are waiting ({', '.join(pending) or 'none'})",
            )
        decision_id = pending[0]
    request = next(
        (r for r in await ctx.desk.pending_reviews() if r["decision_id"] == decision_id), None
    )
    if decision_id not in pending or request is None:
        raise ApiError(404, "not_found", f"no order waits for approval under {decision_id!r}")
    answer = resume
    if isinstance(resume, dict):
        answer = {k: v for k, v in resume.items() if k != "decision_id"}
    try:
        (review,) = parse_answers(answer, request["action_requests"])
    except ValueError as exc:
        raise ApiError(422, "validation_error", f"command.resume: {exc}") from None
    return str(decision_id), review


# --- chat ---------------------------------------------------------------------------------


async def chat_job(ctx: ApiContext, who: Principal, thread_id: str, body: RunCreate) -> RunJob:
    """One operator message, the answer to the review the thread waits on, or
    ``goto: "__end__"`` (the review marked resolved, nothing decided).

    Raises:
        ApiError: no message, an unknown checkpoint, or an answer when nothing waits or
            that does not fit what waits.
    """
    graph = ctx.chat.graph
    command = body.command
    answering = command is not None and (command.goto or command.resume is not None)
    payload: Any = None
    if command is not None and answering:
        try:
            await _check_answer(graph, thread_id, command)
        except LookupError as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        except ValueError as exc:
            raise ApiError(422, "validation_error", f"command.resume: {exc}") from None
    else:
        try:
            payload = {**chat_input(body.input), "role": who.role, "actor": who.name}
        except ValueError as exc:
            raise ApiError(422, "validation_error", f"input: {exc}") from None
    start_at = body.start_at()
    if start_at and not await has_checkpoint(graph, thread_id, start_at):
        raise ApiError(404, "not_found", f"no checkpoint {start_at[:64]!r} on {thread_id!r}")
    modes = body.modes()

    async def execute(run: RunRecord) -> RunStatus:
        config = chat_config(
            thread_id,
            role=who.role,
            actor=who.name,
            emit=speech_events(run, modes),
            reply_id=run.run_id,
        )
        config["metadata"] = {"run_id": run.run_id, "assistant_id": run.assistant_id}
        if start_at:
            config["configurable"]["checkpoint_id"] = start_at
        if command is not None and answering:
            # checked again: a run that waited its turn may find another review, or none
            await _check_answer(graph, thread_id, command)
        if command is not None and command.goto:
            await graph.aupdate_state(config, {"waiting": []}, as_node="review")
            if "values" in modes:
                run.append("values", jsonable((await graph.aget_state(config)).values))
            return "success"
        entry = Command(resume=command.resume) if command is not None and answering else payload
        # what the desk publishes while the message is handled (a tick it asked for...)
        stop = ctx.publisher.watch(_observer(run)) if "custom" in modes else None
        try:
            # no graph "messages": a chat's words are its checked sentences (speech_events), and a
            # tick it asks for would stream the desk agents' tokens into the conversation
            wanted = graph_modes(modes) - {"messages"}
            async for mode, chunk in stream_graph(graph, entry, config, wanted):
                deliver(run, mode, chunk)
        finally:
            if stop is not None:
                stop()
        return "success"

    saver = ctx.chat.checkpointer

    async def rollback(run: RunRecord) -> None:
        if saver is not None:
            await delete_run_checkpoints(saver, thread_id, run.run_id)

    return RunJob(execute, rollback if saver is not None else None)


async def _check_answer(graph: CompiledStateGraph, thread_id: str, command: RunCommand) -> None:
    """Whether ``command`` fits the review the thread waits on.

    Raises:
        LookupError: nothing on the thread waits for an answer.
        ValueError: the answer does not fit the orders waiting.
    """
    snapshot = await graph.aget_state({"configurable": {"thread_id": thread_id}})
    waiting = [i.value for task in snapshot.tasks for i in task.interrupts]
    if not waiting:
        raise LookupError(f"nothing on thread {thread_id!r} waits for an answer")
    if command.resume is not None:
        parse_answers(command.resume, waiting[0]["action_requests"])


def speech_events(run: RunRecord, modes: list[str]) -> Any:
    """The persona's events of a chat answer: ``custom`` items, and its checked sentences
    as ``messages`` chunks of the reply (whose id is the run's)."""
    custom, tokens = "custom" in modes, "messages-tuple" in modes

    def emit(event: str, data: dict[str, Any]) -> None:
        if custom and (event != "token" or data.get("text")):
            run.append("custom", {"event": event, "data": data})
        if tokens and event == "sentence":
            chunk = AIMessageChunk(content=f"{data['text']} ", id=run.run_id)
            run.append("messages", [jsonable(chunk), {"langgraph_node": "answer"}])

    return emit

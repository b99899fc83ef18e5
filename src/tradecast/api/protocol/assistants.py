"""``/info``, ``/ok`` and the assistants: one per graph, ``desk`` and ``chat``, drawn and
described from the compiled graphs the server runs.

As in LangGraph's server, an assistant's id is ``uuid5`` of its graph id in LangGraph's
namespace, and a graph id is accepted wherever an assistant id is (Agent Chat UI and the SDK
send ``"chat"`` or ``"desk"``).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Query
from langgraph.graph.state import CompiledStateGraph

from tradecast import __version__
from tradecast.api.auth import Principal
from tradecast.api.deps import ApiContext, get_context, viewer
from tradecast.api.errors import ERROR_RESPONSES, ApiError
from tradecast.api.protocol.schemas import AssistantSearch

router = APIRouter(tags=["langgraph"])
GRAPH_NAMESPACE = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
"""LangGraph's namespace for the ids of the assistants it makes of each graph."""
GRAPHS = {
    "desk": "The trading desk: a run is one tick (analysis, risk, trader, consensus, the risk "
    "gate, the broker, the persona, memory); command.resume answers an order waiting for a "
    "human.",
    "chat": "Operator chat: a message is a command the desk applies (if your role allows it) "
    "or a question the persona answers; orders waiting for a human are put to you as an "
    "approval.",
}


def assistant_id(graph_id: str) -> str:
    """The id of a graph's assistant."""
    return str(uuid.uuid5(GRAPH_NAMESPACE, graph_id))


def graph_of(assistant: str) -> str:
    """The graph an assistant id (or a graph id) names.

    Raises:
        ApiError: 404, no such assistant.
    """
    for graph_id in GRAPHS:
        if assistant in (graph_id, assistant_id(graph_id)):
            return graph_id
    raise ApiError(
        404,
        "not_found",
        f"no assistant {assistant[:100]!r}: the assistants are {', '.join(GRAPHS)} "
        "(by graph id or assistant id)",
    )


def compiled(ctx: ApiContext, graph_id: str) -> CompiledStateGraph:
    """The compiled graph the server runs for ``graph_id``."""
    return ctx.desk.runtime.runner.graph if graph_id == "desk" else ctx.chat.graph


def assistant_json(ctx: ApiContext, graph_id: str) -> dict[str, Any]:
    """LangGraph's ``Assistant`` of a graph."""
    started = ctx.started_at
    return {
        "assistant_id": assistant_id(graph_id),
        "graph_id": graph_id,
        "name": graph_id,
        "description": GRAPHS[graph_id],
        "config": {},
        "context": {},
        "metadata": {"created_by": "system"},
        "version": 1,
        "created_at": started,
        "updated_at": started,
    }


@router.get("/info")
async def info() -> dict[str, Any]:
    """The server and what it offers (LangGraph's ``/info``). No key needed: clients call it
    to see whether a server is there."""
    return {
        "version": __version__,
        "context": "tradecast",
        "flags": {"assistants": True, "crons": False, "langsmith": False},
    }


@router.get("/ok")
async def ok() -> dict[str, bool]:
    """Liveness, as LangGraph's server answers it."""
    return {"ok": True}


@router.post("/assistants/search", responses=ERROR_RESPONSES)
async def search_assistants(
    body: AssistantSearch, _: Principal = Depends(viewer), ctx: ApiContext = Depends(get_context)
) -> list[dict[str, Any]]:
    """The assistants matching the filters. Viewer."""
    found = [assistant_json(ctx, graph_id) for graph_id in GRAPHS]
    if body.graph_id is not None:
        found = [a for a in found if a["graph_id"] == body.graph_id]
    if body.name is not None:
        found = [a for a in found if body.name.lower() in a["name"].lower()]
    if body.metadata:
        found = [a for a in found if body.metadata.items() <= a["metadata"].items()]
    if body.sort_by is not None:
        found.sort(key=lambda a: str(a[body.sort_by or ""]), reverse=body.sort_order == "desc")
    page = found[body.offset : body.offset + body.limit]
    if body.select:
        page = [{k: a[k] for k in body.select if k in a} for a in page]
    return page


@router.get("/assistants/{assistant}", responses=ERROR_RESPONSES)
async def get_assistant(
    assistant: str, _: Principal = Depends(viewer), ctx: ApiContext = Depends(get_context)
) -> dict[str, Any]:
    """One assistant, by assistant id or graph id. Viewer."""
    return assistant_json(ctx, graph_of(assistant))


@router.get("/assistants/{assistant}/graph", responses=ERROR_RESPONSES)
async def get_assistant_graph(
    assistant: str,
    xray: bool = Query(False, description="show subgraphs (the desk has none)"),
    _: Principal = Depends(viewer),
    ctx: ApiContext = Depends(get_context),
) -> dict[str, Any]:
    """The graph's nodes and edges, drawn from the compiled graph. Viewer."""
    graph = compiled(ctx, graph_of(assistant))
    drawn: dict[str, Any] = graph.get_graph(xray=xray).to_json()
    return drawn


@router.get("/assistants/{assistant}/schemas", responses=ERROR_RESPONSES)
async def get_assistant_schemas(
    assistant: str, _: Principal = Depends(viewer), ctx: ApiContext = Depends(get_context)
) -> dict[str, Any]:
    """The JSON schemas of the graph's input, output, state and context. Viewer."""
    graph_id = graph_of(assistant)
    graph = compiled(ctx, graph_id)
    return {
        "graph_id": graph_id,
        "input_schema": graph.get_input_jsonschema(),
        "output_schema": graph.get_output_jsonschema(),
        "state_schema": graph.get_output_jsonschema(),
        "config_schema": None,
        "context_schema": graph.get_context_jsonschema(),
    }


@router.get("/assistants/{assistant}/subgraphs", responses=ERROR_RESPONSES)
async def get_assistant_subgraphs(
    assistant: str, _: Principal = Depends(viewer), ctx: ApiContext = Depends(get_context)
) -> dict[str, Any]:
    """The graph's subgraphs: none. Viewer."""
    graph_of(assistant)
    return {}

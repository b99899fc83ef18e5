"""The requests Agent Chat UI makes, replayed exactly, with every response shape it reads.

Captured from its source (langchain-ai/agent-chat-ui at fdc87e6, with the
@langchain/langgraph-sdk 1.8.10 it locks): ``src/providers/Stream.tsx`` (the ``/info``
probe), ``src/providers/Thread.tsx`` (the sidebar's search), the SDK's ``useStream``
(``submit``: thread creation, the run body, history after every run) and
``agent-inbox/hooks/use-interrupted-actions.tsx`` (the resume body). The UI runs in a
browser on another origin, so every request here carries its ``Origin`` and the CORS
preflight is checked too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from support.api import (
    OPERATOR,
    SSEEvent,
    api_settings,
    memory,
    read_all_sse,
    scripted_models,
    uvicorn_server,
)
from tradecast.api.app import create_app

UI = "http://127.0.0.1:3123"
HEADERS = {"x-api-key": OPERATOR, "Origin": UI}
SEARCH = {"metadata": {"graph_id": "chat"}, "limit": 100, "offset": 0}
THREAD_KEYS = {
    "thread_id",
    "created_at",
    "updated_at",
    "metadata",
    "status",
    "values",
    "interrupts",
}
STATE_KEYS = {
    "values",
    "next",
    "tasks",
    "checkpoint",
    "parent_checkpoint",
    "metadata",
    "created_at",
}


def submit(text: str, checkpoint: dict | None = None) -> dict[str, Any]:
    """The body ``useStream.submit`` sends for a message typed in the composer."""
    body: dict[str, Any] = {
        "input": {
            "messages": [
                {
                    "id": f"msg-{text[:8]}",
                    "type": "human",
                    "content": [{"type": "text", "text": text}],
                }
            ]
        },
        "stream_mode": ["values", "messages-tuple", "custom"],
        "stream_subgraphs": True,
        "stream_resumable": True,
        "assistant_id": "chat",
        "on_disconnect": "continue",
    }
    if checkpoint is not None:
        body["checkpoint"] = checkpoint
    return body


def resume(decision: dict[str, Any], checkpoint: dict) -> dict[str, Any]:
    """The body the approval card sends."""
    return {
        "input": {},
        "command": {"resume": {"decisions": [decision]}},
        "stream_mode": ["messages-tuple", "values", "custom"],
        "stream_resumable": False,
        "assistant_id": "chat",
        "checkpoint": checkpoint,
        "on_disconnect": "cancel",
    }


async def run(client: httpx.AsyncClient, thread: str, body: dict) -> list[SSEEvent]:
    async with client.stream(
        "POST", f"/threads/{thread}/runs/stream", json=body, headers=HEADERS
    ) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["access-control-allow-origin"] == UI
        assert response.headers["location"].endswith("/stream")
        events = await read_all_sse(response)
    assert events[0].event == "metadata" and "run_id" in events[0].data
    assert "error" not in [e.event for e in events], events
    assert not [e for e in events if "|" in e.event], "no namespaced events"
    return events


async def history(client: httpx.AsyncClient, thread: str) -> list[dict[str, Any]]:
    response = await client.post(f"/threads/{thread}/history", json={"limit": 10}, headers=HEADERS)
    assert response.status_code == 200
    states = response.json()
    for state in states:
        assert state.keys() >= STATE_KEYS
        assert {"thread_id", "checkpoint_ns", "checkpoint_id"} <= state["checkpoint"].keys()
    ids = [s["checkpoint"]["checkpoint_id"] for s in states]
    assert ids == sorted(ids, reverse=True), "newest first, ids sort by time"
    return states


def head_checkpoint(states: list[dict[str, Any]]) -> dict[str, Any]:
    """What the UI sends back as ``checkpoint``: the head's, without its thread id."""
    return {k: v for k, v in states[0]["checkpoint"].items() if k != "thread_id"}


async def test_agent_chat_ui_opens_a_thread_sends_messages_and_approves_an_order(
    tmp_path: Path, embedder
):
    settings = api_settings(tmp_path / "data", require_approval=True, api={"cors_origins": [UI]})
    app = create_app(settings, models=scripted_models(), memory=memory(embedder))
    async with uvicorn_server(app) as base, httpx.AsyncClient(base_url=base) as client:
        preflight = await client.options(
            "/threads/search",
            headers={
                "Origin": UI,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-api-key,last-event-id",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == UI

        # page load: the sidebar's search, then the connection probe
        found = await client.post("/threads/search", json=SEARCH, headers=HEADERS)
        assert found.status_code == 200 and found.json() == []
        info = await client.get("/info", headers={"X-Api-Key": OPERATOR, "Origin": UI})
        assert info.status_code == 200

        # a new conversation
        created = await client.post("/threads", json={"metadata": {}}, headers=HEADERS)
        assert created.status_code == 200
        thread = created.json()["thread_id"]
        events = await run(client, thread, submit("status"))
        values = [e.data for e in events if e.event == "values"]
        assert values[0]["messages"][0]["id"] == "msg-status", "the UI's id is kept"
        assert [m["type"] for m in values[-1]["messages"]] == ["human", "ai"]
        states = await history(client, thread)
        assert states[0]["next"] == [] and states[0]["values"] == values[-1]
        assert states[-1]["parent_checkpoint"] is None

        listed = (await client.post("/threads/search", json=SEARCH, headers=HEADERS)).json()
        assert [t["thread_id"] for t in listed] == [thread]
        assert listed[0].keys() >= THREAD_KEYS
        assert listed[0]["values"]["messages"][0]["content"][0]["text"] == "status"

        # a question answered in the persona's voice, streamed as chunks of its reply
        events = await run(client, thread, submit("why did we buy?", head_checkpoint(states)))
        chunks = [e.data for e in events if e.event == "messages"]
        final = [e.data for e in events if e.event == "values"][-1]
        reply = final["messages"][-1]
        assert chunks and all(c[0]["id"] == reply["id"] for c in chunks)
        assert "".join(c[0]["content"] for c in chunks).strip() == reply["content"]

        # an order waits: the next message ends with an approval card under the desk's reply
        tick = await client.post(
            "/threads/desk/runs/wait", json={"assistant_id": "desk"}, headers=HEADERS
        )
        assert tick.status_code == 200
        states = await history(client, thread)
        events = await run(client, thread, submit("status", head_checkpoint(states)))
        (interrupt,) = [e.data for e in events if e.event == "values"][-1]["__interrupt__"]
        card = interrupt["value"]
        assert card["action_requests"][0]["name"] == card["review_configs"][0]["action_name"]
        assert card["review_configs"][0]["allowed_decisions"] == ["approve", "edit", "reject"]
        states = await history(client, thread)
        head = states[0]
        assert head["next"] == ["review"]
        assert head["tasks"][0]["interrupts"][0]["value"] == card
        assert head["values"]["messages"][-1]["type"] == "ai", "the card shows under an ai message"

        # the operator edits the quantity (the card sends edited fields as text) and submits
        quantity = card["action_requests"][0]["args"]["quantity"]
        edited = {
            "type": "edit",
            "edited_action": {
                "name": "submit_order",
                "args": {
                    **card["action_requests"][0]["args"],
                    "quantity": str(float(quantity) / 2),
                },
            },
        }
        flipped = {
            "type": "edit",
            "edited_action": {
                "name": "submit_order",
                "args": {**edited["edited_action"]["args"], "side": "SELL"},
            },
        }
        refused = await client.post(
            f"/threads/{thread}/runs/stream",
            json=resume(flipped, head_checkpoint(states)),
            headers=HEADERS,
        )
        assert refused.status_code == 422 and "changed: side" in refused.text
        events = await run(client, thread, resume(edited, head_checkpoint(states)))
        final = [e.data for e in events if e.event == "values"][-1]
        assert "__interrupt__" not in final
        assert final["messages"][-1]["content"].startswith("Approved")
        states = await history(client, thread)
        assert states[0]["next"] == [] and not states[0]["tasks"]
        desk = (await client.get("/threads/desk", headers=HEADERS)).json()
        assert desk["status"] == "idle"
        fills = desk["values"]["fills"]
        assert json.loads(json.dumps(fills)) and float(fills[0]["quantity"]) == float(quantity) / 2

"""Operator chat over HTTP (``POST /v1/chat``, streamed as SSE) and the LangGraph-style threads
and runs, driven by the real LangGraph SDK client against a uvicorn server."""

from __future__ import annotations

from pathlib import Path

import httpx
from langgraph_sdk import get_client

from support.api import (
    ADMIN,
    OPERATOR,
    VIEWER,
    api_settings,
    auth,
    context,
    memory,
    read_all_sse,
    running_app,
    scripted_models,
    uvicorn_server,
)
from tradecast.api.app import create_app


async def chat(
    client: httpx.AsyncClient, message: str, key: str = OPERATOR, thread: str = "ops-1"
) -> list:
    async with client.stream(
        "POST", "/v1/chat", json={"message": message, "thread_id": thread}, headers=auth(key)
    ) as response:
        assert response.status_code == 200, await response.aread()
        return await read_all_sse(response)


def reply_of(events: list) -> dict:
    (reply,) = [e.data for e in events if e.event == "reply"]
    return reply


async def test_a_question_streams_the_persona_then_the_reply(tmp_path: Path, embedder):
    models = scripted_models(persona="We bought because the signals agreed. Patience pays!")
    async with running_app(api_settings(tmp_path / "data"), embedder, models) as (_, client):
        await client.post("/v1/desk/tick", headers=auth(OPERATOR))
        events = await chat(client, "why did you buy?")
    names = [e.event for e in events]
    assert names[0] == "metadata" and names[-2:] == ["reply", "end"]
    assert "token" in names and "sentence" in names
    assert names.index("token") < names.index("sentence")
    ids = [int(e.id) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    reply = reply_of(events)
    assert reply["command"] == "ask" and reply["applied"] is False
    assert reply["message"] == " ".join(e.data["text"] for e in events if e.event == "sentence")
    assert all(e.data["text"] for e in events if e.event == "token")


async def test_commands_apply_within_the_callers_role_and_are_journaled(tmp_path: Path, embedder):
    async with running_app(api_settings(tmp_path / "data"), embedder) as (app, client):
        assert reply_of(await chat(client, "pause"))["applied"] is True
        assert context(app).desk.state == "paused"
        denied = reply_of(await chat(client, "kill switch on"))
        assert denied["applied"] is False and "admin" in denied["denied"]
        assert context(app).desk.limits().kill_switch is False
        assert reply_of(await chat(client, "kill switch on", key=ADMIN))["applied"] is True
        assert context(app).desk.limits().kill_switch is True
        loosen = reply_of(await chat(client, "max position 50%"))
        assert loosen["applied"] is False and "tighten" in loosen["denied"]
        assert reply_of(await chat(client, "max position 5%"))["applied"] is True
        nothing = reply_of(await chat(client, "approve BTCUSDT-20210105T1200"))
        assert nothing["applied"] is False and "no order waits" in nothing["denied"]
        journal = (await client.get("/v1/desk/journal", headers=auth(ADMIN))).json()["items"]
    rows = [
        (e["action"], e["actor"].split(":")[0], e["outcome"].split(":")[0])
        for e in reversed(journal)
    ]
    assert rows == [
        ("pause", "operator", "ok"),
        ("set_limits", "admin", "ok"),
        ("set_limits", "operator", "ok"),
        ("approve", "operator", "refused"),
    ]


async def test_langgraph_sdk_runs_a_desk_tick_and_a_chat(tmp_path: Path, embedder):
    settings = api_settings(tmp_path / "data")
    app = create_app(settings, models=scripted_models(), memory=memory(embedder))
    async with uvicorn_server(app) as base:
        sdk = get_client(url=f"{base}/v1", api_key=OPERATOR)
        created: list = []
        parts = [
            p
            async for p in sdk.runs.stream(
                None, "desk", stream_mode=["custom", "values"], on_run_created=created.append
            )
        ]
        assert parts[0].event == "metadata" and parts[-1].event == "end"
        custom = [p.data for p in parts if p.event == "custom"]
        kinds = [(c["channel"], c["event"]) for c in custom]
        assert ("desk", "decision") in kinds and ("persona", "token") in kinds
        (values,) = [p.data for p in parts if p.event == "values"]
        assert values["decision"]["id"] == "BTCUSDT-20210105T1200" and values["fills"]
        assert created and created[0]["thread_id"] == "desk"
        run = await sdk.runs.get("desk", created[0]["run_id"])
        assert run["status"] == "success"
        desk = await sdk.threads.get("desk")
        assert desk["status"] == "idle" and desk["values"]["id"] == "BTCUSDT-20210105T1200"
        tick = await sdk.threads.get("tick:BTCUSDT-20210105T1200")
        assert tick["values"]["decision"]["action"] == "BUY"
        # rejoin the finished run after its 3rd event: exactly the rest
        rest = [
            p async for p in sdk.runs.join_stream("desk", created[0]["run_id"], last_event_id="3")
        ]
        assert [p.id for p in rest] == [str(n) for n in range(4, len(parts) + 1)]

        thread = await sdk.threads.create(metadata={"who": "test"})
        chat_parts = [
            p
            async for p in sdk.runs.stream(thread["thread_id"], "chat", input={"message": "status"})
        ]
        (reply,) = [p.data for p in chat_parts if p.event == "values"]
        assert reply["command"] == "status" and reply["applied"] is True
        again = await sdk.threads.get(thread["thread_id"])
        assert again["values"]["command"] == "status" and again["metadata"] == {"who": "test"}


async def test_langgraph_sdk_answers_an_approval_interrupt(tmp_path: Path, embedder):
    settings = api_settings(tmp_path / "data", require_approval=True)
    app = create_app(settings, models=scripted_models(), memory=memory(embedder))
    async with uvicorn_server(app) as base:
        sdk = get_client(url=f"{base}/v1", api_key=OPERATOR)
        parts = [p async for p in sdk.runs.stream(None, "desk")]
        (values,) = [p.data for p in parts if p.event == "values"]
        assert values["status"] == "awaiting_approval"
        (interrupt,) = values["__interrupt__"]
        assert interrupt["value"]["decision_id"] == "BTCUSDT-20210105T1200"
        assert parts[-1].data["status"] == "interrupted"
        desk = await sdk.threads.get("desk")
        assert desk["status"] == "interrupted" and "BTCUSDT-20210105T1200" in desk["interrupts"]
        parts = [
            p async for p in sdk.runs.stream("desk", "desk", command={"resume": {"approved": True}})
        ]
        (values,) = [p.data for p in parts if p.event == "values"]
        assert values["status"] == "completed" and values["fills"]
        assert (await sdk.threads.get("desk"))["status"] == "idle"
        viewer = get_client(url=f"{base}/v1", api_key=VIEWER)
        try:
            await viewer.threads.get("desk")
        except httpx.HTTPStatusError as exc:
            assert exc.response.status_code == 403
        else:
            raise AssertionError("a viewer may not read threads")

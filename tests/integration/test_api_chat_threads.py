"""Operator chat over HTTP (``POST /v1/chat``, streamed as SSE). The LangGraph protocol's
threads and runs are tested in ``test_langgraph_protocol.py``."""

from __future__ import annotations

from pathlib import Path

import httpx

from support.api import (
    ADMIN,
    OPERATOR,
    api_settings,
    auth,
    context,
    read_all_sse,
    running_app,
    scripted_models,
)


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

"""The LangGraph Server protocol, driven through ``langgraph-sdk``'s real client against a
uvicorn server: assistants, threads, runs in every stream mode, interrupts answered with
``command``, a stream picked up after a dropped connection, cancellation and every
multitask strategy."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from support.api import (
    OPERATOR,
    VIEWER,
    api_settings,
    memory,
    scripted_models,
    uvicorn_server,
)
from support.dropping_proxy import dropping_proxy
from support.scripted_model import ScriptedChatModel
from tradecast.api.app import create_app
from tradecast.api.protocol.assistants import assistant_id

DECISION = "BTCUSDT-20210105T1200"
EVERY_MODE = ["values", "updates", "messages-tuple", "custom", "events", "debug"]


def serve(tmp_path: Path, embedder: Any, models: dict | None = None, **desk: Any) -> Any:
    settings = api_settings(tmp_path / "data", **desk)
    app = create_app(settings, models=models or scripted_models(), memory=memory(embedder))
    return uvicorn_server(app)


def gated(text: str) -> tuple[threading.Event, Any]:
    """A scripted reply that waits until its gate opens (a model still thinking)."""
    gate = threading.Event()

    def reply(_messages: Any) -> str:
        gate.wait(30)
        return text

    return gate, reply


@contextmanager
def refused(status: int) -> Iterator[None]:
    """The SDK call inside raises the HTTP error ``status``."""
    with pytest.raises(httpx.HTTPStatusError) as error:
        yield
    assert error.value.response.status_code == status, error.value.response.text


async def collect(stream: Any) -> list[Any]:
    return [part async for part in stream]


async def until(predicate: Any, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.02)


async def test_info_and_assistants_describe_both_graphs(tmp_path: Path, embedder):
    async with serve(tmp_path, embedder) as base:
        sdk = get_client(url=base, api_key=OPERATOR)
        info = await sdk.http.get("/info")
        assert info["flags"]["assistants"] is True
        found = await sdk.assistants.search(limit=10)
        assert {a["graph_id"] for a in found} == {"desk", "chat"}
        desk = await sdk.assistants.get("desk")
        assert desk["assistant_id"] == assistant_id("desk")
        assert (await sdk.assistants.get(desk["assistant_id"]))["graph_id"] == "desk"
        drawn = await sdk.assistants.get_graph("desk")
        nodes = {node["id"] for node in drawn["nodes"]}
        assert {"analyst", "risk", "trader", "consensus", "risk_gate", "approval"} <= nodes
        edges = {(e["source"], e["target"]): e.get("conditional", False) for e in drawn["edges"]}
        assert edges[("risk_gate", "execute")] is True and edges[("trader", "consensus")] is False
        chat_graph = await sdk.assistants.get_graph("chat")
        assert "review" in {node["id"] for node in chat_graph["nodes"]}
        schemas = await sdk.assistants.get_schemas("chat")
        assert "messages" in schemas["state_schema"]["properties"]
        with refused(404):
            await sdk.assistants.get("agent")
        v1 = get_client(url=f"{base}/v1", api_key=OPERATOR)
        assert len(await v1.assistants.search()) == 2


async def test_a_desk_tick_streams_every_mode_and_is_recorded(tmp_path: Path, embedder):
    async with serve(tmp_path, embedder) as base:
        sdk = get_client(url=base, api_key=OPERATOR)
        created: list = []
        parts = await collect(
            sdk.runs.stream("desk", "desk", stream_mode=EVERY_MODE, on_run_created=created.append)
        )
        assert parts[0].event == "metadata" and parts[0].data["run_id"] == created[0]["run_id"]
        kinds = {p.event for p in parts}
        assert {"values", "updates", "messages", "custom", "events", "debug", "end"} <= kinds
        spoke = {p.data[1]["langgraph_node"] for p in parts if p.event == "messages"}
        assert "analyst" in spoke and "persona" not in spoke, "raw persona tokens stay off"
        updates = {node for p in parts if p.event == "updates" for node in p.data}
        assert {"gather_context", "analyst", "risk_gate", "execute", "persona"} <= updates
        final = [p.data for p in parts if p.event == "values"][-1]
        assert final["decision"]["id"] == DECISION and final["execution"]["fills"]
        custom = [(p.data["channel"], p.data["event"]) for p in parts if p.event == "custom"]
        assert ("desk", "decision") in custom and ("persona", "sentence") in custom
        assert {p.data["type"] for p in parts if p.event == "debug"} >= {"checkpoint", "task"}
        assert any(p.data["event"] == "on_chain_start" for p in parts if p.event == "events")
        ids = [int(p.id) for p in parts]
        assert ids == list(range(1, len(parts) + 1))

        run = await sdk.runs.get("desk", created[0]["run_id"])
        assert run["status"] == "success" and run["kwargs"]["decision_id"] == DECISION
        assert [r["run_id"] for r in await sdk.runs.list("desk")] == [run["run_id"]]
        desk = await sdk.threads.get("desk")
        assert desk["status"] == "idle" and desk["values"]["id"] == DECISION
        tick = f"tick:{DECISION}"
        state = await sdk.threads.get_state(tick)
        assert state["next"] == [] and state["values"]["decision"]["action"] == "BUY"
        history = await sdk.threads.get_history(tick, limit=50)
        assert history[0]["checkpoint"] == state["checkpoint"]
        assert history[-1]["parent_checkpoint"] is None and len(history) > 5
        older = await sdk.threads.get_state(
            tick, checkpoint_id=history[2]["checkpoint"]["checkpoint_id"]
        )
        assert older["checkpoint"] == history[2]["checkpoint"]

        waited = await sdk.runs.wait("desk", "desk")
        assert waited["decision"]["id"] == "BTCUSDT-20210105T1300"
        background = await sdk.runs.create("desk", "desk")
        assert background["status"] in ("pending", "running")
        joined = await sdk.runs.join("desk", background["run_id"])
        assert joined["decision"]["id"] == "BTCUSDT-20210105T1400"
        again = await collect(
            sdk.runs.join_stream("desk", background["run_id"], last_event_id="-1")
        )
        assert again[0].event == "metadata" and again[-1].event == "end"
        await sdk.runs.delete("desk", background["run_id"])
        with refused(404):
            await sdk.runs.get("desk", background["run_id"])
        assert await sdk.assistants.get_subgraphs("desk") == {}


async def test_a_dropped_stream_is_picked_up_where_it_broke(tmp_path: Path, embedder):
    async with serve(tmp_path, embedder) as base:
        direct = get_client(url=base, api_key=OPERATOR)
        whole = await collect(direct.runs.stream("desk", "desk", stream_mode=["updates"]))
        async with dropping_proxy(base, b"/runs/stream", cut_after=1500) as (url, proxy):
            sdk = get_client(url=url, api_key=OPERATOR)
            parts = await collect(sdk.runs.stream("desk", "desk", stream_mode=["updates"]))
        assert proxy.cuts == 1
        rejoined = [r for r in proxy.requests if r.startswith(b"GET") and b"/stream" in r]
        assert rejoined, "the SDK came back through Location"
        ids = [int(p.id) for p in parts]
        assert ids == list(range(1, len(parts) + 1)), "nothing lost, nothing repeated"
        assert [p.event for p in parts] == [p.event for p in whole]


async def test_an_approval_interrupt_is_answered_through_command(tmp_path: Path, embedder):
    async with serve(tmp_path, embedder, require_approval=True) as base:
        sdk = get_client(url=base, api_key=OPERATOR)
        parts = await collect(sdk.runs.stream("desk", "desk"))
        (interrupt,) = [p.data for p in parts if p.event == "values"][-1]["__interrupt__"]
        request = interrupt["value"]
        (action,) = request["action_requests"]
        assert action["name"] == "submit_order" and action["args"]["decision_id"] == DECISION
        assert request["review_configs"][0]["allowed_decisions"] == ["approve", "edit", "reject"]
        desk = await sdk.threads.get("desk")
        assert desk["status"] == "interrupted" and DECISION in desk["interrupts"]
        tick = await sdk.threads.get_state(f"tick:{DECISION}")
        assert tick["next"] == ["approval"] and tick["interrupts"][0]["value"] == request

        quantity = Decimal(action["args"]["quantity"])
        more = {
            "type": "edit",
            "edited_action": {"name": "submit_order", "args": {"quantity": str(quantity * 2)}},
        }
        with refused(422):
            await sdk.runs.wait("desk", "desk", command={"resume": {"decisions": [more]}})
        half = str(quantity / 2)
        edit = {
            "type": "edit",
            "edited_action": {"name": "submit_order", "args": {"quantity": half}},
        }
        final = await sdk.runs.wait(
            f"tick:{DECISION}", "desk", command={"resume": {"decisions": [edit]}}
        )
        assert final["approval"] == "approved"
        assert Decimal(final["execution"]["fills"][0]["quantity"]) == Decimal(half)
        assert (await sdk.threads.get("desk"))["status"] == "idle"
        journal = await sdk.http.get("/v1/desk/journal")
        approve = next(e for e in journal["items"] if e["action"] == "approve")
        assert approve["detail"]["quantity"] == half


async def test_chat_threads_carry_messages_and_put_waiting_orders_to_the_operator(
    tmp_path: Path, embedder
):
    async with serve(tmp_path, embedder, require_approval=True) as base:
        sdk = get_client(url=base, api_key=OPERATOR)
        await sdk.runs.wait("desk", "desk")  # an order now waits
        thread = await sdk.threads.create()
        human = {"id": "h-1", "type": "human", "content": [{"type": "text", "text": "status"}]}
        values = await sdk.runs.wait(thread["thread_id"], "chat", input={"messages": [human]})
        assert [m["type"] for m in values["messages"]] == ["human", "ai"]
        assert values["messages"][0]["id"] == "h-1"
        (interrupt,) = values["__interrupt__"]
        assert interrupt["value"]["action_requests"][0]["args"]["decision_id"] == DECISION
        state = await sdk.threads.get_state(thread["thread_id"])
        assert state["next"] == ["review"] and state["tasks"][0]["interrupts"]
        assert (await sdk.threads.get(thread["thread_id"]))["status"] == "interrupted"

        with refused(422):
            await sdk.runs.wait(
                thread["thread_id"], "chat", command={"resume": {"decisions": [{"type": "maybe"}]}}
            )
        values = await sdk.runs.wait(
            thread["thread_id"], "chat", command={"resume": {"decisions": [{"type": "approve"}]}}
        )
        assert values["messages"][-1]["content"].startswith(f"Approved {DECISION}: filled")
        assert (await sdk.threads.get(thread["thread_id"]))["status"] == "idle"
        assert (await sdk.threads.get("desk"))["status"] == "idle"
        history = await sdk.threads.get_history(thread["thread_id"], limit=100)
        assert history[0]["values"]["messages"][-1] == values["messages"][-1]
        found = await sdk.threads.search(metadata={"graph_id": "chat"})
        assert [t["thread_id"] for t in found] == [thread["thread_id"]]


async def test_a_running_chat_run_is_cancelled_kept_or_rolled_back(tmp_path: Path, embedder):
    gate, slow = gated("We keep calm and follow the plan.")
    models = scripted_models(persona=slow)
    async with serve(tmp_path, embedder, models) as base:
        sdk = get_client(url=base, api_key=OPERATOR)
        thread = (await sdk.threads.create())["thread_id"]
        await sdk.runs.wait(thread, "chat", input={"message": "status"})
        before = await sdk.threads.get_state(thread)
        try:
            run = await sdk.runs.create(thread, "chat", input={"message": "why so calm?"})
            await until(lambda: _running(sdk, thread, run["run_id"]))
            assert (await sdk.threads.get(thread))["status"] == "busy"
            await sdk.runs.cancel(thread, run["run_id"], wait=True, action="interrupt")
            assert (await sdk.runs.get(thread, run["run_id"]))["status"] == "interrupted"
            kept = await sdk.threads.get_state(thread)
            assert kept["values"]["messages"][-1]["content"] == "why so calm?"

            run = await sdk.runs.create(thread, "chat", input={"message": "and now?"})
            await until(lambda: _running(sdk, thread, run["run_id"]))
            await sdk.runs.cancel(thread, run["run_id"], wait=True, action="rollback")
            with refused(404):
                await sdk.runs.get(thread, run["run_id"])
            after = await sdk.threads.get_state(thread)
            assert after["checkpoint"] == kept["checkpoint"], "the rolled-back run left nothing"
            assert len(after["values"]["messages"]) == len(before["values"]["messages"]) + 1
        finally:
            gate.set()


async def _running(sdk: Any, thread: str, run_id: str) -> bool:
    return (await sdk.runs.get(thread, run_id))["status"] == "running"


@pytest.mark.parametrize("strategy", ["reject", "enqueue", "interrupt", "rollback"])
async def test_each_multitask_strategy(tmp_path: Path, embedder, strategy: str):
    gate, slow = gated("Patience is a position too.")
    models = scripted_models()
    models["persona"] = ScriptedChatModel(script=[slow, "Second answer, right away."])
    async with serve(tmp_path, embedder, models) as base:
        sdk = get_client(url=base, api_key=OPERATOR)
        thread = (await sdk.threads.create())["thread_id"]
        first = await sdk.runs.create(thread, "chat", input={"message": "first question?"})
        await until(lambda: _running(sdk, thread, first["run_id"]))
        try:
            if strategy == "reject":
                with refused(409):
                    await sdk.runs.create(thread, "chat", input={"message": "second?"})
                gate.set()
                await sdk.runs.join(thread, first["run_id"])
                assert (await sdk.runs.get(thread, first["run_id"]))["status"] == "success"
                return
            second = await sdk.runs.create(
                thread, "chat", input={"message": "second question?"}, multitask_strategy=strategy
            )
            if strategy == "enqueue":
                assert (await sdk.runs.get(thread, second["run_id"]))["status"] == "pending"
                gate.set()
            final = await sdk.runs.join(thread, second["run_id"])
        finally:
            gate.set()
        said = [m["content"] for m in final["messages"] if m["type"] == "human"]
        if strategy == "enqueue":
            assert said == ["first question?", "second question?"]
            assert (await sdk.runs.get(thread, first["run_id"]))["status"] == "success"
        elif strategy == "interrupt":
            assert said == ["first question?", "second question?"]
            assert (await sdk.runs.get(thread, first["run_id"]))["status"] == "interrupted"
        else:
            assert said == ["second question?"]
            with refused(404):
                await sdk.runs.get(thread, first["run_id"])


async def test_a_desk_tick_cannot_be_rolled_back_and_a_cancel_does_not_cut_it(
    tmp_path: Path, embedder
):
    gate = asyncio.Event()
    models = scripted_models()
    models["analyst"].gate = gate
    async with serve(tmp_path, embedder, models) as base:
        sdk = get_client(url=base, api_key=OPERATOR)
        try:
            run = await sdk.runs.create("desk", "desk")
            await until(lambda: _running(sdk, "desk", run["run_id"]))
            with refused(409):
                await sdk.runs.create("desk", "desk", multitask_strategy="rollback")
            with refused(409):
                await sdk.runs.cancel("desk", run["run_id"], action="rollback")
            await sdk.runs.cancel("desk", run["run_id"], wait=True)
            assert (await sdk.runs.get("desk", run["run_id"]))["status"] == "interrupted"
        finally:
            gate.set()
        # the run stopped following the tick; the tick itself finished and was recorded
        await until(lambda: _journaled(sdk, "tick", DECISION))
        desk = await sdk.threads.get("desk")
        assert desk["values"]["id"] == DECISION and desk["values"]["fills"]
        following = await sdk.runs.wait("desk", "desk")
        assert following["decision"]["id"] == "BTCUSDT-20210105T1300"


async def test_a_cancelled_approval_still_fills_and_is_journaled(tmp_path: Path, embedder):
    gate, slow = gated("Approved and on its way.")
    models = scripted_models()
    models["persona"] = ScriptedChatModel(script=["Waiting for the desk.", slow])
    async with serve(tmp_path, embedder, models, require_approval=True) as base:
        sdk = get_client(url=base, api_key=OPERATOR)
        await sdk.runs.wait("desk", "desk")
        try:
            run = await sdk.runs.create(
                "desk", "desk", command={"resume": {"decisions": [{"type": "approve"}]}}
            )
            await until(lambda: _running(sdk, "desk", run["run_id"]))
            await sdk.runs.cancel("desk", run["run_id"], wait=True)
        finally:
            gate.set()
        await until(lambda: _journaled(sdk, "approve", DECISION))
        desk = await sdk.threads.get("desk")
        assert desk["status"] == "idle" and not desk["interrupts"]
        assert desk["values"]["fills"] and desk["values"]["persona"]["text"]


async def _journaled(sdk: Any, action: str, decision_id: str) -> bool:
    journal = await sdk.http.get("/v1/desk/journal")
    return any(
        e["action"] == action and e["detail"].get("decision_id") == decision_id
        for e in journal["items"]
    )


async def test_bad_answers_and_hostile_ids_are_refused(tmp_path: Path, embedder):
    async with serve(tmp_path, embedder, require_approval=True) as base:
        sdk = get_client(url=base, api_key=OPERATOR)
        await sdk.runs.wait("desk", "desk")
        approve = {"resume": {"decisions": [{"type": "approve"}], "decision_id": "OTHER"}}
        with refused(422):
            await sdk.runs.wait(f"tick:{DECISION}", "desk", command=approve)
        with refused(422):
            await sdk.runs.wait("bad id!", "chat", input={"message": "hi"}, if_not_exists="create")
        thread = (await sdk.threads.create())["thread_id"]
        with refused(409):
            await sdk.runs.wait(thread, "chat", command={"goto": "__end__"})
        with refused(404):
            await sdk.threads.get_state(thread, checkpoint_id="1f0-no-such-checkpoint")
        with refused(404):
            await sdk.runs.wait(
                thread, "chat", input={"message": "hi"}, checkpoint_id="1f0-no-such-checkpoint"
            )
        async with httpx.AsyncClient(base_url=base, headers={"x-api-key": OPERATOR}) as http:
            chat = await http.post(
                "/v1/chat", json={"message": "status", "thread_id": f"tick:{DECISION}"}
            )
            assert chat.status_code == 422, "a tick's checkpoints are not a chat's"
            (first, *_) = await sdk.runs.list("desk")
            odd = await http.get(
                f"/threads/desk/runs/{first['run_id']}/stream",
                headers={"Last-Event-ID": "²".encode("latin-1")},
            )
            assert odd.status_code == 422 and "whole numbers" in odd.text
            nan = await http.post(
                "/threads/desk/runs",
                content=b'{"assistant_id": "desk", "metadata": {"n": NaN}}',
                headers={"Content-Type": "application/json"},
            )
            assert nan.status_code == 422 and "NaN" in nan.text
        assert (await sdk.threads.get("desk"))["status"] == "interrupted", "nothing was decided"


async def test_a_run_without_a_thread_leaves_none_and_wait_rejoins_by_join(
    tmp_path: Path, embedder
):
    async with serve(tmp_path, embedder) as base:
        sdk = get_client(url=base, api_key=OPERATOR)
        created: list = []
        values = await sdk.runs.wait(
            None, "chat", input={"message": "status"}, on_run_created=created.append
        )
        assert values["reply"]["command"] == "status"
        assert [t["thread_id"] for t in await sdk.threads.search()] == ["desk"]
        with refused(422):
            await sdk.runs.wait(None, "chat", input={"message": ""})
        kept = await sdk.runs.wait(None, "chat", input={"message": "status"}, on_completion="keep")
        assert len(await sdk.threads.search()) == 2 and kept["messages"]
        async with httpx.AsyncClient(base_url=base, headers={"x-api-key": OPERATOR}) as http:
            waited = await http.post("/threads/desk/runs/wait", json={"assistant_id": "desk"})
            assert waited.headers["location"].endswith("/join")
            assert waited.headers["location"].startswith("/threads/desk/runs/")
            at = await sdk.threads.get_history(f"tick:{DECISION}", limit=3)
            checkpoint = {k: v for k, v in at[1]["checkpoint"].items() if k != "thread_id"}
            state = await sdk.threads.get_state(f"tick:{DECISION}", checkpoint=checkpoint)
            assert state["checkpoint"]["checkpoint_id"] == checkpoint["checkpoint_id"]


async def test_threads_are_searched_patched_and_deleted(tmp_path: Path, embedder):
    async with serve(tmp_path, embedder) as base:
        sdk = get_client(url=base, api_key=OPERATOR)
        a = await sdk.threads.create(thread_id="ops-1", metadata={"desk": "ops"})
        b = await sdk.threads.create(thread_id="ops-2", graph_id="chat")
        await sdk.runs.wait(b["thread_id"], "chat", input={"message": "pause"})
        assert (await sdk.threads.get("ops-2"))["metadata"]["graph_id"] == "chat"
        listed = await sdk.threads.search(limit=10)
        assert {t["thread_id"] for t in listed} == {"desk", a["thread_id"], "ops-2"}
        assert [t["thread_id"] for t in await sdk.threads.search(metadata={"desk": "ops"})] == [
            a["thread_id"]
        ]
        page = await sdk.threads.search(limit=1, offset=1, sort_by="thread_id", sort_order="asc")
        assert [t["thread_id"] for t in page] == ["ops-1"]
        patched = await sdk.threads.update(a["thread_id"], metadata={"label": "morning"})
        assert patched["metadata"]["label"] == "morning" and patched["metadata"]["desk"] == "ops"
        with refused(409):
            await sdk.threads.create(thread_id="ops-2")
        assert (await sdk.threads.create(thread_id="ops-2", if_exists="do_nothing"))["thread_id"]
        await sdk.threads.delete("ops-2")
        with refused(404):
            await sdk.threads.get("ops-2")
        with refused(409):
            await sdk.threads.delete("desk")


async def test_the_sdk_key_header_maps_onto_roles(tmp_path: Path, embedder):
    async with serve(tmp_path, embedder) as base:
        viewer = get_client(url=base, api_key=VIEWER)
        assert len(await viewer.assistants.search()) == 2
        for call in (viewer.threads.get("desk"), viewer.runs.wait("desk", "desk")):
            with pytest.raises(httpx.HTTPStatusError) as refused:
                await call
            assert refused.value.response.status_code == 403
        nobody = get_client(url=base, api_key=None)
        with pytest.raises(httpx.HTTPStatusError) as refused:
            await nobody.assistants.search()
        assert refused.value.response.status_code == 401
        assert (await nobody.http.get("/info"))["flags"]


async def test_history_filters_are_checked_before_the_checkpointer_sees_them(
    tmp_path: Path, embedder
):
    async with serve(tmp_path, embedder) as base:
        sdk = get_client(url=base, api_key=OPERATOR)
        thread = (await sdk.threads.create())["thread_id"]
        await sdk.runs.wait(thread, "chat", input={"message": "status"})
        for bad in ({"": 1}, {"a'; DROP TABLE checkpoints; --": 1}, {"x" * 65: 1}):
            with refused(422):
                await sdk.threads.get_history(thread, metadata=bad)
        states = await sdk.threads.get_history(thread, metadata={"source": "loop"})
        assert states and all(s["metadata"]["source"] == "loop" for s in states)

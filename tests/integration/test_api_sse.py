"""The SSE streams over real HTTP: a uvicorn server on a loopback port and a streaming HTTP
client that drops its connection mid-stream and resumes with Last-Event-ID."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import httpx
import pytest

from support.api import (
    CHATTY,
    OPERATOR,
    VIEWER,
    SSEReader,
    api_settings,
    auth,
    context,
    memory,
    read_sse,
    scripted_models,
    uvicorn_server,
)
from tradecast.api.app import create_app
from tradecast.domain import StreamEvent


def make_app(tmp_path: Path, embedder, models: dict | None = None, api: dict | None = None):
    settings = api_settings(tmp_path / "data", api=api)
    return create_app(settings, models=models or scripted_models(), memory=memory(embedder))


def token(n: int, channel: str = "persona") -> StreamEvent:
    return StreamEvent(
        channel=channel,
        event="token",  # type: ignore[arg-type]
        data={"text": f"w{n} ", "n": n},
    )


async def test_frames_carry_ids_names_and_keep_alive(tmp_path: Path, embedder):
    app = make_app(tmp_path, embedder, api={"sse_ping_s": 0.2})
    async with (
        uvicorn_server(app) as base,
        httpx.AsyncClient(base_url=base) as client,
        client.stream("GET", "/v1/streams/desk", params={"key": VIEWER}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = SSEReader(response)
        assert await anext(reader.lines) == ": connected"
        assert await anext(reader.lines) == "retry: 2000"
        published = await context(app).publisher.publish(
            StreamEvent(channel="desk", event="decision", data={"id": "X", "n": 1})
        )
        (event,) = await read_sse(reader, 1)
        assert event.event == "decision" and event.id == published.id
        assert event.data["data"] == {"id": "X", "n": 1} and event.data["channel"] == "desk"
        async with asyncio.timeout(5):
            async for line in reader.lines:
                if line.startswith(": ping"):
                    break


async def test_resume_by_header_or_query_and_resync_when_too_old(tmp_path: Path, embedder):
    app = make_app(tmp_path, embedder, api={"stream_buffer": 100})
    async with uvicorn_server(app) as base, httpx.AsyncClient(base_url=base) as client:
        publisher = context(app).publisher
        published = [await publisher.publish(token(i)) for i in range(150)]
        headers = {**auth(VIEWER), "Last-Event-ID": published[140].id}
        async with client.stream("GET", "/v1/streams/persona", headers=headers) as response:
            events = await read_sse(response, 9)
        assert [e.data["data"]["n"] for e in events] == list(range(141, 150))
        params = {"key": VIEWER, "last_event_id": published[145].id}
        async with client.stream("GET", "/v1/streams/persona", params=params) as response:
            events = await read_sse(response, 4)
        assert [e.data["data"]["n"] for e in events] == list(range(146, 150))
        headers["Last-Event-ID"] = published[3].id
        async with client.stream("GET", "/v1/streams/persona", headers=headers) as response:
            resync, *rest = await read_sse(response, 101)
        assert resync.event == "resync" and "older than the replay buffer" in resync.data["reason"]
        assert resync.data["snapshot"] == "/v1/snapshot"
        assert [e.data["data"]["n"] for e in rest] == list(range(50, 150))
        snapshot = (await client.get("/v1/snapshot", headers=auth(VIEWER))).json()
        assert snapshot["last_ids"]["persona"] == published[-1].id


async def test_100_forced_disconnects_lose_nothing_and_repeat_nothing(tmp_path: Path, embedder):
    """A producer publishes on two channels while a client reads a few events at a time and
    drops the TCP connection mid-stream, 100 times per channel, resuming each time from the
    last id it saw."""
    app = make_app(tmp_path, embedder)
    rng = random.Random(42)
    total = 1200
    async with uvicorn_server(app) as base, httpx.AsyncClient(base_url=base) as client:
        publisher = context(app).publisher
        done = asyncio.Event()

        async def produce() -> None:
            for i in range(total):
                await publisher.publish(token(i, "persona" if i % 2 else "desk"))
                if i % 5 == 0:
                    await asyncio.sleep(0.001)
            done.set()

        async def consume(channel: str) -> tuple[list[int], list[str], int]:
            seen: list[int] = []
            ids: list[str] = []
            drops = 0
            last = "0-0"
            while not (done.is_set() and len(seen) == total // 2):
                headers = {**auth(VIEWER), "Last-Event-ID": last}
                async with client.stream(
                    "GET", f"/v1/streams/{channel}", headers=headers
                ) as response:
                    budget = rng.randint(1, 10) if drops < 100 else total
                    async with asyncio.timeout(20):
                        async for event in SSEReader(response).events():
                            assert event.event == "token"
                            seen.append(event.data["data"]["n"])
                            ids.append(event.id)
                            last = event.id
                            budget -= 1
                            if budget == 0 or (done.is_set() and len(seen) == total // 2):
                                break
                drops += 1  # leaving the block closes the connection mid-stream
            return seen, ids, drops

        producer = asyncio.create_task(produce())
        (desk, desk_ids, desk_drops), (persona, persona_ids, persona_drops) = await asyncio.gather(
            consume("desk"), consume("persona")
        )
        await producer
    assert desk_drops >= 100 and persona_drops >= 100
    assert desk == list(range(0, total, 2)), "desk: nothing lost, nothing repeated, in order"
    assert persona == list(range(1, total, 2)), "persona: nothing lost, nothing repeated"
    assert len(set(desk_ids)) == len(desk_ids) and len(set(persona_ids)) == len(persona_ids)


async def test_a_client_that_stops_reading_is_dropped_and_slows_no_one(tmp_path: Path, embedder):
    app = make_app(tmp_path, embedder, api={"sse_queue_size": 10})
    count, blob = 2000, "x" * 4000
    async with uvicorn_server(app) as base, httpx.AsyncClient(base_url=base) as client:
        publisher = context(app).publisher
        async with client.stream("GET", "/v1/streams/market", headers=auth(VIEWER)) as stalled:
            first_id = (
                await publisher.publish(StreamEvent(channel="market", event="tick", data={"n": -1}))
            ).id
            received: list[int] = []

            async def fast_reader() -> None:
                async with client.stream(
                    "GET", "/v1/streams/market", headers={**auth(VIEWER), "Last-Event-ID": first_id}
                ) as response:
                    async for event in SSEReader(response).events():
                        received.append(event.data["data"]["n"])
                        if len(received) == count:
                            return

            reader = asyncio.create_task(fast_reader())
            await asyncio.sleep(0.2)
            for i in range(count):
                await publisher.publish(
                    StreamEvent(channel="market", event="tick", data={"n": i, "blob": blob})
                )
                await asyncio.sleep(0)
            await asyncio.wait_for(reader, 30)
            assert received == list(range(count))
            stats = context(app).bus.stats()["market"]
            assert stats["dropped"] >= 1, "the stalled client was cut off"
            # the stalled client gets what was on the wire, then the stream ends; it resumes
            last = None
            async with asyncio.timeout(20):
                async for event in SSEReader(stalled).events():
                    last = event.id
        assert last is not None
        async with client.stream(
            "GET", "/v1/streams/market", headers={**auth(VIEWER), "Last-Event-ID": last}
        ) as response:
            rest = await read_sse(response, 1)
        assert rest and rest[0].data["data"]["n"] >= 0
        metrics = (await client.get("/metrics", headers=auth(VIEWER))).text
        assert 'tradecast_sse_clients_dropped_total{channel="market"}' in metrics


@pytest.mark.slow
async def test_desk_streams_survive_100_disconnects_mid_sentence(tmp_path: Path, embedder):
    """The real desk ticks (scripted models, chatty persona) while a client drops its
    connection mid-sentence 100 times: the persona's every token arrives once, in order."""
    models = scripted_models(persona=CHATTY)
    app = make_app(tmp_path, embedder, models=models)
    rng = random.Random(3)
    async with uvicorn_server(app) as base, httpx.AsyncClient(base_url=base) as client:
        seen: list[tuple[str, str]] = []
        last = "0-0"
        drops = 0
        ticks = 0
        while drops < 100 or ticks < 2:
            tick = asyncio.create_task(
                client.post("/v1/desk/tick", headers=auth(OPERATOR), timeout=60)
            )
            while not tick.done():
                headers = {**auth(VIEWER), "Last-Event-ID": last}
                async with client.stream("GET", "/v1/streams/persona", headers=headers) as response:
                    budget = rng.randint(1, 6)
                    try:
                        async with asyncio.timeout(0.5):
                            async for event in SSEReader(response).events():
                                seen.append((event.id, event.event))
                                last = event.id
                                budget -= 1
                                if budget == 0:
                                    break
                    except TimeoutError:
                        pass
                drops += 1
            assert (await tick).status_code == 200
            ticks += 1
        async with client.stream(
            "GET", "/v1/streams/persona", headers={**auth(VIEWER), "Last-Event-ID": last}
        ) as response:
            published = await context(app).bus.latest("persona", 10_000)
            remaining = [e for e in published if e.id not in {i for i, _ in seen}]
            if remaining:
                for event in await read_sse(response, len(remaining)):
                    seen.append((event.id, event.event))
    assert drops >= 100
    assert [i for i, _ in seen] == [e.id for e in published], "0 lost, 0 repeated, in order"
    assert sum(1 for _, name in seen if name == "sentence") >= 3 * ticks

"""Helpers for API tests: the app on scripted chat models, HTTP clients, a real uvicorn
server on a loopback port, and an SSE reader that can drop its connection."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import chromadb
import httpx
import uvicorn
from fastapi import FastAPI

from support.scripted_model import NO_TOOL, ScriptedChatModel, analyst, risk, trader
from tradecast.api.app import create_app
from tradecast.api.deps import ApiContext
from tradecast.memory.chroma import ChromaDecisionMemory, chroma_settings
from tradecast.memory.embeddings import Embedder
from tradecast.settings import Settings, load_settings

VIEWER, OPERATOR, ADMIN = "view-key-123", "ops-key-456", "admin-key-789"
KEYS = f"viewer:{VIEWER},operator:{OPERATOR},admin:{ADMIN}"
START = "2021-01-05T12:00:00Z"
DESK_OPEN_TIMEOUT_S = 120
CHATTY = (
    "Candles never lie to those who listen closely. Risk first and vibes second, "
    "always and forever. The desk keeps its head when the market loses its own."
)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def scripted_models(persona: str = "Let's see how this goes!", **scripts: list) -> dict:
    """Zero-latency scripted models: the analyst, trader and risk agent agree to BUY."""
    return {
        "analyst": ScriptedChatModel(script=scripts.get("analyst", [analyst()])),
        "risk": ScriptedChatModel(script=scripts.get("risk", [risk()])),
        "trader": ScriptedChatModel(script=scripts.get("trader", [NO_TOOL, trader()])),
        "persona": ScriptedChatModel(script=scripts.get("persona", [persona])),
    }


def api_settings(
    data_dir: Path,
    *,
    api: dict | None = None,
    voice: dict | None = None,
    viewers: dict | None = None,
    **desk: Any,
) -> Settings:
    """Settings for a test app: known keys, paused at start, no pause between ticks, and no
    voice unless ``voice`` asks for one (the voice's own tests do); ``viewers`` sets the
    audience (flood limits, answers per minute)."""
    desk_config = {
        "autostart": False,
        "seconds_per_tick": 0,
        "replay_from": START,
        "memory_k": 0,
        **desk,
    }
    return load_settings(
        data_dir=data_dir,
        api={"api_keys": KEYS, **(api or {})},
        desk=desk_config,
        voice=voice or {"backend": "off"},
        viewers=viewers or {},
    )


def memory(embedder: Embedder) -> ChromaDecisionMemory:
    """A fresh in-memory Chroma collection with the real embedder."""
    client = chromadb.EphemeralClient(settings=chroma_settings())
    return ChromaDecisionMemory(client, embedder, collection=f"api-{uuid.uuid4().hex[:12]}")


@asynccontextmanager
async def running_app(
    settings: Settings, embedder: Embedder, models: dict | None = None
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan entered, the desk open, and an HTTP client over ASGI."""
    app = create_app(settings, models=models or scripted_models(), memory=memory(embedder))
    async with app.router.lifespan_context(app):
        await app.state.opener.wait_open(DESK_OPEN_TIMEOUT_S)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield app, client


def context(app: FastAPI) -> ApiContext:
    return app.state.ctx


@asynccontextmanager
async def uvicorn_server(app: FastAPI) -> AsyncIterator[str]:
    """``app`` served by a real uvicorn on a free loopback port (lifespan included), once its
    desk is open."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(60):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
        await app.state.opener.wait_open(DESK_OPEN_TIMEOUT_S)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        sock.close()


@dataclass
class SSEEvent:
    event: str
    id: str | None
    data: Any


@dataclass
class SSEReader:
    """Reads SSE frames from a streaming httpx response (one reader per response: a
    response's lines can only be iterated once)."""

    response: httpx.Response
    comments: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lines = self.response.aiter_lines()

    async def events(self) -> AsyncIterator[SSEEvent]:
        """Events as they come; stop early and call again to go on where it stopped."""
        name, event_id, data = "message", None, []
        async for line in self.lines:
            if line == "":
                if data:
                    yield SSEEvent(name, event_id, json.loads("\n".join(data)))
                name, event_id, data = "message", None, []
            elif line.startswith(":"):
                self.comments.append(line[1:].strip())
            else:
                key, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if key == "event":
                    name = value
                elif key == "id":
                    event_id = value
                elif key == "data":
                    data.append(value)


async def read_sse(
    source: httpx.Response | SSEReader, count: int, timeout: float = 10
) -> list[SSEEvent]:
    """The next ``count`` events."""
    reader = source if isinstance(source, SSEReader) else SSEReader(source)
    out: list[SSEEvent] = []
    async with asyncio.timeout(timeout):
        async for item in reader.events():
            out.append(item)
            if len(out) >= count:
                break
    return out


async def read_all_sse(response: httpx.Response, timeout: float = 30) -> list[SSEEvent]:
    """Every event of a stream that ends by itself."""
    out: list[SSEEvent] = []
    async with asyncio.timeout(timeout):
        async for item in SSEReader(response).events():
            out.append(item)
    return out

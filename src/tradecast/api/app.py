"""FastAPI application factory: the routes, the error handlers and limits, the overlay, and a
lifespan that opens the desk in the background (:mod:`tradecast.api.lifespan`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from langchain_core.language_models import BaseChatModel

from tradecast import __version__
from tradecast.api.auth import KeyRing
from tradecast.api.body_limit import install_body_limit
from tradecast.api.errors import install_error_handlers
from tradecast.api.lifespan import DeskOpener, OpenFailed, running_desk
from tradecast.api.protocol import protocol_router
from tradecast.api.routes import charts, chat, desk, ops, persona, session, streams, viewers
from tradecast.api.schemas import ApiIndex
from tradecast.graphs.controls import Role
from tradecast.logs import get_logger
from tradecast.memory.base import DecisionMemory
from tradecast.settings import AgentRole, Settings

log = get_logger(__name__)
OVERLAY_DIR = Path(__file__).parent / "overlay"
CONSOLE_DIR = Path(__file__).parent / "console"

DESCRIPTION = """
A multi-agent LLM trading desk that runs on local hardware and broadcasts itself.

**Auth**: every route but `/healthz` and `/readyz` needs an API key, sent as
`Authorization: Bearer KEY` (or `X-Api-Key: KEY`; pages that cannot set headers may pass a
viewer key as `?key=` on reads). The console (`/console/`) signs in with `POST /v1/session`
instead and sends a session cookie, with its `X-CSRF-Token` on every change. Roles:
`viewer` (streams and reads) < `operator` (chat, desk control, approvals) < `admin` (risk
limits, kill switch). No key: 401; too low a role: 403;
control routes are rate limited per key: 429 with `Retry-After`.

**Errors** are JSON: `{"error": {"code": "...", "message": "..."}}` (422s add `fields`).

**Streams** (`/v1/streams/{desk|persona|market}`) are server-sent events with ids; reconnect
with `Last-Event-ID` to resume with nothing lost and nothing repeated.
"""

TAGS = [
    {"name": "desk", "description": "The desk loop: control, approvals, journal."},
    {"name": "risk", "description": "The hard limits the risk gate enforces."},
    {"name": "portfolio", "description": "The paper broker's account."},
    {"name": "decisions", "description": "Each tick's report."},
    {"name": "streams", "description": "Live events (SSE) and snapshots."},
    {"name": "persona", "description": "The persona's card, avatar sprites and spoken lines."},
    {"name": "chat", "description": "Operator chat as server-sent events."},
    {
        "name": "langgraph",
        "description": "The LangGraph Server protocol (assistants, threads, runs), under /v1 "
        "and TRADECAST_API__LANGGRAPH_PREFIX (the root by default).",
    },
    {"name": "ops", "description": "Health, readiness, metrics."},
]


def resolve_keys(settings: Settings) -> tuple[KeyRing, dict[Role, str] | None]:
    """The configured API keys, or freshly generated ones (returned so they can be shown)."""
    if settings.api.api_keys.strip():
        try:
            return KeyRing.parse(settings.api.api_keys), None
        except ValueError as exc:
            raise ValueError(f"TRADECAST_API_KEYS: {exc}") from None
    ring, generated = KeyRing.generate()
    return ring, generated


def create_app(
    settings: Settings,
    *,
    keys: KeyRing | None = None,
    models: Mapping[AgentRole, BaseChatModel] | None = None,
    memory: DecisionMemory | None = None,
    on_open_failed: OpenFailed | None = None,
) -> FastAPI:
    """The tradecast API for ``settings``. ``keys`` default to the configured ones (or to
    generated ones, logged once); ``models``/``memory`` may be given, e.g. by tests. The desk
    opens in the background once the server runs (:mod:`tradecast.api.lifespan`);
    ``on_open_failed`` is told if it cannot."""
    if keys is None:
        keys, generated = resolve_keys(settings)
        if generated:
            log.warning(
                "api.generated_keys",
                note="no TRADECAST_API_KEYS set: these keys last until the server stops",
                **generated,
            )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opener = DeskOpener(
            app, lambda: running_desk(settings, keys, models, memory), on_open_failed
        )
        app.state.opener = opener
        opener.start()
        try:
            yield
        finally:
            await opener.aclose()
        log.info("api.stopped")

    app = FastAPI(
        title="tradecast",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.ctx = None
    app.state.opener = None
    install_error_handlers(app)
    install_body_limit(app, settings.api.max_body_bytes)
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.api.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["*"],
            expose_headers=["Content-Location", "Location", "X-Confirm-Token"],
        )
    # charts before desk: /v1/decisions/markers must not be read as a decision id
    routers = (ops, session, charts, desk, streams, persona, chat, viewers)
    for router in (module.router for module in routers):
        app.include_router(router)
    for prefix in dict.fromkeys(("/v1", settings.api.langgraph_prefix)):
        app.include_router(protocol_router(prefix))

    @app.get("/", include_in_schema=False, response_model=ApiIndex)
    async def root() -> dict[str, Any]:
        return {
            "name": "tradecast",
            "version": __version__,
            "docs": "/docs",
            "openapi": "/openapi.json",
            "overlay": "/overlay/?key=VIEWER_KEY",
            "console": "/console/",
        }

    if OVERLAY_DIR.is_dir():
        app.mount("/overlay", StaticFiles(directory=OVERLAY_DIR, html=True), name="overlay")
    if CONSOLE_DIR.is_dir():
        app.mount("/console", StaticFiles(directory=CONSOLE_DIR, html=True), name="console")
    return app

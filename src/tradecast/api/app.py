"""FastAPI application factory. The lifespan opens the desk (``open_desk``), the event bus and
the desk service, starts the desk loop, and closes it all on shutdown."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from langchain_core.language_models import BaseChatModel

from tradecast import __version__
from tradecast.agents.persona_card import load_card
from tradecast.api.auth import KeyRing
from tradecast.api.body_limit import install_body_limit
from tradecast.api.deps import ApiContext
from tradecast.api.errors import install_error_handlers
from tradecast.api.ratelimit import RateLimiter
from tradecast.api.routes import desk, ops, streams, threads
from tradecast.api.runs import RunStore
from tradecast.api.schemas import ApiIndex
from tradecast.api.sse import FrameCache
from tradecast.bootstrap import (
    build_desk_models,
    build_desk_store,
    open_desk,
    open_shared_services,
)
from tradecast.desk.metrics import Metrics
from tradecast.desk.publisher import EventPublisher
from tradecast.desk.service import DeskService
from tradecast.graphs.controls import Role
from tradecast.logs import get_logger
from tradecast.memory.base import DecisionMemory
from tradecast.settings import AgentRole, Settings

log = get_logger(__name__)
OVERLAY_DIR = Path(__file__).parent / "overlay"

DESCRIPTION = """
A multi-agent LLM trading desk that runs on local hardware and broadcasts itself.

**Auth**: every route but `/healthz` and `/readyz` needs an API key, sent as
`Authorization: Bearer KEY` (or `X-Api-Key: KEY`; pages that cannot set headers may pass a
viewer key as `?key=` on reads). Roles: `viewer` (streams and reads) < `operator` (chat, desk
control, approvals) < `admin` (risk limits, kill switch). No key: 401; too low a role: 403;
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
    {"name": "chat", "description": "Operator chat: commands and questions."},
    {"name": "threads", "description": "LangGraph-style threads and runs."},
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
) -> FastAPI:
    """The tradecast API for ``settings``. ``keys`` default to the configured ones (or to
    generated ones, logged once); ``models``/``memory`` may be given, e.g. by tests."""
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
        async with _running_desk(settings, keys, models, memory) as ctx:
            app.state.ctx = ctx
            thresholds = _tune_gc()
            log.info(
                "api.started",
                data_dir=str(settings.data_dir),
                version=__version__,
                symbol=settings.desk.symbol,
                mode=ctx.desk.timeline.mode,
                roles=dict(keys.roles()),
            )
            try:
                yield
            finally:
                app.state.ctx = None
                gc.set_threshold(*thresholds)
                gc.unfreeze()
        log.info("api.stopped")

    app = FastAPI(
        title="tradecast",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.ctx = None
    install_error_handlers(app)
    install_body_limit(app, settings.api.max_body_bytes)
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.api.cors_origins),
            allow_methods=["GET", "POST", "PUT"],
            allow_headers=["*"],
        )
    for router in (ops.router, desk.router, streams.router, threads.router):
        app.include_router(router)

    @app.get("/", include_in_schema=False, response_model=ApiIndex)
    async def root() -> dict[str, Any]:
        return {
            "name": "tradecast",
            "version": __version__,
            "docs": "/docs",
            "openapi": "/openapi.json",
            "overlay": "/overlay/?key=VIEWER_KEY",
        }

    if OVERLAY_DIR.is_dir():
        app.mount("/overlay", StaticFiles(directory=OVERLAY_DIR, html=True), name="overlay")
    return app


GC_YOUNG_THRESHOLD = 10_000


def _tune_gc() -> tuple[int, ...]:
    """Keep garbage-collector pauses out of the streams; returns the thresholds to restore.

    What was loaded at start (libraries, models: ~600,000 objects) lives as long as the
    process, and a full collection over it takes ~300 ms here: frozen, the collector skips it.
    Each SSE client adds ~275 long-lived objects, so with 1,000 clients a full collection
    still takes ~150 ms; collecting the young generation every 10,000 allocations instead of
    700 makes those rare (none in a 10 s burst of 200,000 deliveries, see
    docs/PERFORMANCE.md) at the cost of cyclic garbage living a little longer.
    """
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(max(previous[0], GC_YOUNG_THRESHOLD), *previous[1:])
    return previous


@asynccontextmanager
async def _running_desk(
    settings: Settings,
    keys: KeyRing,
    models: Mapping[AgentRole, BaseChatModel] | None,
    memory: DecisionMemory | None,
) -> AsyncIterator[ApiContext]:
    api = settings.api
    metrics = Metrics()
    desk_models = dict(models) if models else build_desk_models(settings)
    card = load_card(settings.desk.persona_card)
    async with AsyncExitStack() as stack:
        shared = await stack.enter_async_context(open_shared_services(settings))
        publisher = EventPublisher(shared.bus, metrics)
        runtime = await stack.enter_async_context(
            open_desk(settings, sink=publisher, models=desk_models, memory=memory)
        )
        store = build_desk_store(settings)
        stack.callback(store.close)
        if shared.health is not None:
            await shared.health.check_now()
            shared.health.start()
            stack.push_async_callback(shared.health.aclose)
        service = DeskService(
            runtime,
            store,
            publisher,
            metrics=metrics,
            persona_name=card.name,
            lease=shared.lease,
            health=shared.health,
        )
        await service.start(autostart=settings.desk.autostart)
        stack.push_async_callback(service.aclose)
        runs = RunStore()
        stack.push_async_callback(runs.aclose)
        yield ApiContext(
            settings=settings,
            keys=keys,
            limiter=RateLimiter(api.control_rate_per_minute, api.control_burst),
            metrics=metrics,
            bus=shared.bus,
            publisher=publisher,
            frames=FrameCache(),
            desk=service,
            runs=runs,
            chat_model=desk_models["persona"],
            card=card,
        )

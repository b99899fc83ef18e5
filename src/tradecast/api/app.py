"""FastAPI application factory; the lifespan builds the run's dependencies once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tradecast import __version__
from tradecast.bootstrap import build_chat_model
from tradecast.logs import get_logger
from tradecast.settings import Settings

log = get_logger(__name__)


def create_app(settings: Settings) -> FastAPI:
    """The tradecast API for ``settings``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        app.state.settings = settings
        app.state.chat_model = build_chat_model(settings, "analyst")
        log.info("api.started", data_dir=str(settings.data_dir), version=__version__)
        yield
        log.info("api.stopped")

    app = FastAPI(
        title="tradecast",
        version=__version__,
        description="A multi-agent LLM trading desk that runs on local hardware.",
        lifespan=lifespan,
    )

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: the dependencies the desk needs were built."""
        checks: dict[str, Any] = {"llm": hasattr(request.app.state, "chat_model")}
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    return app

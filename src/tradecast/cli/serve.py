"""``tradecast serve``: the HTTP API with the desk loop (the main job)."""

from __future__ import annotations

import typer
import uvicorn

from tradecast.api.app import create_app
from tradecast.settings import Settings


def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="bind address (default: TRADECAST_API__HOST)"),
    port: int | None = typer.Option(None, help="port (default: TRADECAST_API__PORT)"),
) -> None:
    """Start the API server on the embedded defaults (Ctrl-C stops it cleanly)."""
    settings: Settings = ctx.obj
    uvicorn.run(
        create_app(settings),
        host=host or settings.api.host,
        port=port or settings.api.port,
        log_config=None,
        access_log=False,
    )

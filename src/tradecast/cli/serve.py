"""``tradecast serve``: the HTTP API with the desk loop (the main job, ``make run``)."""

from __future__ import annotations

import contextlib

import typer
import uvicorn

from tradecast.api.app import create_app, resolve_keys
from tradecast.cli.common import fail, keep_data_private, preflight_or_exit
from tradecast.logs import get_logger
from tradecast.settings import Settings

log = get_logger(__name__)


def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="bind address (default: TRADECAST_API__HOST)"),
    port: int | None = typer.Option(None, help="port (default: TRADECAST_API__PORT)"),
) -> None:
    """Start the API and the desk loop on the embedded defaults (Ctrl-C stops it cleanly).

    Without TRADECAST_API_KEYS, one key per role is generated and logged once.
    """
    settings: Settings = ctx.obj
    keep_data_private(settings)
    preflight_or_exit(settings)
    bind_host = host or settings.api.host
    bind_port = port or settings.api.port
    try:
        keys, generated = resolve_keys(settings)
    except ValueError as exc:
        fail(str(exc), code=2)
    shown_host = "127.0.0.1" if bind_host in ("0.0.0.0", "::", "") else bind_host
    base = f"http://{shown_host}:{bind_port}"
    if generated:
        log.warning(
            "api.generated_keys",
            note="TRADECAST_API_KEYS is not set: these keys were generated for this run only",
            viewer=generated["viewer"],
            operator=generated["operator"],
            admin=generated["admin"],
            overlay=f"{base}/overlay/?key={generated['viewer']}",
            docs=f"{base}/docs",
        )
    else:
        log.info("api.urls", overlay=f"{base}/overlay/?key=<a viewer key>", docs=f"{base}/docs")
    failures: list[BaseException] = []

    def stop_serving(exc: BaseException) -> None:
        failures.append(exc)
        server.should_exit = True

    app = create_app(settings, keys=keys, on_open_failed=stop_serving)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=bind_host,
            port=bind_port,
            log_config=None,
            access_log=False,
            # an idle keep-alive connection is closed after 5 s (uvicorn has no separate limit
            # on reading headers; in production nginx in deploy/ enforces
            # client_header_timeout)
            timeout_keep_alive=5,
            forwarded_allow_ips=settings.api.forwarded_allow_ips,
        )
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it stops (uvicorn re-raises it)
        server.run()
    if failures:
        fail(f"the desk could not open: {type(failures[0]).__name__}: {failures[0]}", code=1)
    if not server.started:
        fail(f"the server could not listen on {bind_host}:{bind_port} (see the log above)", code=3)

"""What every sub-command shares: settings loading, logging, clean error exits."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, NoReturn

import typer

from tradecast.errors import SettingsError
from tradecast.llm.preflight import run_preflight
from tradecast.logs import configure_logging
from tradecast.settings import Settings, load_settings


def cli_context(ctx: typer.Context) -> None:
    """Load settings once and configure logging before any sub-command runs."""
    settings = settings_or_exit()
    configure_logging(settings.log_level, settings.log_format)
    ctx.obj = settings


def settings_or_exit() -> Settings:
    """The settings, or a message naming the bad variable and exit code 2."""
    try:
        return load_settings()
    except SettingsError as exc:
        fail(str(exc), code=2)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` to stderr and exit non-zero."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


PRIVATE_UMASK = 0o077
"""Files the desk writes (journal, store, checkpoints, memory, logs) are the owner's only."""


def keep_data_private(settings: Settings) -> None:
    """Make every file this process creates from now on 0600 (directories 0700), and the data
    dir with it: the journal and the store hold the account and the operators' actions."""
    os.umask(PRIVATE_UMASK)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)


def preflight_or_exit(settings: Settings) -> None:
    """Probe the embedded model in a child process; exit 1 with its message if it crashes.

    Run before a command opens a desk, so a model that dies of a native signal on this CPU
    is reported in one clear message instead of killing the process mid-tick.
    """
    report = run_preflight(settings.llm, settings.data_dir)
    if not report.ok:
        fail(report.error or "the embedded model failed its preflight")


def print_json(payload: Any) -> None:
    """Write ``payload`` as JSON to stdout (Decimals and datetimes as strings)."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")

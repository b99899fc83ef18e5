"""structlog configuration: JSON when not on a TTY, pretty on a TTY; run/thread ids bound.

structlog hands its events to the standard library's logging, whose one handler writes to
whatever ``sys.stderr`` is at the time of writing (so a test runner that swaps stderr, or a
daemon that redirects it, never leaves logging on a closed stream).
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog

LogFormat = Literal["auto", "json", "console"]


class CurrentStderrHandler(logging.StreamHandler[TextIO]):
    """A stream handler that always writes to the current ``sys.stderr``."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        return None


def configure_logging(level: str = "info", fmt: LogFormat = "auto") -> None:
    """Route structlog and stdlib logging to stderr in one format."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    numeric_level = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = CurrentStderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric_level)
    for noisy in ("httpx", "chromadb", "sentence_transformers", "urllib3", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, numeric_level))


def bind_run(run_id: str | None = None, thread_id: str | None = None) -> None:
    """Attach run and thread ids to every log line of the current context."""
    values = {k: v for k, v in {"run_id": run_id, "thread_id": thread_id}.items() if v}
    structlog.contextvars.bind_contextvars(**values)


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A structlog logger named after its module."""
    return structlog.get_logger(name)

"""The desk's graphs for ``langgraph dev`` (``langgraph.json`` at the repository root names
:func:`desk` and :func:`chat`), so LangGraph Studio can draw them and step through them.

Both come from one desk opened from the environment's settings (as ``tradecast serve``
opens it) the first time either is asked for, and kept open for the life of the process.
Runs made there go straight through the graph: the gate and the broker act, but the desk's
journal and replay cursor are not kept. To operate the desk from Studio or Agent Chat UI,
connect them to ``tradecast serve``, which speaks the same protocol (docs/API.md).
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from tradecast.api.app import resolve_keys
from tradecast.api.deps import ApiContext
from tradecast.api.lifespan import running_desk
from tradecast.settings import load_settings

_opened: dict[str, Any] = {}
_lock = asyncio.Lock()


async def _context() -> ApiContext:
    """The desk, opened once (its exit stack is kept so it stays open)."""
    async with _lock:
        if "ctx" not in _opened:
            settings = load_settings()
            # the graphs are for drawing and stepping through: the desk must not trade alone
            desk = settings.desk.model_copy(update={"autostart": False})
            settings = settings.model_copy(update={"desk": desk})
            keys, _ = resolve_keys(settings)
            stack = AsyncExitStack()
            _opened["ctx"] = await stack.enter_async_context(
                running_desk(settings, keys, None, None)
            )
            _opened["stack"] = stack
        ctx: ApiContext = _opened["ctx"]
        return ctx


async def desk(config: Any = None) -> CompiledStateGraph:
    """The desk graph (a run is one tick: input ``{"symbol", "at"}``)."""
    return (await _context()).desk.runtime.runner.graph


async def chat(config: Any = None) -> CompiledStateGraph:
    """The operator chat graph (input ``{"messages": [...]}``)."""
    return (await _context()).chat.graph


async def close() -> None:
    """Close the desk, if it was opened (tests, or a clean stop)."""
    async with _lock:
        stack = _opened.pop("stack", None)
        _opened.pop("ctx", None)
    if stack is not None:
        await stack.aclose()

"""The LangGraph Server protocol, enough of it that LangGraph's SDK, Agent Chat UI and
LangGraph Studio work with the desk as they do with a LangGraph server: ``/info``, the
assistants, threads (state, history) and runs (stream, wait, background, join, cancel,
multitask strategies, resumable streams, interrupts answered with ``command.resume``)."""

from __future__ import annotations

from fastapi import APIRouter

from tradecast.api.protocol import assistants, runs, threads


def protocol_router(prefix: str) -> APIRouter:
    """The protocol's routes under ``prefix`` ('' for the root)."""
    router = APIRouter(prefix=prefix)
    for module in (assistants, threads, runs):
        router.include_router(module.router)
    return router

"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from tradecast.api.auth import Principal
from tradecast.api.deps import ApiContext, get_context, viewer
from tradecast.api.errors import ERROR_RESPONSES
from tradecast.api.lifespan import DeskOpener
from tradecast.api.schemas import Liveness

router = APIRouter(tags=["ops"])


@router.get(
    "/healthz",
    response_model=Liveness,
    responses={503: {"model": Liveness, "description": "the desk failed to open"}},
)
async def healthz(request: Request) -> JSONResponse:
    """Liveness: the process answers, from the moment it starts while the desk opens, and
    fails only when the desk could not open (``error`` says why; no key needed)."""
    opener: DeskOpener | None = getattr(request.app.state, "opener", None)
    error = opener.error if opener is not None else None
    body = Liveness(status="failed" if error else "ok", error=error)
    return JSONResponse(body.model_dump(), status_code=503 if error else 200)


@router.get("/readyz", responses={503: {"description": "not ready (checks say what)"}})
async def readyz(request: Request) -> JSONResponse:
    """Readiness: the desk is open, its loop is alive and the services it shares with other
    replicas (Redis, PostgreSQL) answer; ``problems`` says what is wrong (no key needed)."""
    ctx: ApiContext | None = getattr(request.app.state, "ctx", None)
    checks: dict[str, Any] = {
        "desk": ctx is not None,
        "loop": bool(ctx and ctx.desk.loop_alive),
    }
    problems: dict[str, str] = {}
    if ctx is None:
        problems["desk"] = _not_open(request)
    health = ctx.desk.health if ctx else None
    if health is not None:
        checks.update({name: state["ok"] for name, state in health.report().items()})
        problems.update(health.problems())
    ready = all(checks.values())
    body = {
        "ready": ready,
        "checks": checks,
        "problems": problems,
        "state": ctx.desk.state if ctx else "starting",
        "replica": ctx.desk.lease.owner if ctx else None,
        "leader": bool(ctx and ctx.desk.leader),
    }
    return JSONResponse(body, status_code=200 if ready else 503)


def _not_open(request: Request) -> str:
    opener: DeskOpener | None = getattr(request.app.state, "opener", None)
    if opener is not None and opener.error:
        return f"failed to open: {opener.error}"
    return "opening" if opener is not None and opener.opening else "closed"


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"description": "Prometheus text format", "content": {"text/plain": {}}},
        **ERROR_RESPONSES,
    },
)
async def metrics(
    _: Principal = Depends(viewer), ctx: ApiContext = Depends(get_context)
) -> Response:
    """Prometheus metrics: ticks, decisions by action, LLM calls and tokens, tick latency,
    SSE clients, events published and clients dropped. Viewer."""
    return Response(ctx.metrics.render(), media_type=ctx.metrics.content_type)

"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from tradecast.api.auth import Principal
from tradecast.api.deps import ApiContext, get_context, viewer
from tradecast.api.errors import ERROR_RESPONSES
from tradecast.api.schemas import Liveness

router = APIRouter(tags=["ops"])


@router.get("/healthz", response_model=Liveness)
async def healthz() -> dict[str, str]:
    """Liveness: the process answers (no key needed)."""
    return {"status": "ok"}


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
    health = ctx.desk.health if ctx else None
    if health is not None:
        checks.update({name: state["ok"] for name, state in health.report().items()})
        problems = health.problems()
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

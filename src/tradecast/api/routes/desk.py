"""Desk routes: control (start, stop, tick, approvals, risk limits) and reads (status,
portfolio, positions, orders, fills, decisions, journal)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from tradecast.api.auth import Principal
from tradecast.api.deps import (
    ApiContext,
    admin_control,
    get_context,
    operator,
    operator_control,
    viewer,
)
from tradecast.api.errors import CONTROL_RESPONSES, ERROR_RESPONSES, ApiError
from tradecast.api.schemas import (
    SQL_INT_MAX,
    ApprovalBody,
    ApprovalList,
    DecisionPage,
    DecisionReport,
    FillList,
    JournalPage,
    KillSwitchBody,
    LimitsUpdate,
    OrderList,
    PortfolioView,
    PositionList,
    TickAccepted,
    exposure_json,
    portfolio_json,
    positions_json,
)
from tradecast.desk.status import DeskStatus
from tradecast.domain import OrderStatus, canonical_symbol
from tradecast.errors import BrokerError, DeskConflict, NotFound
from tradecast.graphs.runner import TickResult
from tradecast.settings import RiskLimits

router = APIRouter(prefix="/v1")
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: ERROR_RESPONSES[401] | {"description": "no such item"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: ERROR_RESPONSES[401] | {"description": "the replay has ended"}
}


def _conflict(exc: DeskConflict) -> ApiError:
    return ApiError(409, "conflict", str(exc))


# --- control ----------------------------------------------------------------------------


@router.get("/desk/status", tags=["desk"], response_model=DeskStatus, responses=ERROR_RESPONSES)
async def desk_status(
    _: Principal = Depends(viewer), ctx: ApiContext = Depends(get_context)
) -> dict[str, Any]:
    """The desk loop: running or paused, next tick, last tick, pending approvals, equity."""
    return ctx.desk.status()


@router.post("/desk/start", tags=["desk"], response_model=DeskStatus, responses=CONTROL_RESPONSES)
async def desk_start(
    who: Principal = Depends(operator_control), ctx: ApiContext = Depends(get_context)
) -> dict[str, Any]:
    """Start (or resume) ticking. Operator."""
    return await ctx.desk.resume(who.name)


@router.post("/desk/stop", tags=["desk"], response_model=DeskStatus, responses=CONTROL_RESPONSES)
async def desk_stop(
    who: Principal = Depends(operator_control), ctx: ApiContext = Depends(get_context)
) -> dict[str, Any]:
    """Stop ticking; the loop keeps its place and a tick in progress finishes. Operator."""
    return await ctx.desk.pause(who.name)


@router.post(
    "/desk/tick",
    tags=["desk"],
    response_model=TickResult,
    responses={
        **CONTROL_RESPONSES,
        **CONFLICT,
        202: {
            "model": TickAccepted,
            "description": "accepted (wait=false): the tick runs in the background",
        },
    },
)
async def desk_tick(
    wait: bool = Query(True, description="wait for the tick and return its report"),
    who: Principal = Depends(operator_control),
    ctx: ApiContext = Depends(get_context),
) -> Any:
    """Run one tick now (the next replayed instant, or the latest closed bar live).
    Operator."""
    try:
        if not wait:
            ctx.desk.schedule_tick(who.name)
            return JSONResponse({"accepted": True, "status": ctx.desk.status()}, status_code=202)
        return await ctx.desk.force_tick(who.name)
    except DeskConflict as exc:
        raise _conflict(exc) from None


@router.get("/desk/journal", tags=["desk"], response_model=JournalPage, responses=ERROR_RESPONSES)
async def desk_journal(
    limit: int = Query(50, ge=1, le=500),
    before: int | None = Query(
        None, ge=1, le=SQL_INT_MAX, description="only entries older than this seq"
    ),
    _: Principal = Depends(operator),
    ctx: ApiContext = Depends(get_context),
) -> dict[str, Any]:
    """Control actions, newest first: who did what, when, and the outcome. Operator."""
    items = ctx.desk.store.journal_entries(limit, before)
    return {"items": items, "next": items[-1]["seq"] if len(items) == limit else None}


@router.get("/approvals", tags=["desk"], response_model=ApprovalList, responses=ERROR_RESPONSES)
async def approvals(
    _: Principal = Depends(viewer), ctx: ApiContext = Depends(get_context)
) -> dict[str, Any]:
    """Orders waiting for a human, with what they would do and the gate's notes."""
    items = []
    for decision_id in ctx.desk.status()["pending_approvals"]:
        tick = ctx.desk.store.tick(decision_id)
        state = await ctx.desk.thread_state(tick.thread_id) if tick else None
        items.append(
            {
                "decision_id": decision_id,
                "thread_id": tick.thread_id if tick else None,
                "decision": tick.decision if tick else None,
                "request": state["interrupts"][0]["value"]
                if state and state["interrupts"]
                else None,
            }
        )
    return {"items": items}


@router.post(
    "/approvals/{decision_id}",
    tags=["desk"],
    response_model=TickResult,
    responses={**CONTROL_RESPONSES, **NOT_FOUND},
)
async def decide_approval(
    decision_id: str,
    body: ApprovalBody,
    who: Principal = Depends(operator_control),
    ctx: ApiContext = Depends(get_context),
) -> TickResult:
    """Approve or reject the order waiting under ``decision_id``; returns the tick's report
    (with the fill when approved); 404 when nothing waits under that id. Operator."""
    return await ctx.desk.decide_approval(who.name, decision_id, body.approved)


# --- risk limits ------------------------------------------------------------------------


@router.get("/risk/limits", tags=["risk"], response_model=RiskLimits, responses=ERROR_RESPONSES)
async def get_limits(
    _: Principal = Depends(viewer), ctx: ApiContext = Depends(get_context)
) -> RiskLimits:
    """The hard limits the risk gate enforces now."""
    return ctx.desk.limits()


@router.put("/risk/limits", tags=["risk"], response_model=RiskLimits, responses=CONTROL_RESPONSES)
async def put_limits(
    body: LimitsUpdate,
    confirm: str | None = Query(
        None,
        pattern=r"^[0-9a-f]{8}$",
        description="the token of a change that loosens a limit by more than 2x (from the 409)",
    ),
    who: Principal = Depends(admin_control),
    ctx: ApiContext = Depends(get_context),
) -> RiskLimits:
    """Change some limits (the ones left out stay); validated as a whole, journaled, kept
    across restarts. A change that loosens a limit by more than 2x answers 409
    ``confirmation_required`` with a token: send the request again with ``?confirm=TOKEN``
    (any body) to apply it. Admin."""
    if confirm is not None:
        return await ctx.desk.confirm_limits(who.name, confirm)
    changes = body.model_dump(exclude_none=True)
    if not changes:
        raise ApiError(
            422, "validation_error", 'no limits given; send e.g. {"max_position_pct": "0.05"}'
        )
    try:
        RiskLimits.model_validate({**ctx.desk.limits().model_dump(), **changes})
    except ValidationError as exc:
        fields = [
            {"field": "body." + ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
            for err in exc.errors()
        ]
        raise ApiError(
            422,
            "validation_error",
            "; ".join(f"{f['field']}: {f['message']}" for f in fields),
            fields=fields,
        ) from None
    return await ctx.desk.set_limits(who.name, **changes)


@router.post(
    "/risk/kill-switch", tags=["risk"], response_model=RiskLimits, responses=CONTROL_RESPONSES
)
async def kill_switch(
    body: KillSwitchBody,
    who: Principal = Depends(admin_control),
    ctx: ApiContext = Depends(get_context),
) -> RiskLimits:
    """Turn the kill switch on (the risk gate rejects every new order) or off. Admin."""
    return await ctx.desk.set_limits(who.name, kill_switch=body.on)


# --- reads ------------------------------------------------------------------------------


@router.get(
    "/portfolio", tags=["portfolio"], response_model=PortfolioView, responses=ERROR_RESPONSES
)
async def portfolio(
    _: Principal = Depends(viewer), ctx: ApiContext = Depends(get_context)
) -> dict[str, Any]:
    """Cash, positions, equity and P&L at the latest marks, the desk's symbols, and the
    book's exposure and historical VaR against the portfolio limits."""
    book = ctx.desk.current_broker().portfolio()
    exposure = await ctx.desk.exposure(book)
    return {
        **portfolio_json(book),
        "symbols": list(ctx.desk.config.desk_symbols),
        "exposure": None if exposure is None else exposure_json(exposure, ctx.desk.limits()),
    }


@router.get(
    "/positions", tags=["portfolio"], response_model=PositionList, responses=ERROR_RESPONSES
)
async def positions(
    _: Principal = Depends(viewer), ctx: ApiContext = Depends(get_context)
) -> dict[str, Any]:
    """Open positions with their mark, market value and unrealised P&L."""
    return {"items": positions_json(ctx.desk.current_broker().portfolio())}


@router.get("/orders", tags=["portfolio"], response_model=OrderList, responses=ERROR_RESPONSES)
async def orders(
    status: OrderStatus | None = Query(None, description="only orders in this status"),
    symbol: str | None = Query(None, max_length=40, description="only this symbol"),
    limit: int = Query(100, ge=1, le=1000),
    _: Principal = Depends(viewer),
    ctx: ApiContext = Depends(get_context),
) -> dict[str, Any]:
    """Orders at the broker, newest first."""
    try:
        found = ctx.desk.current_broker().orders(status=status, symbol=symbol)
    except BrokerError as exc:  # a symbol that is not BASE/QUOTE
        raise ApiError(422, "validation_error", f"symbol: {exc}") from None
    return {"items": [o.model_dump(mode="json") for o in reversed(found[-limit:])]}


@router.get("/fills", tags=["portfolio"], response_model=FillList, responses=ERROR_RESPONSES)
async def fills(
    limit: int = Query(100, ge=1, le=1000),
    _: Principal = Depends(viewer),
    ctx: ApiContext = Depends(get_context),
) -> dict[str, Any]:
    """Fills, newest first."""
    found = ctx.desk.current_broker().fills()
    return {"items": [f.model_dump(mode="json") for f in reversed(found[-limit:])]}


@router.get(
    "/decisions", tags=["decisions"], response_model=DecisionPage, responses=ERROR_RESPONSES
)
async def decisions(
    limit: int = Query(20, ge=1, le=200),
    before: str | None = Query(
        None, max_length=120, description="the `next` cursor of the previous page"
    ),
    symbol: str | None = Query(None, max_length=40),
    action: Literal["BUY", "SELL", "HOLD"] | None = Query(None),
    _: Principal = Depends(viewer),
    ctx: ApiContext = Depends(get_context),
) -> dict[str, Any]:
    """Tick reports (decision, risk verdict, order, fills, persona, LLM use), newest first;
    ``next`` pages on. ``symbol`` ('eth/busd' is ETH/BUSD) keeps one symbol's: a portfolio
    desk reports each symbol of a tick as a decision of its own."""
    try:
        wanted = None if symbol is None else canonical_symbol(symbol)
    except ValueError as exc:
        raise ApiError(422, "validation_error", f"symbol: {exc}") from None
    try:
        items, cursor = ctx.desk.store.decisions(limit, before, wanted, action)
    except NotFound as exc:  # an unknown cursor is invalid input, not a missing resource
        raise ApiError(422, "validation_error", f"before: {exc}") from None
    return {"items": items, "next": cursor}


@router.get(
    "/decisions/{decision_id}",
    tags=["decisions"],
    response_model=DecisionReport,
    responses={**ERROR_RESPONSES, **NOT_FOUND},
)
async def decision(
    decision_id: str, _: Principal = Depends(viewer), ctx: ApiContext = Depends(get_context)
) -> dict[str, Any]:
    """One tick's report."""
    tick = ctx.desk.store.tick(decision_id)
    if tick is None:
        raise ApiError(404, "not_found", f"no decision {decision_id!r}")
    return {"id": decision_id, **tick.model_dump(mode="json")}

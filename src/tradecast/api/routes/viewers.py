"""Viewers' chat by hand: the local chat source, and what the audience has done."""

from __future__ import annotations

import itertools
from typing import Any

from fastapi import APIRouter, Depends

from tradecast.api.auth import Principal
from tradecast.api.deps import ApiContext, get_context, operator, operator_control
from tradecast.api.errors import CONTROL_RESPONSES, ERROR_RESPONSES, ApiError
from tradecast.api.schemas import AudienceView, ViewerChatBody, ViewerChatVerdict
from tradecast.desk.audience import Audience
from tradecast.domain.base import utc_now
from tradecast.domain.viewers import ViewerMessage

router = APIRouter(prefix="/v1/viewers", tags=["viewers"])
_local_ids = itertools.count(1)


def _audience(ctx: ApiContext) -> Audience:
    if ctx.audience is None:
        raise ApiError(503, "not_ready", "viewers' chat is not running")
    return ctx.audience


@router.post(
    "/chat", status_code=202, response_model=ViewerChatVerdict, responses=CONTROL_RESPONSES
)
async def viewer_chat(
    body: ViewerChatBody,
    _: Principal = Depends(operator_control),
    ctx: ApiContext = Depends(get_context),
) -> dict[str, Any]:
    """Hand in a message as if a viewer had written it in chat (the local source: tests,
    `tradecast chat-sim`, streams without a platform account). It goes through the same
    moderation as Twitch and YouTube messages; the verdict says what became of it, and an
    admitted question is answered on the persona stream. Operator."""
    audience = _audience(ctx)
    message = ViewerMessage(
        id=f"local-{next(_local_ids)}",
        platform="local",
        channel="local",
        viewer_id=body.viewer_id or body.display_name.lower(),
        display_name=body.display_name,
        text=body.text,
        is_mod=body.is_mod,
        is_subscriber=body.is_subscriber,
        is_broadcaster=body.is_broadcaster,
        received_at=utc_now(),
    )
    verdict, reason = audience.receive(message)
    return {"id": message.id, "verdict": verdict, "reason": reason}


@router.get("", response_model=AudienceView, responses=ERROR_RESPONSES)
async def viewers_view(
    _: Principal = Depends(operator), ctx: ApiContext = Depends(get_context)
) -> dict[str, Any]:
    """What the audience has done since start: messages received, rejected (by reason),
    mods' commands, questions queued, skipped (by reason), answered and refused; the
    questions waiting, the muted viewers and whether a mod paused the answers. Operator."""
    audience = _audience(ctx)
    return {
        **audience.stats.as_dict(),
        "waiting": len(audience.queue),
        "muted": sorted(audience.gate.muted),
        "paused": audience.gate.paused,
        "sources": ["local", *(source.name for source in audience.sources)],
    }

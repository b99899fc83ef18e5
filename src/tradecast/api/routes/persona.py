"""The persona's face and voice for the overlay: who it is, its sprites, its spoken lines."""

from __future__ import annotations

import pathlib
import re
from typing import Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import FileResponse

from tradecast.api.auth import Principal
from tradecast.api.deps import ApiContext, get_context, viewer
from tradecast.api.errors import ERROR_RESPONSES
from tradecast.api.schemas import PersonaInfo
from tradecast.errors import NotFound
from tradecast.voice.store import SPEECH_ID

router = APIRouter(prefix="/v1", tags=["persona"])
SPRITE_NAME = r"^[a-z][a-z0-9_]{0,40}\.png$"
# a year of immutable lines: a speech id names one recording forever
SPEECH_CACHE = "private, max-age=31536000, immutable"


@router.get("/persona", response_model=PersonaInfo, responses=ERROR_RESPONSES)
async def persona(
    _: Principal = Depends(viewer), ctx: ApiContext = Depends(get_context)
) -> dict[str, Any]:
    """Who the persona is, whether it speaks (and with which voice), and the sprites of its
    avatar when the card brings its own (else the overlay draws the built-in one). Viewer."""
    card = ctx.card
    sprites = card.avatar.sprites
    return {
        "name": card.name,
        "emotions": list(card.emotions),
        "voice": {
            "enabled": ctx.speech is not None,
            "backend": ctx.settings.voice.backend.value,
            "name": ctx.voice_name,
        },
        "avatar": {"sprites": _sprite_names(sprites) if sprites else None},
    }


def _sprite_names(folder: pathlib.Path) -> list[str]:
    """The PNGs of ``folder`` that the sprite route serves (names it would refuse are left out)."""
    return sorted(p.name for p in folder.glob("*.png") if re.match(SPRITE_NAME, p.name))


@router.get(
    "/persona/sprites/{file}",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}, **ERROR_RESPONSES},
)
async def sprite(
    file: str = Path(pattern=SPRITE_NAME, max_length=48),
    _: Principal = Depends(viewer),
    ctx: ApiContext = Depends(get_context),
) -> FileResponse:
    """One PNG of the card's sprite folder (PNGtuber style: idle, blink, talk, per emotion).
    Viewer."""
    folder = ctx.card.avatar.sprites
    path = folder / file if folder else None
    if path is None or not path.is_file():
        raise NotFound(f"no sprite {file!r} (the card's avatar.sprites folder has none)")
    return FileResponse(path, media_type="image/png")


@router.get(
    "/speech/{speech_id}",
    response_class=FileResponse,
    responses={200: {"content": {"audio/wav": {}}}, **ERROR_RESPONSES},
)
async def speech(
    speech_id: str = Path(pattern=SPEECH_ID.pattern, max_length=24),
    _: Principal = Depends(viewer),
    ctx: ApiContext = Depends(get_context),
) -> FileResponse:
    """One spoken line as WAV (16-bit PCM, mono), announced by a ``speech`` event on the
    persona stream; the newest ``TRADECAST_VOICE__KEEP_FILES`` are kept. Viewer."""
    if ctx.speech is None:
        raise NotFound("the persona's voice is off (TRADECAST_VOICE__BACKEND=off)")
    path = ctx.speech.path(speech_id)
    return FileResponse(path, media_type="audio/wav", headers={"Cache-Control": SPEECH_CACHE})

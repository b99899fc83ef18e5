"""A message a viewer wrote in a livestream chat (Twitch, YouTube, or the local test source).

Every string is bounded: the sources clip what a platform sends to these lengths, so a
hostile or buggy server can never make a message fail validation or grow without end.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from tradecast.domain.base import DomainModel, UtcDatetime

Platform = Literal["twitch", "youtube", "local"]

MAX_TEXT_CHARS = 500
"""Twitch's own limit for one chat message (YouTube's is 200)."""
MAX_ID_CHARS = 128
MAX_CHANNEL_CHARS = 200
"""Twitch logins are at most 25 characters; YouTube live chat ids are longer."""
MAX_NAME_CHARS = 100
MAX_BADGES = 32
MAX_BADGE_CHARS = 64

Badge = Annotated[str, StringConstraints(min_length=1, max_length=MAX_BADGE_CHARS)]
"""``name/version`` as Twitch writes it: ``moderator/1``, ``subscriber/12``."""


class ViewerMessage(DomainModel):
    """One chat message, as received; nothing in it has been moderated yet."""

    id: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="the platform's id")
    platform: Platform
    channel: str = Field(min_length=1, max_length=MAX_CHANNEL_CHARS)
    viewer_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    display_name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    text: str = Field(max_length=MAX_TEXT_CHARS)
    badges: tuple[Badge, ...] = Field(default=(), max_length=MAX_BADGES)
    is_mod: bool = False
    is_subscriber: bool = False
    is_broadcaster: bool = False
    received_at: UtcDatetime


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters (what the parsers do instead of failing)."""
    return text if len(text) <= limit else text[:limit]

"""Events that flow over the desk's streams (SSE channels ``desk``, ``persona``, ``market``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tradecast.domain.base import DomainModel, UtcDatetime, utc_now

Channel = Literal["desk", "persona", "market"]
CHANNELS: tuple[Channel, ...] = ("desk", "persona", "market")

DeskEventType = Literal[
    "decision",
    "order",
    "fill",
    "pnl",
    "risk_rejection",
    "approval_pending",
    "status",
    "recorded",
    "portfolio",
]
PersonaEventType = Literal["token", "sentence", "emotion", "blocked", "speech", "speech_skipped"]
MarketEventType = Literal["tick", "candle"]


class StreamEvent(DomainModel):
    """One event on a channel. ``id`` is assigned by the bus and only ever increases."""

    channel: Channel
    event: str = Field(min_length=1, max_length=64)
    data: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None
    timestamp: UtcDatetime = Field(default_factory=utc_now)
    run_id: str | None = None
    thread_id: str | None = None

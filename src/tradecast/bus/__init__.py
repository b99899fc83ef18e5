"""Event streams: the ``EventBus`` interface and its implementations (in-process now)."""

from tradecast.bus.base import (
    BEGINNING,
    EventBus,
    EventId,
    Resync,
    Subscription,
    format_event_id,
    parse_event_id,
)
from tradecast.bus.memory import InProcessEventBus
from tradecast.errors import SubscriberDropped

__all__ = [
    "BEGINNING",
    "EventBus",
    "EventId",
    "InProcessEventBus",
    "Resync",
    "SubscriberDropped",
    "Subscription",
    "format_event_id",
    "parse_event_id",
]

"""Livestream chat sources: viewers' messages from Twitch and YouTube behind one Protocol."""

from tradecast.viewers.base import Backoff, ChatSource, MessageBuffer, RecentIds, SourceStats

__all__ = ["Backoff", "ChatSource", "MessageBuffer", "RecentIds", "SourceStats"]

"""RSS and Atom feeds, polled (see :mod:`tradecast.news.polling`) and read by feedparser.

An entry's id is its ``guid`` (RSS) or ``id`` (Atom), else its link, else a digest of its
source, link and title. Its time is ``published`` (``pubDate``), else ``updated``, which
feedparser gives in UTC; an entry with neither is dated when it was fetched (counted by
``undated()``). Its source is the feed's title, else the feed's host.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import feedparser
import httpx

from tradecast.errors import NewsError
from tradecast.news.polling import (
    Endpoint,
    FeedFailure,
    PolledNewsSource,
    Record,
    endpoint_label,
    live_item,
    polling_options,
)
from tradecast.settings import NewsConfig

ACCEPT = (
    "application/rss+xml, application/atom+xml;q=0.9, application/xml;q=0.8, "
    "text/xml;q=0.8, */*;q=0.5"
)
MAX_NAME_CHARS = 200


class RssNewsSource(PolledNewsSource):
    """Items from RSS 2.0 and Atom feeds.

    Args:
        feeds: the feeds' URLs (http or https; the same URL twice is polled once).
        options: :class:`~tradecast.news.polling.PolledNewsSource` arguments
            (``poll_interval_s``, ``max_backoff_s``, ``timeout_s``, ``now``, ``clock``, ...).

    Raises:
        NewsError: no feed is given, or one is not an http(s) URL.
    """

    def __init__(self, feeds: Sequence[str], **options: Any) -> None:
        urls = list(dict.fromkeys(url.strip() for url in feeds if url.strip()))
        if not urls:
            raise NewsError("no RSS/Atom feed to poll: set TRADECAST_NEWS__FEEDS")
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise NewsError(
                    f"news feed {endpoint_label(url)} is not an http(s) URL "
                    "(check TRADECAST_NEWS__FEEDS)"
                )
        hosts = dict.fromkeys(urlsplit(url).hostname or "" for url in urls)
        name = "rss:" + ",".join(hosts)
        super().__init__(
            name if len(name) <= MAX_NAME_CHARS else f"rss:{len(urls)} feeds",
            [Endpoint(url, endpoint_label(url)) for url in urls],
            headers={"Accept": ACCEPT},
            **options,
        )

    @classmethod
    def from_config(cls, config: NewsConfig, **options: Any) -> RssNewsSource:
        """The feeds ``TRADECAST_NEWS__FEEDS`` lists, polled as ``TRADECAST_NEWS__*`` says
        (``options``: more constructor arguments, such as ``transport``).

        Raises:
            NewsError: no feed is set, or one is not an http(s) URL.
        """
        return cls(config.feeds, **polling_options(config), **options)

    def _parse(
        self, endpoint: Endpoint, body: bytes, headers: httpx.Headers, fetched_at: datetime
    ) -> Iterable[Record]:
        parsed = feedparser.parse(
            body,
            response_headers={
                "content-type": headers.get("content-type", "application/xml"),
                # Relative links resolve against the feed's URL without its query (which may
                # hold a key).
                "content-location": endpoint.label,
            },
        )
        if not parsed.get("version") and not parsed.get("entries"):
            problem = parsed.get("bozo_exception")
            raise FeedFailure(f"not an RSS or Atom feed ({type(problem).__name__})")
        feed = parsed.get("feed") or {}
        source = _text(feed.get("title")) or urlsplit(endpoint.url).hostname or "rss"
        return [_entry(entry, source, fetched_at) for entry in parsed.get("entries") or []]


def _entry(entry: Any, source: str, fetched_at: datetime) -> Record:
    link = _text(entry.get("link"))
    return live_item(
        fetched_at,
        published=_epoch(entry.get("published_parsed") or entry.get("updated_parsed")),
        title=entry.get("title"),
        source=source,
        summary=entry.get("summary") or "",
        url=link,
        identifier=_text(entry.get("id")) or link or None,
    )


def _epoch(moment: Any) -> int | None:
    """feedparser's UTC ``struct_time`` as seconds since the epoch (None: no date)."""
    if moment is None:
        return None
    try:
        return calendar.timegm(moment)
    except (TypeError, ValueError, OverflowError):
        return None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""

"""What every news source provides, and the record checks they share.

A source only collects: a replay file, RSS/Atom feeds, a news API. It never decides what the
desk may read at an instant; :class:`~tradecast.news.view.NewsView` does, from each item's
``published_at`` (and ``first_seen_at``) plus the ingestion delay.
"""

from __future__ import annotations

import bisect
import hashlib
import html
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import ValidationError

from tradecast.domain.news import (
    MAX_ASSET_CHARS,
    MAX_ID_CHARS,
    MAX_SOURCE_CHARS,
    MAX_SUMMARY_CHARS,
    MAX_SYMBOLS,
    MAX_TITLE_CHARS,
    MAX_URL_CHARS,
    NewsItem,
)

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
"""A publication time outside these is not trusted (a typo, or milliseconds read as seconds)."""


class NewsSource(Protocol):
    """News items from one place (a file, a set of feeds, an API)."""

    @property
    def name(self) -> str:
        """What the source is, for logs and reports (never a secret)."""
        ...

    async def items(self, since: datetime, until: datetime) -> list[NewsItem]:
        """Every item published from ``since`` to ``until`` (both included), oldest first.

        A live source first polls whatever is due, within its timeout; it never raises for a
        feed that is down (it backs off and answers from what it already has).

        Args:
            since: the earliest publication time wanted (timezone-aware).
            until: the latest publication time wanted (timezone-aware).

        Returns:
            The items, oldest first; items left out are counted in :meth:`dropped`.
        """
        ...

    def dropped(self) -> Mapping[str, int]:
        """How many records were left out so far, by reason (``no_timestamp``, ...)."""
        ...

    async def aclose(self) -> None:
        """Release connections. Idempotent."""
        ...


class PublishedIndex:
    """Items by publication time (then id), for the window queries every source answers."""

    def __init__(self, items: Iterable[NewsItem]) -> None:
        self._items = sorted(items, key=lambda i: (i.published_at, i.id))
        self._times = [i.published_at for i in self._items]

    def __len__(self) -> int:
        return len(self._items)

    def between(self, since: datetime, until: datetime) -> list[NewsItem]:
        """The items published from ``since`` to ``until`` (both included), oldest first."""
        first = bisect.bisect_left(self._times, since)
        return self._items[first : bisect.bisect_right(self._times, until)]


class DropCount:
    """Records left out, by reason."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def add(self, reason: str) -> None:
        """Count one record left out for ``reason``."""
        self._counts[reason] += 1

    def counts(self) -> dict[str, int]:
        """The counts, by reason."""
        return dict(self._counts)


def parse_published(value: Any) -> datetime | str:
    """A publication time as an aware UTC datetime, or why it cannot be trusted.

    Accepted: ISO-8601 text with a zone (``Z`` or an offset), or a number of seconds since the
    epoch (JSON number, or digits in a CSV). A time with no zone is refused: it could be any.

    Returns:
        The instant, or one of ``no_timestamp``, ``bad_timestamp``, ``no_timezone``,
        ``implausible_timestamp``.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return "no_timestamp"
    if isinstance(value, bool):
        return "bad_timestamp"
    moment: datetime
    if isinstance(value, int | float) or (
        isinstance(value, str) and re.fullmatch(r"\d{1,12}(\.\d+)?", value.strip())
    ):
        try:
            moment = datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return "implausible_timestamp"
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("z", "Z"))
        except ValueError:
            return "bad_timestamp"
        if moment.tzinfo is None:
            return "no_timezone"
        try:
            moment = moment.astimezone(UTC)
        except (OverflowError, ValueError):  # an offset past the calendar's ends
            return "implausible_timestamp"
    else:
        return "bad_timestamp"
    if not EARLIEST <= moment < LATEST:
        return "implausible_timestamp"
    return moment


_TAG = re.compile(r"<[^>]{0,2000}>")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SPACE = re.compile(r"\s+")


def plain_text(text: Any, limit: int) -> str:
    """``text`` without HTML tags or entities, control characters or lone surrogates, spaces
    collapsed, cut to ``limit`` characters."""
    if not isinstance(text, str):
        return ""
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become "?"
    unescaped = html.unescape(_TAG.sub(" ", text))
    cleaned = _SPACE.sub(" ", _CONTROL.sub(" ", unescaped)).strip()
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1].rstrip() + "…"


_TRACKING = re.compile(r"^(utm_|mtm_|fbclid$|gclid$|ref$|src$)", re.IGNORECASE)


def canonical_url(url: str) -> str:
    """``url`` without scheme, ``www.``, fragment, trailing slash and tracking parameters: two
    feeds linking one article with different campaign tags give the same text."""
    if not url:
        return ""
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # not a URL after all (an unclosed "[", a bad port): compare the text
        return url.strip().lower()
    host = parts.netloc.lower().removeprefix("www.")
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query) if not _TRACKING.match(k)))
    return urlunsplit(("", host, parts.path.rstrip("/"), query, ""))


def item_id(source: str, url: str, title: str) -> str:
    """A stable id for a record that has none: a digest of where it came from and what it
    says."""
    digest = hashlib.sha256(f"{source}\n{canonical_url(url)}\n{title}".encode()).hexdigest()
    return f"news-{digest[:24]}"


def parse_assets(value: Any) -> tuple[str, ...]:
    """Base assets as upper-case tickers from a list or a ``BTC;ETH`` / ``BTC,ETH`` text."""
    if isinstance(value, str):
        names = re.split(r"[;,\s]+", value)
    elif isinstance(value, list | tuple):
        names = [str(v) for v in value]
    else:
        return ()
    assets: list[str] = []
    for name in names:
        asset = name.strip().upper().partition("/")[0][:MAX_ASSET_CHARS]
        if asset and asset.isalnum() and asset not in assets:
            assets.append(asset)
    return tuple(assets[:MAX_SYMBOLS])


def news_item(
    *,
    published: Any,
    title: Any,
    source: Any,
    summary: Any = "",
    url: Any = "",
    symbols: Any = (),
    identifier: Any = None,
    first_seen: Any = None,
) -> NewsItem | str:
    """A :class:`NewsItem` from loosely typed fields (a file row, a feed entry, an API post),
    texts cleaned and clipped; or why the record was left out (``no_title``, a timestamp
    reason from :func:`parse_published`)."""
    moment = parse_published(published)
    if isinstance(moment, str):
        return moment
    seen: datetime | None = None
    if first_seen is not None and first_seen != "":
        parsed_seen = parse_published(first_seen)
        if isinstance(parsed_seen, str):
            return f"first_seen_{parsed_seen}"
        seen = parsed_seen
    clean_title = plain_text(title, MAX_TITLE_CHARS)
    if not clean_title:
        return "no_title"
    clean_source = plain_text(source, MAX_SOURCE_CHARS) or "unknown"
    link = plain_text(url, MAX_URL_CHARS + 1)
    link = link if len(link) <= MAX_URL_CHARS and " " not in link else ""
    given = plain_text(str(identifier), MAX_ID_CHARS) if identifier not in (None, "") else ""
    try:
        return NewsItem(
            id=given or item_id(clean_source, link, clean_title),
            published_at=moment,
            title=clean_title,
            summary=plain_text(summary, MAX_SUMMARY_CHARS),
            source=clean_source,
            url=link,
            symbols=parse_assets(symbols),
            first_seen_at=seen,
        )
    except ValidationError:  # whatever else a hostile record holds is that record's problem
        return "invalid_record"

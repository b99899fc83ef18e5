"""What every news source that polls HTTP endpoints shares: scheduling, conditional GETs,
backoff, a size cap on bodies, and the items kept between polls.

Each endpoint is polled at most once per ``poll_interval_s``, only when :meth:`items` is called
(no task of its own: a desk that stops asking stops polling). An answer is handled so:

* 200: the body is parsed; its ``ETag`` and ``Last-Modified`` are sent back next time
  (``If-None-Match`` / ``If-Modified-Since``), so an unchanged feed costs a 304;
* 304: nothing new;
* 429 or 503: wait what ``Retry-After`` says (seconds or an HTTP date), at least
  ``poll_interval_s`` and at most ``max_backoff_s``;
* 410: the endpoint is gone; it is never polled again;
* any other status, a connection error, a timeout, a body over the size cap or one that does
  not parse: wait ``min(max_backoff_s, poll_interval_s * 2**failures)`` (failures in a row,
  this one included).

Failures are logged once per outage (and once when the endpoint answers again), never raised:
the caller gets what the source already holds. Logs name an endpoint by its host and path only,
and every error text is scrubbed of the source's secrets.

An entry with no usable publication time is kept with its fetch time as ``published_at`` (a
live feed's entry existed when it was fetched, so the desk cannot read it too early) and
counted by :meth:`PolledNewsSource.undated`; it is not in :meth:`PolledNewsSource.dropped`,
which counts only records left out.
"""

from __future__ import annotations

import abc
import asyncio
import heapq
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypedDict
from urllib.parse import urlsplit

import httpx

from tradecast import __version__
from tradecast.domain.base import utc_now
from tradecast.domain.news import NewsItem
from tradecast.logs import get_logger
from tradecast.news.base import DropCount, PublishedIndex, news_item
from tradecast.settings import NewsConfig

log = get_logger(__name__)

USER_AGENT = f"tradecast/{__version__} (news reader)"
MAX_BODY_BYTES = 5 * 1024 * 1024
"""A larger answer is refused (read streamed, so it is never held whole)."""
MAX_ITEMS = 10_000
"""Items kept per source; past it the oldest published are forgotten."""
MAX_ERROR_CHARS = 200
RETRY_AFTER_STATUSES = frozenset({429, 503})


class PollingOptions(TypedDict):
    """The :class:`PolledNewsSource` arguments the settings set."""

    poll_interval_s: float
    max_backoff_s: float
    timeout_s: float


def polling_options(config: NewsConfig) -> PollingOptions:
    """The :class:`PolledNewsSource` arguments ``TRADECAST_NEWS__*`` sets."""
    return PollingOptions(
        poll_interval_s=config.poll_interval_s,
        max_backoff_s=config.max_backoff_s,
        timeout_s=config.timeout_s,
    )


UNDATED_REASONS = frozenset({"no_timestamp", "bad_timestamp", "no_timezone"})
"""Why a live entry's own date is unusable and its fetch time is used instead (an implausible
date, such as 1970, is a claim that it is old: that entry is left out)."""

Now = Callable[[], datetime]
Clock = Callable[[], float]


@dataclass(frozen=True)
class Undated:
    """An item whose entry had no usable date: ``published_at`` is its fetch time."""

    item: NewsItem


Record = NewsItem | Undated | str
"""What a parser makes of one entry: an item, an undated item, or why it was left out."""


def live_item(fetched_at: datetime, *, published: Any, **fields: Any) -> Record:
    """:func:`~tradecast.news.base.news_item` for an entry fetched at ``fetched_at`` (its
    ``first_seen_at``); an entry without a usable date is dated ``fetched_at``.

    Args:
        fetched_at: when the answer holding the entry arrived (aware).
        published: the entry's publication time, as ``news_item`` takes it.
        fields: the other ``news_item`` fields (title, source, summary, url, ...).

    Returns:
        The item, :class:`Undated` around it, or the reason it was left out.
    """
    seen = fetched_at.isoformat()
    record = news_item(published=published, first_seen=seen, **fields)
    if isinstance(record, str) and record in UNDATED_REASONS:
        dated = news_item(published=seen, first_seen=seen, **fields)
        return Undated(dated) if isinstance(dated, NewsItem) else dated
    return record


class FeedFailure(Exception):
    """A poll that got nothing usable (its message is logged, so it never holds a secret)."""


@dataclass
class Endpoint:
    """One URL a source polls, and what it remembers between polls.

    ``url`` may hold a secret (an API key in the query); ``label`` never does.
    """

    url: str
    label: str
    etag: str | None = None
    last_modified: str | None = None
    next_poll_at: float = -math.inf
    failures: int = 0
    gone: bool = False
    polls: int = 0
    """Requests sent (or attempted: a refused connection counts)."""


@dataclass(frozen=True)
class EndpointStatus:
    """A snapshot of one endpoint, for reports and tests."""

    label: str
    polls: int
    failures: int
    gone: bool
    next_poll_in_s: float
    etag: str | None


def endpoint_label(url: str) -> str:
    """``url`` as logs may show it: scheme, host and path, without credentials or query."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "invalid-url"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}" if host else "invalid-url"


class _Store:
    """The items a source holds, each id once, at most ``limit`` of them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: dict[str, NewsItem] = {}
        # Items never leave but by eviction, so a heap finds the oldest in log time.
        self._by_age: list[tuple[datetime, str]] = []
        self._forgotten: OrderedDict[str, None] = OrderedDict()
        self._index: PublishedIndex | None = None

    def add(self, item: NewsItem) -> bool:
        """Keep ``item`` unless its id is known (kept or forgotten); whether it was new."""
        if item.id in self.items or item.id in self._forgotten:
            return False
        self.items[item.id] = item
        heapq.heappush(self._by_age, (item.published_at, item.id))
        self._index = None
        if len(self.items) > self.limit:
            _, oldest = heapq.heappop(self._by_age)
            del self.items[oldest]
            # Remember what was forgotten, so the next poll of a long feed does not bring it
            # back as new (with a later first_seen_at).
            self._forgotten[oldest] = None
            if len(self._forgotten) > self.limit:
                self._forgotten.popitem(last=False)
        return True

    def between(self, since: datetime, until: datetime) -> list[NewsItem]:
        if self._index is None:  # rebuilt only after new items arrived
            self._index = PublishedIndex(self.items.values())
        return self._index.between(since, until)


class PolledNewsSource(abc.ABC):
    """A :class:`~tradecast.news.base.NewsSource` over HTTP endpoints polled when read.

    Subclasses write :meth:`_parse` (a body to records) and may add request headers.

    Args:
        name: what the source is, for logs and reports (never a secret).
        endpoints: the endpoints to poll.
        poll_interval_s: the least time between two requests to one endpoint.
        max_backoff_s: the longest wait after failures.
        timeout_s: one request, body included, at most.
        max_items: items kept; past it the oldest published are forgotten.
        max_body_bytes: a larger answer is a failure.
        secrets: texts scrubbed from every error message (API keys).
        headers: sent with every request (a User-Agent naming tradecast is always sent).
        transport: an httpx transport (tests); default httpx's own.
        now: the wall clock (``first_seen_at``, HTTP dates); clock: monotonic seconds
            (scheduling). Tests inject both, so nothing sleeps.
    """

    def __init__(
        self,
        name: str,
        endpoints: Sequence[Endpoint],
        *,
        poll_interval_s: float = 300.0,
        max_backoff_s: float = 3600.0,
        timeout_s: float = 5.0,
        max_items: int = MAX_ITEMS,
        max_body_bytes: int = MAX_BODY_BYTES,
        secrets: Iterable[str] = (),
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        now: Now = utc_now,
        clock: Clock = time.monotonic,
    ) -> None:
        if poll_interval_s <= 0 or max_backoff_s <= 0 or timeout_s <= 0:
            raise ValueError("poll_interval_s, max_backoff_s and timeout_s must be positive")
        if max_items < 1 or max_body_bytes < 1:
            raise ValueError("max_items and max_body_bytes must be at least 1")
        self._name = name
        self._endpoints = list(endpoints)
        self.poll_interval_s = poll_interval_s
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self.max_body_bytes = max_body_bytes
        self._secrets = tuple(s for s in secrets if s)
        self._headers = {"User-Agent": USER_AGENT, **(headers or {})}
        self._transport = transport
        self._now = now
        self._clock = clock
        self._store = _Store(max_items)
        self._dropped = DropCount()
        self._undated = 0
        self._client: httpx.AsyncClient | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def name(self) -> str:
        return self._name

    def __len__(self) -> int:
        return len(self._store.items)

    async def items(self, since: datetime, until: datetime) -> list[NewsItem]:
        """Poll the endpoints that are due, then every item held published from ``since`` to
        ``until``, oldest first (see :class:`~tradecast.news.base.NewsSource`)."""
        await self.poll()
        return self._store.between(since, until)

    def dropped(self) -> Mapping[str, int]:
        return self._dropped.counts()

    def undated(self) -> int:
        """Items kept with their fetch time as ``published_at`` (their entry had no usable
        date); each counted once, when first fetched."""
        return self._undated

    def endpoints(self) -> list[EndpointStatus]:
        """Where each endpoint stands (requests, failures in a row, gone, next poll)."""
        moment = self._clock()
        return [
            EndpointStatus(
                e.label, e.polls, e.failures, e.gone, max(0.0, e.next_poll_at - moment), e.etag
            )
            for e in self._endpoints
        ]

    async def poll(self) -> None:
        """Poll every endpoint that is due, concurrently; never raises for a failed feed."""
        if self._closed:
            return
        # One poll at a time: a second reader waits for the first poll and finds nothing due,
        # rather than sending the same requests again.
        async with self._lock:
            moment = self._clock()
            due = [e for e in self._endpoints if not e.gone and moment >= e.next_poll_at]
            if due:
                await asyncio.gather(*(self._poll_one(e, moment) for e in due))

    async def aclose(self) -> None:
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    @abc.abstractmethod
    def _parse(
        self, endpoint: Endpoint, body: bytes, headers: httpx.Headers, fetched_at: datetime
    ) -> Iterable[Record]:
        """The entries of one 200 answer (:func:`live_item` makes each).

        Args:
            endpoint: the endpoint that answered.
            body: the whole body (at most ``max_body_bytes``).
            headers: the answer's headers.
            fetched_at: when the answer arrived (wall clock): every new item's
                ``first_seen_at``.

        Raises:
            FeedFailure: the body is not what the endpoint serves (any other exception is
                taken as one too: a feed never breaks the caller).
        """

    async def _poll_one(self, endpoint: Endpoint, started: float) -> None:
        endpoint.polls += 1
        try:
            response, body = await self._fetch(endpoint)
        except FeedFailure as exc:
            self._failed(endpoint, started, str(exc))
            return
        # Seen when the answer arrived, not when asked: never earlier than the truth.
        fetched_at = self._now()
        status = response.status_code
        if status == 304:
            self._answered(endpoint, started)
        elif status == 200:
            try:
                # feedparser takes a second or more on a large feed: off the event loop
                records = await asyncio.to_thread(
                    lambda: list(self._parse(endpoint, body, response.headers, fetched_at))
                )
            except Exception as exc:  # whatever a parser trips on is that feed's failure
                self._failed(endpoint, started, f"unreadable body: {self._scrub(str(exc))}")
                return
            endpoint.etag = response.headers.get("etag")
            endpoint.last_modified = response.headers.get("last-modified")
            self._keep(endpoint, records)
            self._answered(endpoint, started)
        elif status == 410:
            endpoint.gone = True
            log.warning("news.feed_gone", source=self._name, feed=endpoint.label)
        elif status in RETRY_AFTER_STATUSES:
            wait = self._retry_after(response.headers.get("retry-after"))
            self._failed(endpoint, started, f"HTTP {status}", wait)
        else:
            self._failed(endpoint, started, f"HTTP {status}")

    async def _fetch(self, endpoint: Endpoint) -> tuple[httpx.Response, bytes]:
        """The answer and its body (empty unless 200), read within the timeout and size cap.

        Raises:
            FeedFailure: no answer (connection, timeout), or a body over the cap.
        """
        headers = dict(self._headers)
        if endpoint.etag:
            headers["If-None-Match"] = endpoint.etag
        if endpoint.last_modified:
            headers["If-Modified-Since"] = endpoint.last_modified
        try:
            # httpx's timeouts bound each read; this bounds the whole answer (a server
            # trickling bytes must not hold the desk).
            async with asyncio.timeout(self.timeout_s):
                async with self._http().stream("GET", endpoint.url, headers=headers) as response:
                    body = await self._body(response) if response.status_code == 200 else b""
                    return response, body
        except FeedFailure:
            raise
        except (TimeoutError, httpx.TimeoutException):
            raise FeedFailure(f"no answer within {self.timeout_s:g} s") from None
        except Exception as exc:  # httpx's errors, and what it raises outside them (InvalidURL)
            raise FeedFailure(f"{type(exc).__name__}: {self._scrub(str(exc))}") from None

    async def _body(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise FeedFailure(f"body of {int(declared):,} bytes is over the cap")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise FeedFailure(f"body over the cap of {self.max_body_bytes:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout_s),
                transport=self._transport,
                follow_redirects=True,
                max_redirects=5,
            )
        return self._client

    def _keep(self, endpoint: Endpoint, records: list[Record]) -> None:
        new = 0
        for record in records:
            if isinstance(record, str):
                self._dropped.add(record)
            elif isinstance(record, Undated):
                if self._store.add(record.item):
                    new += 1
                    self._undated += 1
            elif self._store.add(record):
                new += 1
        if new:
            log.debug("news.new_items", source=self._name, feed=endpoint.label, new=new)

    def _answered(self, endpoint: Endpoint, started: float) -> None:
        if endpoint.failures:
            log.info(
                "news.feed_again",
                source=self._name,
                feed=endpoint.label,
                failures=endpoint.failures,
            )
        endpoint.failures = 0
        endpoint.next_poll_at = started + self.poll_interval_s

    def _failed(
        self, endpoint: Endpoint, started: float, reason: str, wait_s: float | None = None
    ) -> None:
        endpoint.failures += 1
        if wait_s is None:
            # The exponent is capped so days of failures never overflow.
            wait_s = self.poll_interval_s * 2.0 ** min(endpoint.failures, 32)
            wait_s = min(self.max_backoff_s, wait_s)
        # Never sooner than the rate limit, whatever the backoff cap says.
        wait_s = max(self.poll_interval_s, wait_s)
        endpoint.next_poll_at = started + wait_s
        fields = {"source": self._name, "feed": endpoint.label, "retry_in_s": round(wait_s, 3)}
        if endpoint.failures == 1:
            log.warning("news.feed_failed", reason=self._scrub(reason)[:MAX_ERROR_CHARS], **fields)
        else:
            log.debug("news.feed_still_failing", failures=endpoint.failures, **fields)

    def _retry_after(self, value: str | None) -> float | None:
        """Seconds ``Retry-After`` asks for, capped at ``max_backoff_s``; None when absent or
        unreadable (then the usual backoff applies)."""
        if not value:
            return None
        value = value.strip()
        if value.isascii() and value.isdigit():  # "²".isdigit() is true too
            seconds = float(value[:12])
        else:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError, OverflowError):
                return None
            if when.tzinfo is None:
                return None
            seconds = (when - self._now()).total_seconds()
        return min(self.max_backoff_s, max(0.0, seconds))

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

"""YouTube live chat through the YouTube Data API v3: ``liveChatMessages.list``, polled.

The calls go through google-api-python-client, Google's maintained client: its discovery
document for youtube v3 ships inside the package (``static_discovery``), so building the client
needs no network. The client is blocking (httplib2), so each call runs in a worker thread, one
at a time, with a ``timeout_s`` socket timeout.

Polling, as the API documents it: each response carries ``nextPageToken`` (the next call's
``pageToken``: where this one stopped) and ``pollingIntervalMillis`` (how long to wait before
the next call). A list call costs 5 quota units and a project gets 10,000 a day by default, so
the poller also spaces its calls by ``86,400 s x 5 / daily_quota_units`` (43.2 s for 10,000)
and counts what it spent in the current quota day (which starts at midnight Pacific time). It
never calls sooner than the server's interval or the budget's, failed calls included.

Errors: 5xx, 429, a timeout, a dropped connection or an answer that is not JSON are retried
after a :class:`~tradecast.viewers.base.Backoff` delay (never sooner than the budget allows);
``quotaExceeded`` waits for the next quota day; every other 4xx (``liveChatEnded``,
``liveChatDisabled``, ``liveChatNotFound``, a rejected key, ``forbidden``) and a
``chatEndedEvent`` are permanent: :class:`~tradecast.errors.ChatSourceError`.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from datetime import time as day_time
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httplib2  # type: ignore[import-untyped]
from googleapiclient.discovery import build  # type: ignore[import-untyped]
from googleapiclient.errors import HttpError  # type: ignore[import-untyped]
from pydantic import SecretStr, ValidationError

from tradecast.domain.base import utc_now
from tradecast.domain.viewers import (
    MAX_CHANNEL_CHARS,
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_TEXT_CHARS,
    ViewerMessage,
    clip,
)
from tradecast.errors import ChatSourceError
from tradecast.logs import get_logger
from tradecast.settings import YouTubeConfig
from tradecast.viewers.base import BackgroundSource, Backoff

log = get_logger(__name__)

LIST_COST_UNITS = 5
DAY_S = 86_400.0
PARTS = "id,snippet,authorDetails"
FALLBACK_POLL_S = 5.0
"""The wait when a response carries no usable ``pollingIntervalMillis``."""
MAX_POLL_S = 3600.0
"""A longer server interval is taken as this (a garbage value must not stall the chat)."""
API_KEY_SETTING = "TRADECAST_VIEWERS__YOUTUBE__API_KEY"
CHAT_ID_SETTING = "TRADECAST_VIEWERS__YOUTUBE__LIVE_CHAT_ID"
QUOTA_SETTING = "TRADECAST_VIEWERS__YOUTUBE__DAILY_QUOTA_UNITS"

try:
    QUOTA_TIMEZONE: ZoneInfo | timezone = ZoneInfo("America/Los_Angeles")
except ZoneInfoNotFoundError:  # no tz database: Pacific standard time, an hour early in summer
    QUOTA_TIMEZONE = timezone(timedelta(hours=-8))

_TRANSIENT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "backendError"})
_QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
_HINTS = {
    "liveChatEnded": "the broadcast's chat has ended",
    "liveChatDisabled": "live chat is off for this broadcast",
    "liveChatNotFound": f"no such live chat: check {CHAT_ID_SETTING}",
    "forbidden": "this key may not read that chat",
    "keyInvalid": f"the API key was rejected: check {API_KEY_SETTING}",
    "API_KEY_INVALID": f"the API key was rejected: check {API_KEY_SETTING}",
    "accessNotConfigured": "the key's project does not have YouTube Data API v3 enabled",
}

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Now = Callable[[], datetime]
ErrorKind = Literal["permanent", "quota", "transient"]


def classify_error(status: int, reasons: Sequence[str]) -> ErrorKind:
    """What an HTTP error from the API means for the poller.

    Args:
        status: the HTTP status.
        reasons: the body's ``error.errors[].reason`` and ``error.details[].reason``.

    Returns:
        ``transient`` (retry after backoff), ``quota`` (wait for the next quota day) or
        ``permanent`` (stop).
    """
    if status >= 500 or status in (408, 429) or _TRANSIENT_REASONS.intersection(reasons):
        return "transient"
    if _QUOTA_REASONS.intersection(reasons):
        return "quota"
    if 400 <= status < 500:
        return "permanent"
    return "transient"


def error_reasons(content: bytes | str | None) -> tuple[list[str], str]:
    """The reasons (``error.errors[]``, then ``error.details[]``) and the message of a Google
    API error body; ``([], "")`` for a body that is not one."""
    try:
        error = json.loads(content or b"")["error"]
    except (ValueError, TypeError, KeyError):
        return [], ""
    if not isinstance(error, dict):
        return [], ""
    message = error.get("message")
    entries: list[Any] = []
    for key in ("errors", "details"):
        if isinstance(error.get(key), list):
            entries.extend(error[key])
    reasons = [
        e["reason"] for e in entries if isinstance(e, dict) and isinstance(e.get("reason"), str)
    ]
    return reasons, message if isinstance(message, str) else ""


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _published_at(value: object) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def to_viewer_message(
    item: Mapping[str, Any], live_chat_id: str, received_at: datetime
) -> ViewerMessage | None:
    """A ``liveChatMessage`` resource as a ViewerMessage (strings clipped to their bounds).

    Text messages (``textMessageEvent``) and Super Chats with a comment count; every other
    kind (memberships, polls, deletions, bans, tombstones) and any malformed item give None.
    """
    snippet = item.get("snippet")
    author = item.get("authorDetails")
    if not isinstance(snippet, dict) or not isinstance(author, dict):
        return None
    kind = snippet.get("type")
    if kind == "textMessageEvent":
        details = snippet.get("textMessageDetails")
        text = details.get("messageText") if isinstance(details, dict) else None
        if not isinstance(text, str):
            text = snippet.get("displayMessage")
    elif kind == "superChatEvent":
        details = snippet.get("superChatDetails")
        text = details.get("userComment") if isinstance(details, dict) else None
    else:
        return None
    message_id = _text(item.get("id"))
    viewer_id = _text(author.get("channelId")) or _text(snippet.get("authorChannelId"))
    if not isinstance(text, str) or not text.strip() or not message_id or not viewer_id:
        return None
    owner = author.get("isChatOwner") is True
    moderator = author.get("isChatModerator") is True
    member = author.get("isChatSponsor") is True
    verified = author.get("isVerified") is True
    badges = tuple(
        badge
        for badge, on in (
            ("broadcaster/1", owner),
            ("moderator/1", moderator),
            ("member/1", member),
            ("verified/1", verified),
        )
        if on
    )
    try:
        return ViewerMessage(
            id=clip(message_id, MAX_ID_CHARS),
            platform="youtube",
            channel=clip(live_chat_id, MAX_CHANNEL_CHARS),
            viewer_id=clip(viewer_id, MAX_ID_CHARS),
            display_name=clip(_text(author.get("displayName")) or viewer_id, MAX_NAME_CHARS),
            text=clip(text, MAX_TEXT_CHARS),
            badges=badges,
            is_mod=moderator,
            is_subscriber=member,
            is_broadcaster=owner,
            received_at=received_at,
        )
    except ValidationError:
        log.warning("youtube.unmappable_message", id=message_id[:MAX_ID_CHARS])
        return None


class QuotaBudget:
    """The quota units the poller may spend in one quota day (midnight to midnight, Pacific).

    Args:
        daily_units: units a day for this poller.
        cost_units: what one call costs (``liveChatMessages.list``: 5).
        now: the wall clock (tests inject one).
    """

    def __init__(
        self, daily_units: int, *, cost_units: int = LIST_COST_UNITS, now: Now = utc_now
    ) -> None:
        if cost_units < 1 or daily_units < cost_units:
            raise ValueError(f"a daily budget of {daily_units} units cannot pay for one call")
        self.daily_units = daily_units
        self.cost_units = cost_units
        self._now = now
        self._day: date | None = None
        self._spent = 0

    @property
    def min_interval_s(self) -> float:
        """The spacing at which a whole day of calls fits the budget."""
        return DAY_S * self.cost_units / self.daily_units

    @property
    def spent_today(self) -> int:
        """Units spent in the current quota day."""
        self._roll()
        return self._spent

    def can_spend(self) -> bool:
        """Whether one more call fits today."""
        self._roll()
        return self._spent + self.cost_units <= self.daily_units

    def spend(self) -> None:
        """Count one call (made, or about to be)."""
        self._roll()
        self._spent += self.cost_units

    def exhaust(self) -> None:
        """The API said the quota is gone: spend nothing more today."""
        self._roll()
        self._spent = max(self._spent, self.daily_units)

    def seconds_until_reset(self) -> float:
        """Seconds until the next quota day starts."""
        local = self._now().astimezone(QUOTA_TIMEZONE)
        midnight = datetime.combine(local.date() + timedelta(days=1), day_time(0), QUOTA_TIMEZONE)
        # Subtract in UTC: aware datetimes sharing a zone subtract as wall clocks (wrong at DST).
        return max(1.0, (midnight.astimezone(UTC) - local.astimezone(UTC)).total_seconds())

    def _roll(self) -> None:
        today = self._now().astimezone(QUOTA_TIMEZONE).date()
        if today != self._day:
            self._day, self._spent = today, 0


class _Transient(Exception):
    """A failed call worth another try."""


class _QuotaExceeded(Exception):
    """The API says the project's quota is spent."""


class YouTubeChatSource(BackgroundSource):
    """A :class:`~tradecast.viewers.base.ChatSource` polling one YouTube live chat.

    Args:
        live_chat_id: the broadcast's ``snippet.liveChatId``.
        api_key: an API key of a project with YouTube Data API v3 enabled.
        daily_quota_units: the units a day this poller may spend; calls are spaced to fit.
        api_endpoint: the API's root URL (tests: a loopback server); default Google's.
        timeout_s: socket timeout of one call.
        max_results: messages per response (the API takes 200 to 2000).
        include_history: also deliver what the first response holds from before the start
            (the chat's recent history); off, so a restart does not answer old questions.
        queue_size: messages kept for the reader; past it the oldest are dropped.
        backoff: delays after a failed call; default 1 s doubling to 5 minutes, with jitter.
        clock: monotonic seconds; sleep: how to wait; now: the wall clock (tests inject all
            three, so polling is tested without waiting).

    Raises:
        ChatSourceError: the id or key is empty, or the budget cannot pay for one call.

    Closing lets a call in flight finish in its worker thread (within ``timeout_s``); its
    answer is ignored.
    """

    task_role = "poller"

    def __init__(
        self,
        live_chat_id: str,
        api_key: str | SecretStr,
        *,
        daily_quota_units: int = 10_000,
        api_endpoint: str | None = None,
        timeout_s: float = 10.0,
        max_results: int = 2000,
        include_history: bool = False,
        queue_size: int = 10_000,
        backoff: Backoff | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        now: Now = utc_now,
    ) -> None:
        super().__init__(queue_size)
        self.live_chat_id = live_chat_id.strip()
        self.name = f"youtube:{self.live_chat_id}"
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        self._api_key = key.strip()
        if not self.live_chat_id:
            raise ChatSourceError("youtube", f"set {CHAT_ID_SETTING} to read YouTube live chat")
        if not self._api_key:
            raise ChatSourceError("youtube", f"set {API_KEY_SETTING} to read YouTube live chat")
        if not 200 <= max_results <= 2000:
            raise ValueError("max_results must be between 200 and 2000 (the API's range)")
        try:
            self.budget = QuotaBudget(daily_quota_units, now=now)
        except ValueError as exc:
            raise ChatSourceError("youtube", f"{QUOTA_SETTING}: {exc}") from None
        self._api_endpoint = api_endpoint
        self._timeout_s = timeout_s
        self._max_results = max_results
        self._include_history = include_history
        self._backoff = backoff or Backoff(1.0, 300.0)
        self._clock = clock
        self._sleep = sleep
        self._now = now
        self._service: Any = None
        self.page_token: str | None = None
        """Where the next call continues (the last response's ``nextPageToken``)."""

    @classmethod
    def from_config(cls, config: YouTubeConfig, **options: Any) -> YouTubeChatSource:
        """The source ``TRADECAST_VIEWERS__YOUTUBE__*`` describes (``options``: constructor
        arguments such as ``timeout_s``).

        Raises:
            ChatSourceError: the live chat id or the API key is not set.
        """
        return cls(
            config.live_chat_id,
            config.api_key,
            daily_quota_units=config.daily_quota_units,
            **options,
        )

    async def _run(self) -> None:
        started_at = self._now()
        first = True
        next_at = self._clock()
        try:
            while True:
                wait = next_at - self._clock()
                if wait > 0:
                    await self._sleep(wait)
                if not self.budget.can_spend():
                    wait = self.budget.seconds_until_reset()
                    log.warning("youtube.quota_spent", units=self.budget.spent_today, wait_s=wait)
                    await self._sleep(wait)
                    next_at = self._clock()
                    continue
                self.budget.spend()
                try:
                    response = await self._call()
                except _Transient as exc:
                    self.stats.failures += 1
                    delay = max(self._backoff.next_delay(), self.budget.min_interval_s)
                    log.warning("youtube.poll_failed", error=str(exc), retry_in_s=round(delay, 3))
                    next_at = self._clock() + delay
                    continue
                except _QuotaExceeded:
                    self.budget.exhaust()
                    log.warning("youtube.quota_exceeded", wait_s=self.budget.seconds_until_reset())
                    next_at = self._clock()
                    continue
                self._backoff.reset()
                self.stats.connections += 1
                ended = self._deliver(
                    response, None if self._include_history or not first else started_at
                )
                first = False
                token = response.get("nextPageToken")
                if isinstance(token, str) and token:
                    self.page_token = token
                next_at = self._clock() + max(
                    self._interval_s(response), self.budget.min_interval_s
                )
                if ended:
                    raise ChatSourceError("youtube", "the live chat ended (chatEndedEvent)")
        except ChatSourceError as exc:
            log.error("youtube.stopped", error=str(exc))
            self._buffer.fail(exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: say so to the reader rather than hang it
            log.exception("youtube.crashed")
            self._buffer.fail(exc)

    async def _call(self) -> dict[str, Any]:
        """One ``liveChatMessages.list`` call.

        Raises:
            ChatSourceError: a permanent refusal; _QuotaExceeded; _Transient: anything else.
        """
        try:
            response = await asyncio.to_thread(self._fetch, self.page_token)
        except HttpError as exc:
            status = int(getattr(exc.resp, "status", 0) or 0)
            reasons, message = error_reasons(exc.content)
            kind = classify_error(status, reasons)
            reason = ",".join(reasons)
            if kind == "transient":
                raise _Transient(f"HTTP {status} {reason}".strip()) from None
            if kind == "quota":
                raise _QuotaExceeded from None
            hint = next((_HINTS[r] for r in reasons if r in _HINTS), "the API refused the call")
            raise ChatSourceError(
                "youtube", f"{hint} (HTTP {status} {reason or 'error'}: {message[:200]})"
            ) from None
        except (OSError, TimeoutError, httplib2.HttpLib2Error, http.client.HTTPException) as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from None
        if not isinstance(response, dict):
            raise _Transient("the answer was not a JSON object")
        return response

    def _fetch(self, page_token: str | None) -> Any:
        # In a worker thread: google-api-python-client and httplib2 block.
        if self._service is None:
            self._service = build(
                "youtube",
                "v3",
                developerKey=self._api_key,
                http=httplib2.Http(timeout=self._timeout_s),
                static_discovery=True,
                cache_discovery=False,
                client_options={"api_endpoint": self._api_endpoint} if self._api_endpoint else None,
            )
        params: dict[str, Any] = {
            "liveChatId": self.live_chat_id,
            "part": PARTS,
            "maxResults": self._max_results,
        }
        if page_token:
            params["pageToken"] = page_token
        return self._service.liveChatMessages().list(**params).execute(num_retries=0)

    def _deliver(self, response: Mapping[str, Any], skip_before: datetime | None) -> bool:
        """Queue the response's messages, oldest first; whether the chat ended in it."""
        items = response.get("items")
        if not isinstance(items, list):
            return False
        received_at = self._now()
        for item in items:
            if not isinstance(item, dict):
                continue
            snippet = item.get("snippet")
            if isinstance(snippet, dict) and snippet.get("type") == "chatEndedEvent":
                return True
            message = to_viewer_message(item, self.live_chat_id, received_at)
            if message is None:
                continue
            if skip_before is not None:
                published = _published_at(snippet.get("publishedAt") if snippet else None)
                if published is not None and published < skip_before:
                    continue
            if self._recent.seen(message.id):
                self.stats.duplicates += 1
                continue
            self._buffer.put(message)
        return False

    @staticmethod
    def _interval_s(response: Mapping[str, Any]) -> float:
        millis = response.get("pollingIntervalMillis")
        if isinstance(millis, str) and millis.isdigit():
            millis = int(millis)
        if isinstance(millis, bool) or not isinstance(millis, int | float) or millis < 0:
            return FALLBACK_POLL_S
        return min(float(millis) / 1000.0, MAX_POLL_S)

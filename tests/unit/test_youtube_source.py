"""The YouTube live chat poller, through google-api-python-client, against a loopback server
that answers ``GET /youtube/v3/liveChat/messages`` with responses in the API's own JSON
(``youtube#liveChatMessageListResponse`` and Google's error bodies).

Time is injected: the poller's sleeps advance a fake clock and are recorded, so the polling
interval, the quota spacing and the backoff are asserted exactly, without waiting.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tradecast.domain.viewers import MAX_NAME_CHARS, MAX_TEXT_CHARS, ViewerMessage
from tradecast.errors import ChatSourceError
from tradecast.settings import YouTubeConfig, load_settings
from tradecast.viewers.base import Backoff
from tradecast.viewers.youtube import (
    QUOTA_TIMEZONE,
    QuotaBudget,
    YouTubeChatSource,
    classify_error,
    error_reasons,
    to_viewer_message,
)

CHAT_ID = "KicKGFVDcjBvMVpYTnRzR0FOdzVWMjNFd2NhZxILdHJhZGVkZXNrMDE"
API_KEY = "AIzaSyD-test-key-0123456789abcdefghijk"
START = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)  # 12:00 in California


# --- recorded responses, in the API's format ---------------------------------------------------


def chat_item(
    n: int,
    *,
    text: str | None = None,
    kind: str = "textMessageEvent",
    channel_id: str | None = None,
    name: str | None = None,
    owner: bool = False,
    moderator: bool = False,
    sponsor: bool = False,
    verified: bool = False,
    published: datetime | None = None,
) -> dict[str, Any]:
    channel_id = channel_id or f"UC{n:022d}"
    text = text if text is not None else f"message {n}"
    snippet: dict[str, Any] = {
        "type": kind,
        "liveChatId": CHAT_ID,
        "authorChannelId": channel_id,
        "publishedAt": (published or START + timedelta(seconds=n)).isoformat(),
        "hasDisplayContent": True,
        "displayMessage": text,
    }
    if kind == "textMessageEvent":
        snippet["textMessageDetails"] = {"messageText": text}
    elif kind == "superChatEvent":
        snippet["superChatDetails"] = {
            "amountMicros": "5000000",
            "currency": "USD",
            "amountDisplayString": "$5.00",
            "userComment": text,
            "tier": 2,
        }
    return {
        "kind": "youtube#liveChatMessage",
        "etag": f"etag-{n}",
        "id": f"LCC.EhwKGkNKN3g{n:08d}",
        "snippet": snippet,
        "authorDetails": {
            "channelId": channel_id,
            "channelUrl": f"http://www.youtube.com/channel/{channel_id}",
            "displayName": name or f"Viewer {n}",
            "profileImageUrl": "https://yt4.ggpht.com/ytc/photo=s88-c-k-no-rj",
            "isVerified": verified,
            "isChatOwner": owner,
            "isChatSponsor": sponsor,
            "isChatModerator": moderator,
        },
    }


def page(items: list[dict[str, Any]], token: str, polling_ms: int = 5000) -> dict[str, Any]:
    return {
        "kind": "youtube#liveChatMessageListResponse",
        "etag": "Kd2Kg0Q5j4rZ7Ww3h8TtqvS0wT0",
        "pollingIntervalMillis": polling_ms,
        "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)},
        "nextPageToken": token,
        "items": items,
    }


def api_error(code: int, reason: str, message: str, domain: str = "youtube.liveChat") -> dict:
    return {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason}],
        }
    }


KEY_INVALID = {
    "error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "errors": [
            {
                "message": "API key not valid. Please pass a valid API key.",
                "domain": "global",
                "reason": "badRequest",
            }
        ],
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "youtube.googleapis.com"},
            }
        ],
    }
}
CHAT_ENDED = api_error(403, "liveChatEnded", "The live chat is no longer live.")
CHAT_DISABLED = api_error(403, "liveChatDisabled", "Live chat is not enabled for this broadcast.")
CHAT_NOT_FOUND = api_error(404, "liveChatNotFound", "The live chat cannot be found.")
QUOTA_EXCEEDED = api_error(
    403,
    "quotaExceeded",
    "The request cannot be completed because you have exceeded your quota.",
    domain="youtube.quota",
)
RATE_LIMITED = api_error(403, "rateLimitExceeded", "The request was sent too soon.")
UNAVAILABLE = api_error(503, "backendError", "The service is currently unavailable.", "global")


# --- the loopback API ------------------------------------------------------------------------


@dataclass
class Reply:
    body: Any
    status: int = 200
    delay_s: float = 0.0


class FakeYouTubeAPI:
    """Answers each GET with the next scripted reply; records every request's query."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[dict[str, list[str]]] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                with api._lock:
                    api.paths.append(url.path)
                    api.requests.append(parse_qs(url.query))
                    reply = api.replies.popleft() if api.replies else None
                if reply is None:  # script done: hold the call until the test ends
                    api._release.wait(10)
                    reply = Reply(UNAVAILABLE, 503)
                if reply.delay_s:
                    api._release.wait(reply.delay_s)
                body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body)
                data = body if isinstance(body, bytes) else body.encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def script(self, *replies: Reply | dict[str, Any]) -> None:
        for reply in replies:
            self.replies.append(reply if isinstance(reply, Reply) else Reply(reply))

    def start(self) -> None:
        self.thread.start()

    def release(self) -> None:
        self._release.set()

    def stop(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api() -> Iterator[FakeYouTubeAPI]:
    fake = FakeYouTubeAPI()
    fake.start()
    yield fake
    fake.stop()


class FakeTime:
    """A monotonic clock and a wall clock that move only when the poller sleeps."""

    def __init__(self, start: datetime = START) -> None:
        self.mono = 5000.0
        self.wall = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.mono

    def now(self) -> datetime:
        return self.wall

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.mono += seconds
        self.wall += timedelta(seconds=seconds)
        await asyncio.sleep(0)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def make_source(api: FakeYouTubeAPI, fake_time: FakeTime) -> AsyncIterator[Any]:
    made: list[YouTubeChatSource] = []

    def make(**options: Any) -> YouTubeChatSource:
        options.setdefault("daily_quota_units", 10_000_000)  # budget spacing 0.0432 s
        options.setdefault("backoff", Backoff(2.0, 60.0, jitter=0.0))
        options.setdefault("timeout_s", 5.0)
        source = YouTubeChatSource(
            CHAT_ID,
            API_KEY,
            api_endpoint=api.endpoint,
            clock=fake_time.clock,
            sleep=fake_time.sleep,
            now=fake_time.now,
            **options,
        )
        made.append(source)
        return source

    yield make
    api.release()  # a call held open by the script's end returns now
    for source in made:
        await source.close()


async def take(source: YouTubeChatSource, count: int) -> list[ViewerMessage]:
    got: list[ViewerMessage] = []
    async with asyncio.timeout(20):
        async for message in source.messages():
            got.append(message)
            if len(got) == count:
                break
    return got


async def until_error(source: YouTubeChatSource) -> tuple[list[ViewerMessage], ChatSourceError]:
    got: list[ViewerMessage] = []
    async with asyncio.timeout(20):
        try:
            async for message in source.messages():
                got.append(message)
        except ChatSourceError as exc:
            return got, exc
    raise AssertionError("the source ended without an error")


# --- polling ---------------------------------------------------------------------------------


async def test_pages_follow_next_page_token_and_wait_the_servers_interval(
    api: FakeYouTubeAPI, fake_time: FakeTime, make_source: Any
) -> None:
    api.script(
        page([chat_item(1), chat_item(2)], "token-A", polling_ms=5000),
        page([chat_item(3)], "token-B", polling_ms=7250),
        page([], "token-C", polling_ms=2000),
        page([chat_item(4)], "token-D", polling_ms=3000),
    )
    source = make_source()
    got = await take(source, 4)
    assert [m.text for m in got] == ["message 1", "message 2", "message 3", "message 4"]
    assert fake_time.sleeps[:3] == [5.0, 7.25, 2.0]  # before the 2nd, 3rd and 4th call
    assert set(api.paths) == {"/youtube/v3/liveChat/messages"}
    first = api.requests[0]
    assert first["liveChatId"] == [CHAT_ID]
    assert first["part"] == ["id,snippet,authorDetails"]
    assert first["key"] == [API_KEY]
    assert first["maxResults"] == ["2000"]
    assert "pageToken" not in first
    assert [r["pageToken"] for r in api.requests[1:4]] == [["token-A"], ["token-B"], ["token-C"]]
    assert source.page_token == "token-D"


@pytest.mark.parametrize(
    ("units", "spacing_s"),
    [(10_000, 43.2), (500, 864.0), (100_000, 4.32), (10_000_000, 1.0)],  # last: the server's 1 s
)
async def test_calls_are_spaced_by_the_budget_or_the_server_whichever_is_longer(
    api: FakeYouTubeAPI, fake_time: FakeTime, make_source: Any, units: int, spacing_s: float
) -> None:
    api.script(*(page([chat_item(n)], f"t{n}", polling_ms=1000) for n in range(4)))
    source = make_source(daily_quota_units=units)
    assert source.budget.min_interval_s == pytest.approx(86_400 * 5 / units)
    await take(source, 4)
    # (the poller may already be waiting for its fifth call: hence the slices)
    assert fake_time.sleeps[:3] == pytest.approx([spacing_s] * 3)
    assert source.budget.spent_today >= 4 * 5


async def test_a_25_hour_day_still_spends_no_more_than_the_budget(
    api: FakeYouTubeAPI, fake_time: FakeTime, make_source: Any
) -> None:
    # 30 units: six calls, spaced by 4 h. 2026-11-01 is 25 hours long in California, so a
    # seventh call would fall in the same quota day: the day's count holds it back an hour.
    fake_time.wall = datetime(2026, 11, 1, 7, 0, tzinfo=UTC)  # midnight PDT
    api.script(*(page([chat_item(n)], f"t{n}", polling_ms=1000) for n in range(9)))
    source = make_source(daily_quota_units=30)
    await take(source, 9)
    assert fake_time.sleeps[:8] == pytest.approx([4 * 3600.0] * 6 + [3600.0, 4 * 3600.0])
    calls_at = [datetime(2026, 11, 1, 7, 0, tzinfo=UTC)]
    for pause in fake_time.sleeps[:8]:
        calls_at.append(calls_at[-1] + timedelta(seconds=pause))
    calls_at.pop(6)  # after the sixth 4 h wait no call: the day's budget was spent
    per_day: dict[Any, int] = {}
    for at in calls_at:
        day = at.astimezone(QUOTA_TIMEZONE).date()
        per_day[day] = per_day.get(day, 0) + 5
    assert per_day == {date(2026, 11, 1): 30, date(2026, 11, 2): 10}


async def test_quota_exceeded_waits_for_the_next_quota_day(
    api: FakeYouTubeAPI, fake_time: FakeTime, make_source: Any
) -> None:
    api.script(Reply(QUOTA_EXCEEDED, 403), page([chat_item(1)], "t1"))
    source = make_source()
    (message,) = await take(source, 1)
    # 12:00 in California: the quota day restarts at midnight there, 12 hours later.
    assert fake_time.sleeps[:1] == [pytest.approx(12 * 3600)]
    assert message.text == "message 1"


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        (403, CHAT_ENDED, "chat has ended"),
        (403, CHAT_DISABLED, "live chat is off"),
        (404, CHAT_NOT_FOUND, "TRADECAST_VIEWERS__YOUTUBE__LIVE_CHAT_ID"),
        (400, KEY_INVALID, "TRADECAST_VIEWERS__YOUTUBE__API_KEY"),
        (403, api_error(403, "forbidden", "Forbidden"), "may not read"),
    ],
)
async def test_permanent_errors_stop_the_source_after_what_came_before(
    api: FakeYouTubeAPI, make_source: Any, status: int, body: dict, words: str
) -> None:
    api.script(page([chat_item(1), chat_item(2)], "t1"), Reply(body, status))
    source = make_source()
    got, error = await until_error(source)
    assert [m.text for m in got] == ["message 1", "message 2"]
    assert words in str(error)
    assert API_KEY not in str(error)
    assert len(api.requests) == 2  # no retry


async def test_transient_errors_back_off_and_go_on(
    api: FakeYouTubeAPI, fake_time: FakeTime, make_source: Any
) -> None:
    api.script(
        Reply(UNAVAILABLE, 503),
        Reply(RATE_LIMITED, 403),
        Reply(b"<html><body>502 Bad Gateway</body></html>", 502),
        Reply(b"<html>not json</html>", 200),
        page([chat_item(1)], "t1", polling_ms=1500),
        Reply(UNAVAILABLE, 500),
        page([chat_item(2)], "t2"),
    )
    source = make_source()
    got = await take(source, 2)
    assert [m.text for m in got] == ["message 1", "message 2"]
    # Backoff 2, 4, 8, 16 s (no jitter), the server's 1.5 s, then backoff from 2 s again.
    assert fake_time.sleeps[:6] == [2.0, 4.0, 8.0, 16.0, 1.5, 2.0]
    assert source.stats.failures == 5
    assert [r.get("pageToken") for r in api.requests[:7]] == [None] * 5 + [["t1"], ["t1"]]


async def test_a_timed_out_call_is_retried(
    api: FakeYouTubeAPI, fake_time: FakeTime, make_source: Any
) -> None:
    api.script(Reply(page([chat_item(9)], "late"), delay_s=3.0), page([chat_item(1)], "t1"))
    source = make_source(timeout_s=0.3)  # httplib2's socket timeout cuts the call off
    (message,) = await take(source, 1)
    assert message.text == "message 1" and source.stats.failures == 1
    assert fake_time.sleeps[:1] == [2.0]


async def test_backoff_never_polls_faster_than_the_budget(
    api: FakeYouTubeAPI, fake_time: FakeTime, make_source: Any
) -> None:
    api.script(Reply(UNAVAILABLE, 503), page([chat_item(1)], "t1"))
    source = make_source(daily_quota_units=10_000)
    await take(source, 1)
    assert fake_time.sleeps[:1] == [pytest.approx(43.2)]  # not the 2 s backoff


async def test_chat_ended_event_delivers_what_came_before_then_stops(
    api: FakeYouTubeAPI, make_source: Any
) -> None:
    ended = chat_item(3, kind="chatEndedEvent")
    api.script(page([chat_item(1), chat_item(2), ended], "t1"))
    got, error = await until_error(make_source())
    assert [m.text for m in got] == ["message 1", "message 2"]
    assert "ended" in str(error)


@pytest.mark.parametrize(
    ("status", "reasons", "kind"),
    [
        (503, ["backendError"], "transient"),
        (500, [], "transient"),
        (429, [], "transient"),
        (403, ["rateLimitExceeded"], "transient"),
        (403, ["quotaExceeded"], "quota"),
        (403, ["liveChatEnded"], "permanent"),
        (403, ["liveChatDisabled"], "permanent"),
        (404, ["liveChatNotFound"], "permanent"),
        (400, ["badRequest", "API_KEY_INVALID"], "permanent"),
        (401, [], "permanent"),
    ],
)
def test_error_classes(status: int, reasons: list[str], kind: str) -> None:
    assert classify_error(status, reasons) == kind


def test_error_bodies() -> None:
    assert error_reasons(json.dumps(KEY_INVALID).encode()) == (
        ["badRequest", "API_KEY_INVALID"],
        "API key not valid. Please pass a valid API key.",
    )
    assert error_reasons(b"<html>") == ([], "")
    assert error_reasons(b'{"error": "nope"}') == ([], "")
    assert error_reasons(None) == ([], "")


# --- mapping ---------------------------------------------------------------------------------


def test_author_details_map_into_the_message() -> None:
    item = chat_item(
        7,
        name="Desk Fan",
        owner=False,
        moderator=True,
        sponsor=True,
        verified=True,
        text="what's the risk limit today?",
    )
    message = to_viewer_message(item, CHAT_ID, START)
    assert message is not None
    assert message.model_dump() == {
        "id": "LCC.EhwKGkNKN3g00000007",
        "platform": "youtube",
        "channel": CHAT_ID,
        "viewer_id": "UC0000000000000000000007",
        "display_name": "Desk Fan",
        "text": "what's the risk limit today?",
        "badges": ("moderator/1", "member/1", "verified/1"),
        "is_mod": True,
        "is_subscriber": True,
        "is_broadcaster": False,
        "received_at": START,
    }
    owner = to_viewer_message(chat_item(8, owner=True), CHAT_ID, START)
    assert owner is not None and owner.is_broadcaster and owner.badges == ("broadcaster/1",)


def test_super_chats_with_a_comment_count_other_events_do_not() -> None:
    superchat = to_viewer_message(chat_item(1, kind="superChatEvent", text="gm"), CHAT_ID, START)
    assert superchat is not None and superchat.text == "gm"
    for kind in ("newSponsorEvent", "messageDeletedEvent", "userBannedEvent", "tombstone"):
        assert to_viewer_message(chat_item(2, kind=kind), CHAT_ID, START) is None
    assert to_viewer_message(chat_item(3, kind="superChatEvent", text=""), CHAT_ID, START) is None


@pytest.mark.parametrize(
    "item",
    [
        {},
        {"id": "x", "snippet": "text", "authorDetails": {}},
        {"id": "x", "snippet": {"type": "textMessageEvent"}, "authorDetails": {"channelId": 5}},
        {"id": "", **{k: v for k, v in chat_item(1).items() if k != "id"}},
        {
            **chat_item(1),
            "snippet": {**chat_item(1)["snippet"], "authorChannelId": None},
            "authorDetails": {"displayName": "no channel id"},
        },
    ],
)
def test_malformed_items_are_skipped(item: dict[str, Any]) -> None:
    assert to_viewer_message(item, CHAT_ID, START) is None


def test_long_strings_are_clipped() -> None:
    message = to_viewer_message(chat_item(1, text="z" * 900, name="N" * 300), CHAT_ID, START)
    assert message is not None
    assert (len(message.text), len(message.display_name)) == (MAX_TEXT_CHARS, MAX_NAME_CHARS)


def test_flags_must_be_real_booleans() -> None:
    item = chat_item(1)
    item["authorDetails"]["isChatModerator"] = "true"
    message = to_viewer_message(item, CHAT_ID, START)
    assert message is not None and not message.is_mod


async def test_history_from_before_the_start_is_skipped_unless_asked_for(
    api: FakeYouTubeAPI, make_source: Any
) -> None:
    old = chat_item(1, text="an old question", published=START - timedelta(minutes=20))
    new = chat_item(2, text="a new one", published=START + timedelta(seconds=1))
    api.script(page([old, new], "t1"), page([chat_item(3)], "t2"))
    got = await take(make_source(), 2)
    assert [m.text for m in got] == ["a new one", "message 3"]


async def test_history_can_be_included(api: FakeYouTubeAPI, make_source: Any) -> None:
    old = chat_item(1, text="an old question", published=START - timedelta(minutes=20))
    api.script(page([old], "t1"))
    (message,) = await take(make_source(include_history=True), 1)
    assert message.text == "an old question"


async def test_a_message_seen_twice_is_delivered_once(
    api: FakeYouTubeAPI, make_source: Any
) -> None:
    api.script(page([chat_item(1), chat_item(2)], "t1"), page([chat_item(2), chat_item(3)], "t2"))
    source = make_source()
    got = await take(source, 3)
    assert [m.text for m in got] == ["message 1", "message 2", "message 3"]
    assert source.stats.duplicates == 1


# --- the quota day ---------------------------------------------------------------------------


def test_the_quota_day_starts_at_midnight_pacific() -> None:
    clock = {"now": datetime(2026, 7, 1, 6, 59, tzinfo=UTC)}  # 23:59 PDT
    budget = QuotaBudget(10, now=lambda: clock["now"])
    budget.spend()
    budget.spend()
    assert not budget.can_spend() and budget.spent_today == 10
    assert budget.seconds_until_reset() == pytest.approx(60)
    clock["now"] += timedelta(minutes=1)  # 00:00 PDT: a new quota day
    assert budget.can_spend() and budget.spent_today == 0


def test_the_long_day_when_daylight_saving_time_ends() -> None:
    # 2026-11-01 is 25 hours long in California; its midnight is 07:00 UTC.
    budget = QuotaBudget(10_000, now=lambda: datetime(2026, 11, 1, 7, 0, tzinfo=UTC))
    assert budget.seconds_until_reset() == pytest.approx(25 * 3600)


def test_a_budget_must_pay_for_one_call() -> None:
    with pytest.raises(ValueError):
        QuotaBudget(4)
    with pytest.raises(ChatSourceError, match="DAILY_QUOTA_UNITS"):
        YouTubeChatSource(CHAT_ID, API_KEY, daily_quota_units=3)


# --- configuration ---------------------------------------------------------------------------


def test_from_config_needs_an_id_and_a_key() -> None:
    with pytest.raises(ChatSourceError, match="LIVE_CHAT_ID"):
        YouTubeChatSource.from_config(YouTubeConfig(api_key=API_KEY))
    with pytest.raises(ChatSourceError, match="API_KEY"):
        YouTubeChatSource.from_config(YouTubeConfig(live_chat_id=CHAT_ID))
    source = YouTubeChatSource.from_config(
        YouTubeConfig(api_key=API_KEY, live_chat_id=CHAT_ID, daily_quota_units=20_000)
    )
    assert source.budget.min_interval_s == pytest.approx(21.6)
    assert source.name == f"youtube:{CHAT_ID}"


def test_viewer_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADECAST_VIEWERS__SOURCES", '["twitch", "youtube"]')
    monkeypatch.setenv("TRADECAST_VIEWERS__YOUTUBE__API_KEY", API_KEY)
    monkeypatch.setenv("TRADECAST_VIEWERS__YOUTUBE__LIVE_CHAT_ID", CHAT_ID)
    monkeypatch.setenv("TRADECAST_VIEWERS__YOUTUBE__DAILY_QUOTA_UNITS", "50000")
    monkeypatch.setenv("TRADECAST_VIEWERS__TWITCH__CHANNEL", "#TradeDesk")
    monkeypatch.setenv("TRADECAST_VIEWERS__TWITCH__TLS", "false")
    viewers = load_settings().viewers
    assert viewers.sources == ["twitch", "youtube"]
    assert viewers.youtube.api_key.get_secret_value() == API_KEY
    assert API_KEY not in repr(viewers)
    assert viewers.youtube.daily_quota_units == 50_000
    assert viewers.twitch.tls is False and viewers.twitch.port == 6697
    monkeypatch.delenv("TRADECAST_VIEWERS__SOURCES")
    assert load_settings().viewers.sources == ["local"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TRADECAST_VIEWERS__YOUTUBE__DAILY_QUOTA_UNITS", "100000000"),
        ("TRADECAST_VIEWERS__TWITCH__PORT", "70000"),
        ("TRADECAST_VIEWERS__TWITCH__TLS", "1"),
        ("TRADECAST_VIEWERS__TWITCH__CHANNEL", "no spaces"),
        ("TRADECAST_VIEWERS__SOURCES", '["twitch", "twitch"]'),
        ("TRADECAST_VIEWERS__SOURCES", '["irc"]'),
    ],
)
def test_bad_viewer_settings_fail_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    from tradecast.errors import SettingsError

    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()

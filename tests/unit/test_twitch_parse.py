"""Twitch IRC parsing (lines, IRCv3 tags and their escapes, badges, PRIVMSG -> ViewerMessage),
and the connection policy the sources share (backoff, the auth limiter, the message buffer)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support.fake_twitch import escape_tag_value, privmsg_line
from tradecast.domain.viewers import MAX_BADGES, MAX_NAME_CHARS, MAX_TEXT_CHARS, ViewerMessage
from tradecast.errors import ChatSourceError
from tradecast.settings import TwitchConfig
from tradecast.viewers.base import Backoff, MessageBuffer, RecentIds, SourceStats
from tradecast.viewers.twitch import (
    AuthRateLimiter,
    TwitchChatSource,
    parse_badges,
    parse_line,
    parse_tags,
    to_viewer_message,
    unescape_tag_value,
)

AT = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)
no_deadline = settings(deadline=None)  # a busy shared core must not fail a parser test

# From Twitch's IRC reference (tags, PRIVMSG), byte for byte.
DOC_PRIVMSG = (
    "@badge-info=;badges=turbo/1;color=#0D4200;display-name=ronni;emotes=25:0-4,12-16/1902:6-10;"
    "id=b34ccfc7-4977-403a-8a94-33c6bac34fb8;mod=0;room-id=1337;subscriber=0;"
    "tmi-sent-ts=1507246572675;turbo=1;user-id=1337;user-type=global_mod "
    ":ronni!ronni@ronni.tmi.twitch.tv PRIVMSG #ronni :Kappa Keepo Kappa"
)
DOC_SUBSCRIBER = (
    "@badge-info=subscriber/8;badges=subscriber/6,premium/1;color=#1E90FF;"
    "display-name=FooBar;emotes=;first-msg=0;flags=;id=1a2b3c4d-0000-4000-8000-abcdefabcdef;"
    "mod=0;returning-chatter=0;room-id=713936733;subscriber=1;tmi-sent-ts=1642696567751;"
    "turbo=0;user-id=713936733;user-type= :foobar!foobar@foobar.tmi.twitch.tv "
    "PRIVMSG #bar :hey\\s;there"
)


def viewer(line: str) -> ViewerMessage:
    msg = parse_line(line)
    assert msg is not None
    message = to_viewer_message(msg, AT)
    assert message is not None
    return message


# --- lines ---------------------------------------------------------------------------------


def test_a_privmsg_from_twitchs_docs_parses_into_tags_prefix_command_and_params() -> None:
    msg = parse_line(DOC_PRIVMSG + "\r\n")
    assert msg is not None
    assert msg.command == "PRIVMSG"
    assert msg.prefix == "ronni!ronni@ronni.tmi.twitch.tv"
    assert msg.nick == "ronni"
    assert msg.params == ("#ronni", "Kappa Keepo Kappa")
    assert msg.tags["emotes"] == "25:0-4,12-16/1902:6-10"
    assert msg.tags["badge-info"] == ""
    assert msg.tags["user-type"] == "global_mod"


@pytest.mark.parametrize(
    ("line", "command", "params"),
    [
        ("PING :tmi.twitch.tv", "PING", ("tmi.twitch.tv",)),
        (":tmi.twitch.tv RECONNECT", "RECONNECT", ()),
        (
            ":tmi.twitch.tv CAP * ACK :twitch.tv/tags twitch.tv/commands",
            "CAP",
            ("*", "ACK", "twitch.tv/tags twitch.tv/commands"),
        ),
        (":tmi.twitch.tv 001 bot :Welcome, GLHF!", "001", ("bot", "Welcome, GLHF!")),
        (
            ":tmi.twitch.tv NOTICE * :Login authentication failed",
            "NOTICE",
            ("*", "Login authentication failed"),
        ),
        (":bot!bot@bot.tmi.twitch.tv JOIN #chan", "JOIN", ("#chan",)),
        (":tmi.twitch.tv PONG tmi.twitch.tv :tradecast", "PONG", ("tmi.twitch.tv", "tradecast")),
        ("privmsg #chan :lower-case command", "PRIVMSG", ("#chan", "lower-case command")),
        (":n!n@h PRIVMSG #c :", "PRIVMSG", ("#c", "")),
        (
            ":n!n@h PRIVMSG #c :a :colon and  two spaces",
            "PRIVMSG",
            ("#c", "a :colon and  two spaces"),
        ),
    ],
)
def test_server_lines(line: str, command: str, params: tuple[str, ...]) -> None:
    msg = parse_line(line)
    assert msg is not None
    assert (msg.command, msg.params) == (command, params)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "\r\n",
        "   ",
        "@",
        "@a=b",
        "@a=b ",
        ":prefix-only",
        ": PRIVMSG #c :x",
        "::",
        "@a=b :p",
        ":p !!! #c :x",
        "PRI\x00VMSG #c :x",
        "\u00e9t\u00e9 #c :x",
    ],
)
def test_malformed_lines_are_none(line: str) -> None:
    assert parse_line(line) is None


@no_deadline
@given(st.text(max_size=300))
def test_no_text_makes_the_parser_raise(line: str) -> None:
    msg = parse_line(line)
    if msg is not None:
        to_viewer_message(msg, AT)  # whatever it is, mapping it never raises either


@no_deadline
@given(st.binary(max_size=300))
def test_no_bytes_make_the_parser_raise(raw: bytes) -> None:
    msg = parse_line(raw.decode("utf-8", errors="replace"))
    if msg is not None:
        to_viewer_message(msg, AT)


# --- tags ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("plain", "plain"),
        ("a\\sb", "a b"),
        ("semi\\:colon", "semi;colon"),
        ("back\\\\slash", "back\\slash"),
        ("cr\\rlf\\n", "cr\rlf\n"),
        ("\\s\\s", "  "),
        ("\\\\s", "\\s"),  # an escaped backslash, then a plain s
        ("unknown\\x", "unknownx"),  # IRCv3: drop the backslash before anything else
        ("trailing\\", "trailing"),  # IRCv3: a lone backslash at the end is dropped
        ("", ""),
    ],
)
def test_tag_value_escapes(raw: str, value: str) -> None:
    assert unescape_tag_value(raw) == value


@no_deadline
@given(st.text(max_size=100))
def test_escaping_then_unescaping_gives_the_value_back(value: str) -> None:
    assert unescape_tag_value(escape_tag_value(value)) == value


def test_tags_without_a_value_or_with_a_repeated_key() -> None:
    assert parse_tags("a;b=;c=1;;=lost;c=2") == {"a": "", "b": "", "c": "2"}
    assert parse_tags("client-nonce=x;+example.com/foo=bar") == {
        "client-nonce": "x",
        "+example.com/foo": "bar",
    }


def test_an_escaped_tag_value_in_a_whole_line() -> None:
    line = privmsg_line(channel="c", login="viewer", text="hi", display_name="A Name; \\ x")
    msg = parse_line(line)
    assert msg is not None
    assert msg.tags["display-name"] == "A Name; \\ x"


# --- badges --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "badges"),
    [
        ("", ()),
        ("broadcaster/1,subscriber/12", ("broadcaster/1", "subscriber/12")),
        ("moderator/1,", ("moderator/1",)),
        (",,vip/1,,", ("vip/1",)),
    ],
)
def test_badges(raw: str, badges: tuple[str, ...]) -> None:
    assert parse_badges(raw) == badges


def test_badges_are_bounded_in_count_and_length() -> None:
    many = parse_badges(",".join(f"b{n}/1" for n in range(100)))
    assert len(many) == MAX_BADGES
    (long,) = parse_badges("x" * 1000 + "/1")
    assert len(long) == 64


# --- PRIVMSG -> ViewerMessage ----------------------------------------------------------------


def test_the_docs_privmsg_maps_every_field() -> None:
    message = viewer(DOC_PRIVMSG)
    assert message.model_dump() == {
        "id": "b34ccfc7-4977-403a-8a94-33c6bac34fb8",
        "platform": "twitch",
        "channel": "ronni",
        "viewer_id": "1337",
        "display_name": "ronni",
        "text": "Kappa Keepo Kappa",
        "badges": ("turbo/1",),
        "is_mod": False,
        "is_subscriber": False,
        "is_broadcaster": False,
        "received_at": AT,
    }


def test_a_subscriber_with_badge_info_and_a_text_that_looks_escaped() -> None:
    message = viewer(DOC_SUBSCRIBER)
    assert message.display_name == "FooBar"
    assert message.is_subscriber and not message.is_mod
    assert message.badges == ("subscriber/6", "premium/1")
    assert message.text == "hey\\s;there"  # the message text is not a tag: no unescaping


@pytest.mark.parametrize(
    ("badges", "mod", "subscriber", "flags"),
    [
        ("moderator/1", False, False, (True, False, False)),  # mod by badge alone
        ("", True, False, (True, False, False)),  # mod by the mod tag alone
        ("broadcaster/1,subscriber/3012", False, True, (False, True, True)),
        ("founder/0", False, False, (False, True, False)),  # founders are subscribers
        ("vip/1,partner/1", False, False, (False, False, False)),
    ],
)
def test_mod_subscriber_and_broadcaster_flags(
    badges: str, mod: bool, subscriber: bool, flags: tuple[bool, bool, bool]
) -> None:
    message = viewer(
        privmsg_line(
            channel="desk", login="v", text="x", badges=badges, mod=mod, subscriber=subscriber
        )
    )
    assert (message.is_mod, message.is_subscriber, message.is_broadcaster) == flags


def test_missing_display_name_or_user_id_falls_back_to_the_login() -> None:
    line = privmsg_line(channel="Desk", login="quiet_one", text="x", display_name="")
    line = line.replace(";user-id=100200300", "")
    message = viewer(line)
    assert (message.display_name, message.viewer_id, message.channel) == (
        "quiet_one",
        "quiet_one",
        "desk",
    )


def test_a_privmsg_without_an_id_or_a_sender_is_skipped() -> None:
    no_id = parse_line(privmsg_line(channel="c", login="v", text="x").replace(";id=", ";xid="))
    assert no_id is not None and to_viewer_message(no_id, AT) is None
    no_tags = parse_line(privmsg_line(channel="c", login="v", text="x", with_tags=False))
    assert no_tags is not None and to_viewer_message(no_tags, AT) is None
    not_privmsg = parse_line(":tmi.twitch.tv 001 bot :Welcome")
    assert not_privmsg is not None and to_viewer_message(not_privmsg, AT) is None


def test_me_actions_lose_their_ctcp_wrapper() -> None:
    message = viewer(privmsg_line(channel="c", login="v", text="\x01ACTION waves\x01"))
    assert message.text == "waves"


def test_long_strings_are_clipped_not_refused() -> None:
    message = viewer(privmsg_line(channel="c", login="v", text="y" * 2000, display_name="N" * 500))
    assert len(message.text) == MAX_TEXT_CHARS
    assert len(message.display_name) == MAX_NAME_CHARS


def test_unicode_text_survives() -> None:
    message = viewer(privmsg_line(channel="c", login="v", text="hé 🚀 日本語 BTC?"))
    assert message.text == "hé 🚀 日本語 BTC?"


# --- the source's arguments ----------------------------------------------------------------


def test_a_token_without_a_nick_is_refused_without_showing_it() -> None:
    with pytest.raises(ChatSourceError, match="BOT_NICK") as caught:
        TwitchChatSource("desk", token="oauth:s3cr3t-token")
    assert "s3cr3t" not in str(caught.value)
    with pytest.raises(ChatSourceError, match="not a token") as caught:
        TwitchChatSource("desk", nick="bot", token="two words")
    assert "two" not in str(caught.value)


def test_a_channel_must_be_a_login() -> None:
    with pytest.raises(ChatSourceError, match="CHANNEL"):
        TwitchChatSource("no spaces allowed")
    assert TwitchChatSource("#TradeDesk").channel == "tradedesk"


def test_no_token_means_an_anonymous_justinfan() -> None:
    source = TwitchChatSource("desk", nick="ignored_without_token")
    assert source.anonymous
    assert source.nick.startswith("justinfan") and source.nick[9:].isdigit()


def test_from_config() -> None:
    config = TwitchConfig(channel="#Desk", bot_nick="Bot", token="oauth:abc", port=6667, tls=False)
    source = TwitchChatSource.from_config(config, queue_size=10)
    assert (source.channel, source.nick, source.anonymous, source.name) == (
        "desk",
        "bot",
        False,
        "twitch:#desk",
    )
    with pytest.raises(ChatSourceError, match="TRADECAST_VIEWERS__TWITCH__CHANNEL"):
        TwitchChatSource.from_config(TwitchConfig())


# --- backoff ---------------------------------------------------------------------------------


def test_backoff_grows_to_its_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(1.0, 30.0, jitter=0.5, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(10)]
    for n, delay in enumerate(delays):
        base = min(30.0, 2.0**n)
        assert base * 0.5 <= delay <= base
    assert max(delays) <= 30.0
    backoff.reset()
    assert backoff.attempts == 0
    assert 0.5 <= backoff.next_delay() <= 1.0


def test_backoff_never_overflows_after_a_long_outage() -> None:
    backoff = Backoff(0.5, 60.0, jitter=0.0)
    for _ in range(5000):
        delay = backoff.next_delay()
    assert delay == 60.0


def test_backoff_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        Backoff(10.0, 1.0)
    with pytest.raises(ValueError):
        Backoff(1.0, 2.0, jitter=2.0)


# --- the auth limiter (an injected clock: no waiting) ------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_the_auth_limiter_allows_20_logins_per_10_seconds_and_no_more() -> None:
    time = FakeTime()
    limiter = AuthRateLimiter(20, 10.0, margin_s=0.5, clock=time.clock, sleep=time.sleep)
    stamps = []
    for _ in range(65):
        await limiter.acquire()
        stamps.append(time.now)
    # No window of 10 s (plus the margin) ever holds more than 20 logins.
    for first, later in zip(stamps, stamps[20:], strict=False):
        assert later - first >= 10.5
    assert stamps[:20] == [100.0] * 20  # a burst under the limit waits for nothing
    assert len(time.sleeps) == 3


async def test_the_auth_limiter_forgets_old_logins() -> None:
    time = FakeTime()
    limiter = AuthRateLimiter(2, 1.0, margin_s=0.0, clock=time.clock, sleep=time.sleep)
    await limiter.acquire()
    await limiter.acquire()
    assert limiter.wait_s() == pytest.approx(1.0)
    time.now += 5
    assert limiter.wait_s() == 0.0


# --- the buffer and the recent ids --------------------------------------------------------------


def message(n: int) -> ViewerMessage:
    return ViewerMessage(
        id=f"m{n}",
        platform="local",
        channel="c",
        viewer_id="v",
        display_name="V",
        text=str(n),
        received_at=AT,
    )


async def test_a_full_buffer_drops_the_oldest_and_counts_it() -> None:
    stats = SourceStats()
    buffer = MessageBuffer(3, stats)
    for n in range(5):
        buffer.put(message(n))
    assert (stats.received, stats.dropped, len(buffer)) == (5, 2, 3)
    assert [(await buffer.get()).text for _ in range(3)] == ["2", "3", "4"]  # type: ignore[union-attr]


async def test_a_failure_comes_after_the_queued_messages() -> None:
    buffer = MessageBuffer(10, SourceStats())
    buffer.put(message(1))
    buffer.fail(ChatSourceError("twitch", "refused"))
    got = await buffer.get()
    assert got is not None and got.id == "m1"
    with pytest.raises(ChatSourceError, match="refused"):
        await buffer.get()


async def test_close_wakes_a_waiting_reader() -> None:
    buffer = MessageBuffer(10, SourceStats())
    reader = asyncio.create_task(buffer.get())
    await asyncio.sleep(0)
    buffer.close()
    assert await reader is None


def test_recent_ids_remember_a_bounded_window() -> None:
    recent = RecentIds(3)
    assert [recent.seen(i) for i in ("a", "b", "a", "c", "d")] == [False, False, True, False, False]
    assert not recent.seen("b")  # pushed out by c and d
    assert recent.seen("d")

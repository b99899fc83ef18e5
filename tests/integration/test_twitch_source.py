"""The Twitch chat source against a fake Twitch IRC server on loopback (tests/support).

Nothing here passes by timing: each step waits for a state (a connection joined, n messages
queued) and the assertions are about which messages arrived, how often and in what order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from support.fake_twitch import FakeTwitch, tls_available
from tradecast.domain.viewers import ViewerMessage
from tradecast.errors import ChatSourceError
from tradecast.viewers.base import Backoff, ChatSource
from tradecast.viewers.twitch import TwitchChatSource

CHANNEL = "tradedesk"
NICK, TOKEN = "tradecastbot", "k9x2vq8d7e6f5g4h3j2l1m0n"


@pytest.fixture
async def server() -> AsyncIterator[FakeTwitch]:
    async with FakeTwitch(tokens={NICK: TOKEN}) as fake:
        yield fake


Factory = Callable[..., TwitchChatSource]


@pytest.fixture
async def make_source(server: FakeTwitch) -> AsyncIterator[Factory]:
    made: list[TwitchChatSource] = []

    def make(fake: FakeTwitch | None = None, **options: Any) -> TwitchChatSource:
        fake = fake or server
        options.setdefault("nick", NICK)
        options.setdefault("token", f"oauth:{TOKEN}")
        options.setdefault("tls", False)
        options.setdefault("backoff", Backoff(0.05, 0.2))
        options.setdefault("connect_timeout_s", 5.0)
        source = TwitchChatSource(f"#{CHANNEL.upper()}", host=fake.host, port=fake.port, **options)
        made.append(source)
        return source

    yield make
    for source in made:
        await source.close()


class Collector:
    """Reads a source in the background, as the persona's queue will."""

    def __init__(self, source: ChatSource) -> None:
        self.source = source
        self.messages: list[ViewerMessage] = []
        self.error: BaseException | None = None
        self.task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        try:
            async for message in self.source.messages():
                self.messages.append(message)
        except ChatSourceError as exc:
            self.error = exc

    @property
    def ids(self) -> list[str]:
        return [m.id for m in self.messages]

    async def wait_for(self, count: int, timeout: float = 20.0) -> None:
        await eventually(lambda: len(self.messages) >= count or self.task.done(), timeout)
        assert len(self.messages) >= count, f"{len(self.messages)} of {count}; error={self.error}"


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for a state of the client (it has no events to wait on)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def send_batch(server: FakeTwitch, start: int, count: int, pace_s: float = 0.0) -> list[str]:
    ids = []
    for n in range(start, start + count):
        ids.append(
            await server.send_privmsg(
                CHANNEL,
                msg_id=f"msg-{n:05d}",
                login=f"viewer{n % 7}",
                user_id=str(5000 + n % 7),
                text=f"message {n}",
            )
        )
        if pace_s:
            await asyncio.sleep(pace_s)
    return ids


async def test_login_handshake_then_a_privmsg_with_every_field(
    server: FakeTwitch, make_source: Factory
) -> None:
    source = make_source()
    collector = Collector(source)
    await server.wait_until(lambda: len(server.joined(CHANNEL)) == 1)
    (conn,) = server.joined(CHANNEL)
    assert conn.lines[:4] == [
        f"PASS oauth:{TOKEN}",
        f"NICK {NICK}",
        "CAP REQ :twitch.tv/tags twitch.tv/commands",
        f"JOIN #{CHANNEL}",
    ]
    await server.send_privmsg(
        CHANNEL,
        msg_id="885196de-cb67-427a-baa8-82f9b0fcd05f",
        login="streamer",
        user_id="12826",
        display_name="Streamer",
        badges="broadcaster/1,subscriber/3012",
        badge_info="subscriber/52",
        subscriber=True,
        text="hi chat, what does the desk think of BTC?",
    )
    await server.send_privmsg(
        CHANNEL,
        login="helper",
        user_id="77",
        display_name="Helper\u2122",
        badges="moderator/1",
        mod=True,
        text="\x01ACTION waves\x01",
    )
    await collector.wait_for(2)
    first, second = collector.messages
    assert first.model_dump(exclude={"received_at"}) == {
        "id": "885196de-cb67-427a-baa8-82f9b0fcd05f",
        "platform": "twitch",
        "channel": CHANNEL,
        "viewer_id": "12826",
        "display_name": "Streamer",
        "text": "hi chat, what does the desk think of BTC?",
        "badges": ("broadcaster/1", "subscriber/3012"),
        "is_mod": False,
        "is_subscriber": True,
        "is_broadcaster": True,
    }
    assert (second.display_name, second.text, second.is_mod) == ("Helper\u2122", "waves", True)
    assert source.stats.connections == 1


@pytest.mark.slow
async def test_a_thousand_messages_at_20_per_second_through_a_reconnect(
    server: FakeTwitch, make_source: Factory
) -> None:
    source = make_source()
    collector = Collector(source)
    await server.wait_until(lambda: len(server.joined(CHANNEL)) == 1)
    first = server.joined(CHANNEL)[0]
    sent = await send_batch(server, 0, 500, pace_s=0.05)
    await server.reconnect(first)  # Twitch restarts that server; chat goes on meanwhile
    sent += await send_batch(server, 500, 500, pace_s=0.05)
    await collector.wait_for(1000, timeout=30)
    assert collector.ids == sent  # each id once, in the order sent
    assert len(server.ever_joined(CHANNEL)) == 2
    assert first.closed_by == "client"  # the client let the old one go, after the new joined
    assert all(m.channel == CHANNEL and m.platform == "twitch" for m in collector.messages)
    assert collector.messages[7].viewer_id == "5000" and collector.messages[7].text == "message 7"


async def test_reconnect_overlaps_connections_and_loses_nothing(
    server: FakeTwitch, make_source: Factory
) -> None:
    source = make_source()
    collector = Collector(source)
    await server.wait_until(lambda: len(server.joined(CHANNEL)) == 1)
    old = server.joined(CHANNEL)[0]
    sent = await send_batch(server, 0, 30)
    await server.reconnect(old)
    sent += await send_batch(server, 30, 30)  # while the client opens its new connection
    await server.wait_until(lambda: len(server.ever_joined(CHANNEL)) == 2)
    new = server.ever_joined(CHANNEL)[1]
    sent += await send_batch(server, 60, 30)  # may reach both connections: delivered once
    await collector.wait_for(90)
    assert collector.ids == sent
    await server.wait_until(lambda: old.closed)
    assert old.closed_by == "client" and not new.closed
    # What reached both connections and was read on both was skipped once, not delivered twice.
    assert source.stats.duplicates <= len(old.sent_ids) + len(new.sent_ids) - 90
    assert source.stats.connections == 2


async def test_a_dropped_socket_keeps_what_was_received_and_reconnects(
    server: FakeTwitch, make_source: Factory
) -> None:
    source = make_source()
    source.start()  # nobody reads yet: what arrives waits in the source's queue
    await server.wait_until(lambda: len(server.joined(CHANNEL)) == 1)
    (conn,) = server.joined(CHANNEL)
    before = await send_batch(server, 0, 40)
    await eventually(lambda: source.queued == 40)
    server.drop(conn)  # a reset, mid-stream
    lost = await send_batch(server, 40, 10)  # nobody is joined now: lost, as on Twitch
    assert server.joined(CHANNEL) == []
    await server.wait_until(lambda: len(server.joined(CHANNEL)) == 1)
    after = await send_batch(server, 50, 40)
    collector = Collector(source)
    await collector.wait_for(80)
    assert collector.ids == before + after
    assert not set(lost) & set(collector.ids)
    assert source.stats.connections == 2 and source.stats.dropped == 0


async def test_the_servers_ping_is_answered(server: FakeTwitch, make_source: Factory) -> None:
    make_source().start()
    await server.wait_until(lambda: len(server.joined(CHANNEL)) == 1)
    (conn,) = server.joined(CHANNEL)
    await server.ping(conn)
    await server.wait_until(lambda: "PONG :tmi.twitch.tv" in conn.lines)


async def test_a_silent_server_gets_pinged_and_the_connection_stays(
    server: FakeTwitch, make_source: Factory
) -> None:
    make_source(idle_ping_s=0.1, pong_timeout_s=2.0).start()
    await server.wait_until(lambda: len(server.joined(CHANNEL)) == 1)
    (conn,) = server.joined(CHANNEL)
    # A second PING on the same connection: the first one's PONG kept it up.
    await server.wait_until(lambda: conn.lines.count("PING :tradecast") >= 2)
    assert len(server.connections) == 1 and not conn.closed


async def test_no_pong_means_reconnect() -> None:
    async with FakeTwitch(tokens={NICK: TOKEN}, answer_pings=False) as mute:
        source = TwitchChatSource(
            CHANNEL,
            nick=NICK,
            token=TOKEN,
            host=mute.host,
            port=mute.port,
            tls=False,
            idle_ping_s=0.1,
            pong_timeout_s=0.2,
            backoff=Backoff(0.01, 0.05),
        )
        try:
            source.start()
            await mute.wait_until(lambda: len(mute.ever_joined(CHANNEL)) >= 2)
            first = mute.connections[0]
            assert "PING :tradecast" in first.lines
            await mute.wait_until(lambda: first.closed)
            assert first.closed_by == "client"
        finally:
            await source.close()


async def test_a_rejected_token_is_a_permanent_error(
    server: FakeTwitch, make_source: Factory
) -> None:
    source = make_source(token="oauth:not-the-right-one")
    with pytest.raises(ChatSourceError, match="Login authentication failed") as caught:
        async for _ in source.messages():
            pass
    assert "not-the-right-one" not in str(caught.value)
    assert "TRADECAST_VIEWERS__TWITCH__TOKEN" in str(caught.value)
    assert len(server.auth_attempts[NICK]) == 1  # not retried


async def test_improperly_formatted_auth_is_a_permanent_error(make_source: Factory) -> None:
    async with FakeTwitch(reject_auth_with="Improperly formatted auth") as picky:
        collector = Collector(make_source(picky))
        await asyncio.wait_for(collector.task, 10)
        assert isinstance(collector.error, ChatSourceError)
        assert "Improperly formatted auth" in str(collector.error)
        assert len(picky.connections) == 1


async def test_a_suspended_channel_is_a_permanent_error(make_source: Factory) -> None:
    async with FakeTwitch(tokens={NICK: TOKEN}, suspended=frozenset({CHANNEL})) as fake:
        collector = Collector(make_source(fake))
        await asyncio.wait_for(collector.task, 10)
        assert "msg_channel_suspended" in str(collector.error)


async def test_anonymous_read_only_login(server: FakeTwitch, make_source: Factory) -> None:
    source = make_source(token="", nick="")
    collector = Collector(source)
    await server.wait_until(lambda: len(server.joined(CHANNEL)) == 1)
    (conn,) = server.joined(CHANNEL)
    assert not any(line.startswith("PASS") for line in conn.lines)
    assert conn.lines[0] == f"NICK {source.nick}" and source.nick.startswith("justinfan")
    sent = await send_batch(server, 0, 5)
    await collector.wait_for(5)
    assert collector.ids == sent


@pytest.mark.skipif(not tls_available(), reason="cryptography is needed for a test certificate")
async def test_tls(make_source: Factory) -> None:
    async with FakeTwitch(tokens={NICK: TOKEN}, tls=True) as secure:
        collector = Collector(make_source(secure, tls=secure.client_ssl_context()))
        await secure.wait_until(lambda: len(secure.joined(CHANNEL)) == 1)
        sent = await send_batch(secure, 0, 3)
        await collector.wait_for(3)
        assert collector.ids == sent


async def test_a_server_that_refuses_the_certificate_check_is_retried_not_fatal(
    make_source: Factory,
) -> None:
    if not tls_available():
        pytest.skip("cryptography is needed for a test certificate")
    async with FakeTwitch(tokens={NICK: TOKEN}, tls=True) as secure:
        source = make_source(secure, tls=True)  # the system CAs do not trust the fake's cert
        collector = Collector(source)
        await eventually(lambda: source.stats.failures >= 2)
        assert not collector.task.done() and secure.ever_joined(CHANNEL) == []


async def test_a_flapping_server_never_gets_logins_faster_than_the_auth_limit() -> None:
    limit, window = 3, 1.0
    async with FakeTwitch(
        tokens={NICK: TOKEN}, auth_limit=limit, auth_window_s=window, drop_after_join=True
    ) as flapping:
        source = TwitchChatSource(
            CHANNEL,
            nick=NICK,
            token=TOKEN,
            host=flapping.host,
            port=flapping.port,
            tls=False,
            backoff=Backoff(0.0, 0.0),
            auth_attempts=limit,
            auth_window_s=window,
        )
        try:
            source.start()
            await flapping.wait_until(lambda: len(flapping.auth_attempts.get(NICK, [])) >= 7)
        finally:
            await source.close()
        arrivals = flapping.auth_attempts[NICK]
        assert flapping.rate_limited == 0
        for first, later in zip(arrivals, arrivals[limit:], strict=False):
            assert later - first >= window
        assert source.stats.connections >= 6  # it did keep reconnecting, with no backoff


async def test_close_ends_the_reader_and_the_connection(
    server: FakeTwitch, make_source: Factory
) -> None:
    source = make_source()
    collector = Collector(source)
    await server.wait_until(lambda: len(server.joined(CHANNEL)) == 1)
    (conn,) = server.joined(CHANNEL)
    await source.close()
    await asyncio.wait_for(collector.task, 5)
    assert collector.error is None
    await server.wait_until(lambda: conn.closed)
    await source.close()  # twice is fine


async def test_nothing_listening_is_retried_quietly() -> None:
    async with FakeTwitch() as gone:
        port = gone.port
    source = TwitchChatSource(
        CHANNEL, host="127.0.0.1", port=port, tls=False, backoff=Backoff(0.01, 0.02)
    )
    collector = Collector(source)
    with contextlib.suppress(TimeoutError):
        await eventually(lambda: source.stats.failures >= 3, timeout=5)
    assert source.stats.failures >= 3 and not collector.task.done()
    await source.close()

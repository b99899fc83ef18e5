"""Twitch chat over IRC (``irc.chat.twitch.tv:6697``, TLS), as Twitch's chatbot guide has it.

A connection sends ``PASS oauth:<token>`` and ``NICK <login>`` (or, with no token, only
``NICK justinfanNNNNN``: anonymous and read-only), ``CAP REQ :twitch.tv/tags
twitch.tv/commands``, waits for the welcome (``001``) and ``CAP * ACK``, then ``JOIN
#channel`` and waits for its echo. Each ``PRIVMSG`` becomes a
:class:`~tradecast.domain.viewers.ViewerMessage` from its IRCv3 tags (``id``, ``user-id``,
``display-name``, ``badges``, ``mod``, ``subscriber``; values unescaped as IRCv3 says: ``\\s``
space, ``\\:`` semicolon, ``\\\\`` backslash, ``\\r``, ``\\n``).

Keeping the connection:

- ``PING`` is answered with ``PONG``; when the server has been silent for ``idle_ping_s`` the
  client sends its own ``PING`` and reconnects if nothing comes back within ``pong_timeout_s``.
- ``RECONNECT`` (Twitch is restarting that server): a new connection is opened at once while
  the old one keeps being read until the new one has joined, as Twitch advises; messages seen
  on both are delivered once (by ``id``).
- A dropped socket or a failed connect: reconnect after a :class:`~tradecast.viewers.base.Backoff`
  delay, reset once a connection stayed up ``stable_after_s``.
- Every login passes the auth limiter: Twitch allows 20 authentication attempts per 10 s per
  user, so no failure pattern can make the client reconnect in a tight loop.
- ``NOTICE * :Login authentication failed`` / ``Improperly formatted auth``, a refused
  capability, or a suspended channel: :class:`~tradecast.errors.ChatSourceError`, no retry.

Messages sent while no connection is joined are lost (Twitch keeps no history for IRC
clients); messages already received wait in the source's bounded queue across reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import SecretStr, ValidationError

from tradecast.domain.base import utc_now
from tradecast.domain.viewers import (
    MAX_BADGE_CHARS,
    MAX_BADGES,
    MAX_CHANNEL_CHARS,
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_TEXT_CHARS,
    ViewerMessage,
    clip,
)
from tradecast.errors import ChatSourceError
from tradecast.logs import get_logger
from tradecast.settings import TwitchConfig
from tradecast.viewers.base import BackgroundSource, Backoff

log = get_logger(__name__)

DEFAULT_HOST = "irc.chat.twitch.tv"
DEFAULT_TLS_PORT = 6697
CAPABILITIES = "twitch.tv/tags twitch.tv/commands"
AUTH_ATTEMPTS = 20
AUTH_WINDOW_S = 10.0
"""Twitch: at most 20 authentication attempts per 10 seconds per user (normal accounts)."""
MAX_LINE_BYTES = 64 * 1024
"""Twitch lines are up to 8 KiB of tags plus a 512-byte message; longer ones are skipped."""
PING_TEXT = "tradecast"
TOKEN_SETTING = "TRADECAST_VIEWERS__TWITCH__TOKEN"
NICK_SETTING = "TRADECAST_VIEWERS__TWITCH__BOT_NICK"
CHANNEL_SETTING = "TRADECAST_VIEWERS__TWITCH__CHANNEL"

_LOGIN = re.compile(r"^[a-z0-9_]{1,25}$")
_TAG_ESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_TAG_ESCAPE = re.compile(r"\\(.?)", re.S)
_AUTH_FAILURES = ("login authentication failed", "improperly formatted auth", "login unsuccessful")
_CHANNEL_GONE = frozenset({"msg_channel_suspended", "msg_banned", "msg_channel_blocked"})
_ACTION_START, _ACTION_END = "\x01ACTION ", "\x01"

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


# --- parsing: pure functions, no I/O -------------------------------------------------------


@dataclass(frozen=True)
class IrcMessage:
    """One IRC line: its IRCv3 tags (unescaped), prefix, command and parameters."""

    tags: Mapping[str, str]
    prefix: str
    """``nick!user@host`` or a server name; "" when the line has none."""
    command: str
    """Upper-case: ``PRIVMSG``, ``PING``, ``001``..."""
    params: tuple[str, ...]
    """Middle parameters, then the trailing one (after `` :``) if any."""

    @property
    def nick(self) -> str:
        """The sender's nick (lower-case) from the prefix; "" when there is none."""
        return self.prefix.partition("!")[0].lower()


def unescape_tag_value(raw: str) -> str:
    """An IRCv3 tag value unescaped: ``\\:`` ``\\s`` ``\\\\`` ``\\r`` ``\\n``; a backslash before
    any other character is dropped, and so is a lone backslash at the end (as the spec says)."""
    if "\\" not in raw:
        return raw
    return _TAG_ESCAPE.sub(lambda m: _TAG_ESCAPES.get(m.group(1), m.group(1)), raw)


def parse_tags(raw: str) -> dict[str, str]:
    """``key=value;key2=value2`` (without the ``@``) as a dict; a key without ``=`` is ""."""
    tags: dict[str, str] = {}
    for item in raw.split(";"):
        key, _, value = item.partition("=")
        if key:
            tags[key] = unescape_tag_value(value)  # a repeated key: the last one wins
    return tags


def parse_line(line: str) -> IrcMessage | None:
    """One IRC line (with or without its CRLF) parsed; None for anything malformed."""
    rest = line.rstrip("\r\n")
    if not rest.strip() or "\x00" in rest:
        return None
    tags: dict[str, str] = {}
    if rest.startswith("@"):
        raw_tags, sep, rest = rest[1:].partition(" ")
        if not sep:
            return None
        tags = parse_tags(raw_tags)
        rest = rest.lstrip(" ")
    prefix = ""
    if rest.startswith(":"):
        prefix, sep, rest = rest[1:].partition(" ")
        if not sep or not prefix:
            return None
        rest = rest.lstrip(" ")
    middle, sep, trailing = rest.partition(" :")
    words = middle.split()
    if not words or not words[0].isascii() or not words[0].isalnum():
        return None
    params = tuple(words[1:]) + ((trailing,) if sep else ())
    return IrcMessage(tags=tags, prefix=prefix, command=words[0].upper(), params=params)


def parse_badges(raw: str) -> tuple[str, ...]:
    """The ``badges`` tag (``broadcaster/1,subscriber/12``) as a tuple, bounded in count and
    length; empty entries are skipped."""
    badges = [clip(b.strip(), MAX_BADGE_CHARS) for b in raw.split(",")]
    return tuple(b for b in badges if b)[:MAX_BADGES]


def to_viewer_message(msg: IrcMessage, received_at: datetime) -> ViewerMessage | None:
    """A ``PRIVMSG`` as a ViewerMessage (strings clipped to their bounds); None for any other
    line, or a PRIVMSG without the ``id`` tag or a sender."""
    if msg.command != "PRIVMSG" or len(msg.params) < 2:
        return None
    tags = msg.tags
    message_id = tags.get("id", "").strip()
    channel = msg.params[0].lstrip("#").lower()
    login = msg.nick
    viewer_id = tags.get("user-id", "").strip() or login
    if not message_id or not channel or not viewer_id:
        return None
    text = msg.params[-1]
    if text.startswith(_ACTION_START):  # "/me waves" arrives as CTCP ACTION
        text = text[len(_ACTION_START) :].removesuffix(_ACTION_END)
    badges = parse_badges(tags.get("badges", ""))
    kinds = {badge.partition("/")[0] for badge in badges}
    try:
        return ViewerMessage(
            id=clip(message_id, MAX_ID_CHARS),
            platform="twitch",
            channel=clip(channel, MAX_CHANNEL_CHARS),
            viewer_id=clip(viewer_id, MAX_ID_CHARS),
            display_name=clip(
                tags.get("display-name", "").strip() or login or viewer_id, MAX_NAME_CHARS
            ),
            text=clip(text, MAX_TEXT_CHARS),
            badges=badges,
            is_mod=tags.get("mod") == "1" or "moderator" in kinds,
            is_subscriber=tags.get("subscriber") == "1" or bool(kinds & {"subscriber", "founder"}),
            is_broadcaster="broadcaster" in kinds,
            received_at=received_at,
        )
    except ValidationError:  # clipped above, so only something truly odd ends here
        log.warning("twitch.unmappable_privmsg", id=message_id[:MAX_ID_CHARS])
        return None


# --- connection policy ---------------------------------------------------------------------


class AuthRateLimiter:
    """At most ``attempts`` logins in any ``window_s`` seconds; a login over it waits.

    ``margin_s`` widens the window a little, because the server counts arrivals and a login's
    arrival lags the moment this side counted it by the connect time.

    Args:
        attempts: logins allowed per window (Twitch: 20).
        window_s: the window (Twitch: 10 s).
        margin_s: added to the window.
        clock: monotonic seconds (tests inject one).
        sleep: how to wait (tests inject one).
    """

    def __init__(
        self,
        attempts: int = AUTH_ATTEMPTS,
        window_s: float = AUTH_WINDOW_S,
        *,
        margin_s: float = 0.5,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if attempts < 1 or window_s <= 0 or margin_s < 0:
            raise ValueError("the auth limit needs attempts >= 1, window_s > 0, margin_s >= 0")
        self._attempts = attempts
        self._span_s = window_s + margin_s
        self._times: deque[float] = deque(maxlen=attempts)
        self._clock = clock
        self._sleep = sleep

    def wait_s(self) -> float:
        """How long a login would have to wait now (0: it may go at once)."""
        if len(self._times) < self._attempts:
            return 0.0
        return max(0.0, self._times[0] + self._span_s - self._clock())

    async def acquire(self) -> None:
        """Wait until a login is allowed, then count it."""
        while (wait := self.wait_s()) > 0:
            log.info("twitch.auth_rate_limited", wait_s=round(wait, 3))
            await self._sleep(wait)
        self._times.append(self._clock())


# --- the source ----------------------------------------------------------------------------


class _Lost(Exception):
    """The connection is gone or stale (reconnect with backoff)."""


@dataclass(eq=False)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    number: int
    welcomed: bool = False
    cap_acked: bool = False
    registered: asyncio.Event = field(default_factory=asyncio.Event)
    joined: asyncio.Event = field(default_factory=asyncio.Event)
    reconnect: asyncio.Event = field(default_factory=asyncio.Event)
    joined_at: float | None = None
    task: asyncio.Task[None] | None = None

    def write(self, line: str) -> None:
        # One short line; the transport buffers it (drained by the login's writes).
        self.writer.write(line.encode("utf-8") + b"\r\n")

    async def send(self, *lines: str) -> None:
        for line in lines:
            self.write(line)
        await self.writer.drain()

    async def wait(self, event: asyncio.Event, what: str) -> None:
        """Wait for ``event``; raise what ended the reader if it ends first."""
        assert self.task is not None
        waiter = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({waiter, self.task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if event.is_set():
            return
        error = None if self.task.cancelled() else self.task.exception()
        raise error if error is not None else _Lost(f"connection closed before {what}")

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task
        self.writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await self.writer.wait_closed()


class TwitchChatSource(BackgroundSource):
    """A :class:`~tradecast.viewers.base.ChatSource` reading one Twitch channel's chat.

    Args:
        channel: the channel's login (a leading ``#`` and capitals are fine).
        nick: the login of the token's account; ignored without a token.
        token: a user access token with ``chat:read`` (``oauth:`` optional); empty: anonymous.
        host: the IRC server (tests: a loopback one).
        port: its port (6697 for TLS, 6667 plain).
        tls: True for TLS with the system's CAs, False for plain TCP, or an SSL context.
        queue_size: messages kept for the reader; past it the oldest are dropped.
        connect_timeout_s: connect, login and JOIN must finish within this.
        idle_ping_s: silence after which the client sends its own PING.
        pong_timeout_s: how long to wait for an answer to that PING before reconnecting.
        stable_after_s: a connection up this long resets the backoff.
        backoff: delays between reconnects; default 1 s doubling to 60 s with jitter.
        auth_attempts: logins allowed per ``auth_window_s`` (Twitch: 20 per 10 s).
        auth_window_s: the window of that limit.
        clock: monotonic seconds; sleep: how to wait (both for the limiter and the backoff).

    Raises:
        ChatSourceError: the channel is not a Twitch login, the token is malformed, or a token
            was given without ``nick``.
    """

    def __init__(
        self,
        channel: str,
        *,
        nick: str = "",
        token: str | SecretStr = "",
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_TLS_PORT,
        tls: bool | ssl.SSLContext = True,
        queue_size: int = 10_000,
        connect_timeout_s: float = 10.0,
        idle_ping_s: float = 60.0,
        pong_timeout_s: float = 10.0,
        stable_after_s: float = 30.0,
        backoff: Backoff | None = None,
        auth_attempts: int = AUTH_ATTEMPTS,
        auth_window_s: float = AUTH_WINDOW_S,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(queue_size)
        self.channel = channel.strip().lstrip("#").lower()
        self.name = f"twitch:#{self.channel}"
        if not _LOGIN.fullmatch(self.channel):
            raise ChatSourceError(
                "twitch", f"{CHANNEL_SETTING} must be a Twitch login (1-25 of a-z 0-9 _)"
            )
        secret = token.get_secret_value() if isinstance(token, SecretStr) else token
        secret = secret.strip().removeprefix("oauth:")
        if secret and not (secret.isascii() and secret.isprintable() and " " not in secret):
            raise ChatSourceError("twitch", f"{TOKEN_SETTING} is not a token (not shown here)")
        self._token = secret
        nick = nick.strip().lower()
        if secret and not _LOGIN.fullmatch(nick):
            raise ChatSourceError(
                "twitch", f"{NICK_SETTING} must be the login of the token's account"
            )
        if not secret and nick and not nick.startswith("justinfan"):
            log.warning("twitch.nick_ignored", reason="no token: reading anonymously")
        self.nick = nick if secret else f"justinfan{random.randint(10_000, 99_999)}"
        self.anonymous = not secret
        self._host = host
        self._port = port
        self._ssl: ssl.SSLContext | None = (
            tls
            if isinstance(tls, ssl.SSLContext)
            else ssl.create_default_context()
            if tls
            else None
        )
        self._connect_timeout_s = connect_timeout_s
        self._idle_ping_s = idle_ping_s
        self._pong_timeout_s = pong_timeout_s
        self._stable_after_s = stable_after_s
        self._backoff = backoff or Backoff(1.0, 60.0)
        self._limiter = AuthRateLimiter(auth_attempts, auth_window_s, clock=clock, sleep=sleep)
        self._clock = clock
        self._sleep = sleep
        self._connections: set[_Connection] = set()
        self._opened = 0

    @classmethod
    def from_config(cls, config: TwitchConfig, **options: Any) -> TwitchChatSource:
        """The source ``TRADECAST_VIEWERS__TWITCH__*`` describes (``options``: constructor
        arguments such as ``queue_size``).

        Raises:
            ChatSourceError: no channel is set, or the token/nick pair is not usable.
        """
        if not config.channel.strip("#"):
            raise ChatSourceError("twitch", f"set {CHANNEL_SETTING} to read Twitch chat")
        return cls(
            config.channel,
            nick=config.bot_nick,
            token=config.token,
            host=config.host,
            port=config.port,
            tls=config.tls,
            **options,
        )

    async def _release(self) -> None:
        for conn in list(self._connections):
            await self._stop(conn)

    # -- the supervisor: connect, watch, reconnect --

    async def _run(self) -> None:
        retiring: list[_Connection] = []  # said RECONNECT; read until the next one is in
        try:
            while True:
                await self._limiter.acquire()
                try:
                    conn = await self._open()
                except (OSError, TimeoutError, EOFError, _Lost) as exc:
                    await self._pause("twitch.connect_failed", exc)
                    continue
                for old in retiring:
                    await self._stop(old)
                retiring.clear()
                self.stats.connections += 1
                log.info(
                    "twitch.joined",
                    channel=self.channel,
                    connection=conn.number,
                    anonymous=self.anonymous,
                )
                outcome = await self._watch(conn)
                if outcome is None:
                    log.info("twitch.reconnect_requested", connection=conn.number)
                    retiring.append(conn)
                    continue
                await self._stop(conn)
                if conn.joined_at is not None and (
                    self._clock() - conn.joined_at >= self._stable_after_s
                ):
                    self._backoff.reset()
                await self._pause("twitch.connection_lost", outcome)
        except ChatSourceError as exc:
            log.error("twitch.stopped", error=str(exc))
            self._buffer.fail(exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: say so to the reader rather than hang it
            log.exception("twitch.crashed")
            self._buffer.fail(exc)
        finally:
            for conn in list(self._connections):
                await self._stop(conn)

    async def _pause(self, event: str, error: BaseException) -> None:
        self.stats.failures += 1
        delay = self._backoff.next_delay()
        log.warning(event, error=f"{type(error).__name__}: {error}", retry_in_s=round(delay, 3))
        await self._sleep(delay)

    async def _watch(self, conn: _Connection) -> BaseException | None:
        """Until the connection ends (what ended it) or asks to reconnect (None).

        Raises:
            ChatSourceError: the server refused something for good.
        """
        assert conn.task is not None
        waiter = asyncio.ensure_future(conn.reconnect.wait())
        try:
            await asyncio.wait({waiter, conn.task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if not conn.task.done():
            return None
        error = None if conn.task.cancelled() else conn.task.exception()
        if isinstance(error, ChatSourceError):
            raise error
        return error or _Lost("the reader stopped")

    async def _open(self) -> _Connection:
        """Connect, log in and join; the connection's reader runs from the first byte.

        Raises:
            ChatSourceError: the login or the channel was refused for good.
            OSError, TimeoutError, _Lost: anything worth another try.
        """
        self._opened += 1
        number = self._opened
        async with asyncio.timeout(self._connect_timeout_s):
            reader, writer = await asyncio.open_connection(
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._host if self._ssl else None,
                limit=MAX_LINE_BYTES,
            )
            conn = _Connection(reader, writer, number)
            self._connections.add(conn)
            conn.task = asyncio.create_task(self._read(conn), name=f"{self.name} #{number}")
            try:
                login = [] if self.anonymous else [f"PASS oauth:{self._token}"]
                await conn.send(*login, f"NICK {self.nick}", f"CAP REQ :{CAPABILITIES}")
                await conn.wait(conn.registered, "the welcome")
                await conn.send(f"JOIN #{self.channel}")
                await conn.wait(conn.joined, "the JOIN")
            except BaseException:
                await self._stop(conn)
                raise
        return conn

    async def _stop(self, conn: _Connection) -> None:
        self._connections.discard(conn)
        await conn.stop()

    # -- one connection's reader --

    async def _read(self, conn: _Connection) -> None:
        while True:
            line = await self._next_line(conn)
            msg = parse_line(line)
            if msg is None:
                if line.strip():
                    log.debug("twitch.unparsed_line", length=len(line))
                continue
            self._handle(conn, msg)

    async def _next_line(self, conn: _Connection) -> str:
        """The next line; a PING of ours after ``idle_ping_s`` of silence.

        Raises:
            _Lost: the server closed the connection or did not answer the PING.
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._idle_ping_s):
                return await self._read_line(conn)
        conn.write(f"PING :{PING_TEXT}")
        try:
            async with asyncio.timeout(self._pong_timeout_s):
                return await self._read_line(conn)
        except TimeoutError:
            raise _Lost(f"no answer to PING within {self._pong_timeout_s} s") from None

    @staticmethod
    async def _read_line(conn: _Connection) -> str:
        while True:
            try:
                raw = await conn.reader.readline()
            except ValueError:  # longer than MAX_LINE_BYTES: asyncio dropped it; skip it
                log.warning("twitch.line_too_long", limit=MAX_LINE_BYTES)
                continue
            if not raw.endswith(b"\n"):  # EOF (a partial line at EOF is no message)
                raise _Lost("closed by the server")
            return raw.decode("utf-8", errors="replace")

    def _handle(self, conn: _Connection, msg: IrcMessage) -> None:
        """Act on one line. Raises ChatSourceError for a permanent refusal."""
        command = msg.command
        if command == "PRIVMSG":
            self._received(msg)
        elif command == "PING":
            conn.write(f"PONG :{msg.params[-1] if msg.params else 'tmi.twitch.tv'}")
        elif command == "001":
            conn.welcomed = True
            self._check_registered(conn)
        elif command == "CAP" and len(msg.params) >= 2:
            if msg.params[1].upper() == "NAK":
                raise ChatSourceError(
                    "twitch", f"the server refused the capabilities {CAPABILITIES}"
                )
            if msg.params[1].upper() == "ACK":
                conn.cap_acked = True
                self._check_registered(conn)
        elif command == "JOIN" and msg.nick == self.nick:
            if msg.params and msg.params[0].lstrip("#").lower() == self.channel:
                conn.joined_at = self._clock()
                conn.joined.set()
        elif command == "NOTICE":
            self._notice(msg)
        elif command == "RECONNECT":
            conn.reconnect.set()

    def _check_registered(self, conn: _Connection) -> None:
        if conn.welcomed and conn.cap_acked:
            conn.registered.set()

    def _notice(self, msg: IrcMessage) -> None:
        text = msg.params[-1] if msg.params else ""
        if any(text.lower().startswith(failure) for failure in _AUTH_FAILURES):
            what = "the anonymous login" if self.anonymous else f"the login as {self.nick}"
            raise ChatSourceError(
                "twitch",
                f"Twitch refused {what} ({text!r}): check {TOKEN_SETTING} (a user access token "
                f"with chat:read) and {NICK_SETTING} (its account's login)",
            )
        msg_id = msg.tags.get("msg-id", "")
        if msg_id in _CHANNEL_GONE:
            raise ChatSourceError("twitch", f"cannot read #{self.channel}: {text} ({msg_id})")
        log.info("twitch.notice", msg_id=msg_id, text=text[:200])

    def _received(self, msg: IrcMessage) -> None:
        message = to_viewer_message(msg, utc_now())
        if message is None:
            log.debug("twitch.privmsg_skipped")
            return
        if message.channel != self.channel:
            return
        if self._recent.seen(message.id):
            self.stats.duplicates += 1
            return
        self._buffer.put(message)

"""A fake Twitch IRC server on loopback for the Twitch chat tests.

It speaks the protocol as ``irc.chat.twitch.tv`` does (lines as in Twitch's chatbot guide):
PASS before NICK (``justinfanNNNN`` may log in with no PASS, read-only), ``CAP * ACK`` to a
``CAP REQ`` of known capabilities, the 001-004 / 375 / 372 / 376 welcome, GLOBALUSERSTATE,
the JOIN echo with 353 / 366, USERSTATE and ROOMSTATE, ``PRIVMSG`` with Twitch's tags
(``badge-info``, ``badges``, ``color``, ``display-name``, ``emotes``, ``id``, ``mod``,
``subscriber``, ``tmi-sent-ts``, ``user-id``, ``user-type`` ...; tags only to connections that
requested them), ``PING`` / ``PONG``, ``RECONNECT``, and the real ``NOTICE * :Login
authentication failed`` / ``Improperly formatted auth`` before it closes the connection. It
enforces a per-user authentication rate limit (Twitch: 20 per 10 s) by closing the connection
of an attempt over it and counting it in :attr:`FakeTwitch.rate_limited`.

The test drives it: :meth:`FakeTwitch.send_privmsg` goes to every connection joined to the
channel at that moment (a connection that is not joined misses it, as on Twitch),
:meth:`FakeTwitch.reconnect` sends RECONNECT, :meth:`FakeTwitch.drop` cuts a socket abruptly.
Plain TCP, or TLS with a self-signed certificate made at start (needs ``cryptography``).

Its own line parsing is deliberately separate from the client's, so a parser bug in the
product cannot hide behind the same bug here.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import ssl
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVER = "tmi.twitch.tv"
KNOWN_CAPS = frozenset({"twitch.tv/tags", "twitch.tv/commands", "twitch.tv/membership"})
ROOM_ID = "71092938"


def tls_available() -> bool:
    """Whether a self-signed certificate can be made here (``cryptography`` installed)."""
    try:
        import cryptography  # noqa: F401
    except ImportError:
        return False
    return True


def escape_tag_value(value: str) -> str:
    """IRCv3 tag escaping, as Twitch writes tag values."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\:")
        .replace(" ", "\\s")
        .replace("\r", "\\r")
        .replace("\n", "\\n")
    )


def tag_string(tags: dict[str, str]) -> str:
    return "@" + ";".join(f"{k}={escape_tag_value(v)}" for k, v in tags.items())


def privmsg_line(
    *,
    channel: str,
    login: str,
    text: str,
    msg_id: str | None = None,
    user_id: str = "100200300",
    display_name: str | None = None,
    badges: str = "",
    badge_info: str = "",
    color: str = "#1E90FF",
    mod: bool = False,
    subscriber: bool = False,
    emotes: str = "",
    sent_ms: int | None = None,
    with_tags: bool = True,
) -> str:
    """A PRIVMSG line as Twitch sends it (tags in Twitch's order), without CRLF."""
    prefix = f":{login}!{login}@{login}.tmi.twitch.tv PRIVMSG #{channel} :{text}"
    if not with_tags:
        return prefix
    tags = {
        "badge-info": badge_info,
        "badges": badges,
        "client-nonce": uuid.uuid4().hex,
        "color": color,
        "display-name": display_name if display_name is not None else login,
        "emotes": emotes,
        "first-msg": "0",
        "flags": "",
        "id": msg_id or str(uuid.uuid4()),
        "mod": "1" if mod else "0",
        "returning-chatter": "0",
        "room-id": ROOM_ID,
        "subscriber": "1" if subscriber else "0",
        "tmi-sent-ts": str(sent_ms if sent_ms is not None else int(time.time() * 1000)),
        "turbo": "0",
        "user-id": user_id,
        "user-type": "mod" if mod else "",
    }
    return f"{tag_string(tags)} {prefix}"


@dataclass(eq=False)
class ClientConnection:
    """One client connected to the fake server, and what it sent."""

    number: int
    writer: asyncio.StreamWriter
    password: str | None = None
    nick: str = ""
    caps: set[str] = field(default_factory=set)
    authed: bool = False
    channels: set[str] = field(default_factory=set)
    lines: list[str] = field(default_factory=list)
    """Every line the client sent, in order, without CRLF."""
    sent_ids: list[str] = field(default_factory=list)
    """Ids of the PRIVMSGs written to this connection."""
    closed: bool = False
    closed_by: str = ""
    """"server" or "client" once closed."""

    def write(self, line: str) -> None:
        if not self.closed:
            self.writer.write(line.encode("utf-8") + b"\r\n")


class FakeTwitch:
    """The fake server; ``async with FakeTwitch() as server:`` starts and stops it.

    Args:
        tokens: login -> valid access token (without ``oauth:``).
        tls: serve TLS with a fresh self-signed certificate for 127.0.0.1.
        auth_limit: authentication attempts allowed per user per ``auth_window_s``.
        auth_window_s: the window of that limit.
        answer_pings: answer a client's PING with PONG (off: a server gone silent).
        drop_after_join: cut every connection right after its JOIN (a flapping server).
        reject_auth_with: answer every login with this NOTICE text and close.
        suspended: channels whose JOIN is refused with ``msg_channel_suspended``.
    """

    def __init__(
        self,
        *,
        tokens: dict[str, str] | None = None,
        tls: bool = False,
        auth_limit: int = 20,
        auth_window_s: float = 10.0,
        answer_pings: bool = True,
        drop_after_join: bool = False,
        reject_auth_with: str | None = None,
        suspended: frozenset[str] = frozenset(),
    ) -> None:
        self.tokens = dict(tokens or {})
        self.tls = tls
        self.auth_limit = auth_limit
        self.auth_window_s = auth_window_s
        self.answer_pings = answer_pings
        self.drop_after_join = drop_after_join
        self.reject_auth_with = reject_auth_with
        self.suspended = suspended
        self.host = "127.0.0.1"
        self.port = 0
        self.connections: list[ClientConnection] = []
        self.auth_attempts: dict[str, list[float]] = {}
        """Per login, the arrival times (monotonic) of its authentication attempts."""
        self.rate_limited = 0
        self._server: asyncio.Server | None = None
        self._cert_dir: tempfile.TemporaryDirectory[str] | None = None
        self._cert_pem = b""
        self._changed = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> FakeTwitch:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        context = self._server_context() if self.tls else None
        self._server = await asyncio.start_server(self._serve, self.host, 0, ssl=context)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for conn in self.connections:
            self._close(conn, "server", abort=True)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
        for task in list(self._handlers):
            task.cancel()
        if self._cert_dir is not None:
            self._cert_dir.cleanup()

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's certificate (and nothing else)."""
        return ssl.create_default_context(cadata=self._cert_pem.decode("ascii"))

    # -- what tests look at --

    def joined(self, channel: str) -> list[ClientConnection]:
        """Connections joined to ``#channel`` now, oldest first."""
        return [c for c in self.connections if channel in c.channels and not c.closed]

    def ever_joined(self, channel: str) -> list[ClientConnection]:
        return [c for c in self.connections if channel in c.channels]

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds (checked at every change of the server's state)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                changed = self._changed
                await changed.wait()

    # -- what tests do --

    async def send_privmsg(self, channel: str, **fields: Any) -> str:
        """A PRIVMSG to every connection joined to ``#channel`` now; its id."""
        msg_id = str(fields.pop("msg_id", None) or uuid.uuid4())
        for conn in self.joined(channel):
            line = privmsg_line(
                channel=channel,
                msg_id=msg_id,
                with_tags="twitch.tv/tags" in conn.caps,
                **fields,
            )
            conn.write(line)
            conn.sent_ids.append(msg_id)
        await self._drain(self.joined(channel))
        return msg_id

    async def send(self, conn: ClientConnection, line: str) -> None:
        conn.write(line)
        await self._drain([conn])

    async def ping(self, conn: ClientConnection) -> None:
        await self.send(conn, f"PING :{SERVER}")

    async def reconnect(self, conn: ClientConnection) -> None:
        """Tell the client to reconnect (the connection stays up until :meth:`close`)."""
        await self.send(conn, f":{SERVER} RECONNECT")

    def close(self, conn: ClientConnection) -> None:
        """Close the connection as a server does (what it wrote still arrives)."""
        self._close(conn, "server", abort=False)

    def drop(self, conn: ClientConnection) -> None:
        """Cut the socket at once (a reset: nothing more arrives, nothing is flushed)."""
        self._close(conn, "server", abort=True)

    # -- the protocol --

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        conn = ClientConnection(number=len(self.connections) + 1, writer=writer)
        self.connections.append(conn)
        self._notify()
        try:
            while not conn.closed:
                raw = await reader.readline()
                if not raw.endswith(b"\n"):
                    break
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                conn.lines.append(line)
                self._handle(conn, line)
                self._notify()
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            if not conn.closed:
                self._close(conn, "client", abort=False)
            self._handlers.discard(task)

    def _handle(self, conn: ClientConnection, line: str) -> None:
        command, _, rest = line.partition(" ")
        command = command.upper()
        argument = rest[1:] if rest.startswith(":") else rest
        if command == "PASS":
            conn.password = rest
        elif command == "NICK":
            self._login(conn, rest.strip().lower())
        elif command == "CAP":
            self._cap(conn, rest)
        elif command == "JOIN":
            self._join(conn, rest.strip().lstrip("#").lower())
        elif command == "PING":
            if self.answer_pings:
                conn.write(f":{SERVER} PONG {SERVER} :{argument}")
        elif command == "PONG":
            pass
        elif command == "PART":
            conn.channels.discard(rest.strip().lstrip("#").lower())
        elif conn.authed:
            conn.write(f":{SERVER} 421 {conn.nick} {command} :Unknown command")

    def _login(self, conn: ClientConnection, nick: str) -> None:
        conn.nick = nick
        now = time.monotonic()
        attempts = self.auth_attempts.setdefault(nick, [])
        recent = [t for t in attempts if now - t < self.auth_window_s]
        attempts.append(now)
        if len(recent) >= self.auth_limit:
            self.rate_limited += 1
            self._close(conn, "server", abort=False)
            return
        anonymous = nick.startswith("justinfan") and nick[9:].isdigit() and conn.password is None
        if self.reject_auth_with is not None:
            return self._refuse(conn, self.reject_auth_with)
        if not anonymous:
            if conn.password is None or not conn.password.startswith("oauth:"):
                return self._refuse(conn, "Improperly formatted auth")
            if self.tokens.get(nick) != conn.password.removeprefix("oauth:"):
                return self._refuse(conn, "Login authentication failed")
        conn.authed = True
        for code, text in (
            ("001", "Welcome, GLHF!"),
            ("002", f"Your host is {SERVER}"),
            ("003", "This server is rather new"),
            ("004", "-"),
            ("375", "-"),
            ("372", "You are in a maze of twisty passages, all alike."),
            ("376", ">"),
        ):
            conn.write(f":{SERVER} {code} {nick} :{text}")
        if not anonymous and "twitch.tv/commands" in conn.caps:
            conn.write(
                tag_string(
                    {
                        "badge-info": "",
                        "badges": "",
                        "color": "",
                        "display-name": nick,
                        "emote-sets": "0",
                        "user-id": "987654321",
                        "user-type": "",
                    }
                )
                + f" :{SERVER} GLOBALUSERSTATE"
            )

    def _refuse(self, conn: ClientConnection, text: str) -> None:
        conn.write(f":{SERVER} NOTICE * :{text}")
        self._close(conn, "server", abort=False)

    def _cap(self, conn: ClientConnection, rest: str) -> None:
        sub, _, caps_text = rest.partition(" ")
        if sub.upper() != "REQ":
            return
        caps = caps_text.removeprefix(":").split()
        if all(cap in KNOWN_CAPS for cap in caps):
            conn.caps.update(caps)
            conn.write(f":{SERVER} CAP * ACK :{' '.join(caps)}")
        else:
            conn.write(f":{SERVER} CAP * NAK :{' '.join(caps)}")

    def _join(self, conn: ClientConnection, channel: str) -> None:
        if not conn.authed or not channel:
            return
        nick = conn.nick
        if channel in self.suspended:
            conn.write(
                f"@msg-id=msg_channel_suspended :{SERVER} NOTICE #{channel} "
                ":This channel does not exist or has been suspended."
            )
            return
        conn.channels.add(channel)
        conn.write(f":{nick}!{nick}@{nick}.tmi.twitch.tv JOIN #{channel}")
        conn.write(f":{nick}.tmi.twitch.tv 353 {nick} = #{channel} :{nick}")
        conn.write(f":{nick}.tmi.twitch.tv 366 {nick} #{channel} :End of /NAMES list")
        if "twitch.tv/tags" in conn.caps:
            conn.write(
                tag_string(
                    {
                        "badge-info": "",
                        "badges": "",
                        "color": "",
                        "display-name": nick,
                        "emote-sets": "0",
                        "mod": "0",
                        "subscriber": "0",
                        "user-type": "",
                    }
                )
                + f" :{SERVER} USERSTATE #{channel}"
            )
            conn.write(
                tag_string(
                    {
                        "emote-only": "0",
                        "followers-only": "-1",
                        "r9k": "0",
                        "room-id": ROOM_ID,
                        "slow": "0",
                        "subs-only": "0",
                    }
                )
                + f" :{SERVER} ROOMSTATE #{channel}"
            )
        if self.drop_after_join:
            self._close(conn, "server", abort=False)

    # -- plumbing --

    def _close(self, conn: ClientConnection, by: str, *, abort: bool) -> None:
        if conn.closed:
            return
        conn.closed = True
        conn.closed_by = by
        transport = conn.writer.transport
        if abort:
            transport.abort()
        else:
            conn.writer.close()
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    @staticmethod
    async def _drain(conns: list[ClientConnection]) -> None:
        for conn in conns:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.writer.drain()

    def _server_context(self) -> ssl.SSLContext:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake tmi.twitch.tv")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(self.host))]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        self._cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        self._cert_dir = tempfile.TemporaryDirectory(prefix="fake-twitch-")
        cert_path = Path(self._cert_dir.name) / "cert.pem"
        key_path = Path(self._cert_dir.name) / "key.pem"
        cert_path.write_bytes(self._cert_pem)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_path, key_path)
        return context

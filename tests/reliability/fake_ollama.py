"""A fake Ollama server for fault tests: a real HTTP server on loopback that speaks Ollama's
``/api/chat`` wire format (NDJSON chunks with chunked transfer encoding, ``done`` last) and can
misbehave on demand: hang past the client's timeout, answer garbage or nothing, answer 500,
die in the middle of a streamed answer (the socket reset before the last chunk), or go away
altogether (nothing listening on its port)."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal

from support.net import LoopbackServer, QuietHandler

Behaviour = Literal["ok", "garbage", "empty", "hang", "die", "error500", "reset"]
BEHAVIOURS: tuple[Behaviour, ...] = ("ok", "garbage", "empty", "hang", "die", "error500", "reset")
Role = Literal["analyst", "risk", "trader", "tools", "persona"]

MODEL = "qwen2.5:7b-instruct"
PERSONA_TEXT = "Candles never lie to those who listen. Risk first, vibes second!"


def role_of(body: dict[str, Any]) -> Role:
    """Which agent sent this request, from what it asks for (as a real server would see it)."""
    if body.get("tools"):
        return "tools"
    schema = body.get("format")
    if isinstance(schema, dict):
        props = schema.get("properties", {})
        if "stance" in props:
            return "risk"
        if "stop_loss_pct" in props:
            return "trader"
        return "analyst"
    return "persona"


def good_answer(role: Role, action: str = "BUY") -> str:
    """A valid answer for ``role`` (what a healthy model writes)."""
    if role == "analyst":
        return json.dumps({"action": action, "confidence": 0.8, "rationale": "trend is up"})
    if role == "risk":
        return json.dumps(
            {"stance": "approve", "size_fraction": 1.0, "confidence": 0.7, "rationale": "ok"}
        )
    if role == "trader":
        return json.dumps(
            {
                "action": action,
                "size_fraction": 1.0,
                "confidence": 0.8,
                "stop_loss_pct": 0.03,
                "take_profit_pct": 0.06,
                "rationale": "follow the trend",
            }
        )
    if role == "tools":
        return "No lookup needed."
    return PERSONA_TEXT


@dataclass
class Seen:
    """One request the server received."""

    role: Role
    behaviour: Behaviour
    at: float


@dataclass
class FakeOllama:
    """The server's script and record. ``plan(role, n)`` picks the behaviour of the n-th request
    (0-based, all roles counted together); ``answer(role)`` the text of a good answer."""

    plan: Callable[[Role, int], Behaviour] = lambda role, n: "ok"
    answer: Callable[[Role], str] = good_answer
    hang_s: float = 5.0
    chunk_delay_s: float = 0.0
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    url: str = ""
    port: int = 0
    _server: LoopbackServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, port: int = 0) -> FakeOllama:
        """Listen on ``port`` (0: any free port; the same port again after ``stop``)."""
        server = _Server(("127.0.0.1", port or self.port), _handler(self))
        server.fake = self
        self._server = server
        self.port = server.port
        self.url = server.serve_in_background()
        return self

    def stop(self) -> None:
        """Stop listening: connections to the port are refused (a dead server)."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def requests_of(self, role: Role) -> int:
        """How many requests of ``role`` arrived."""
        return sum(1 for s in self.seen if s.role == role)

    def _next(self, role: Role) -> Behaviour:
        with self._lock:
            behaviour = self.plan(role, len(self.seen))
            self.seen.append(Seen(role, behaviour, time.monotonic()))
            return behaviour


class _Server(LoopbackServer):
    fake: FakeOllama

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        self.fake.connections += 1
        return conn, addr


def _chunks(text: str) -> Iterator[str]:
    words = text.split(" ")
    for i, word in enumerate(words):
        yield word if i == len(words) - 1 else word + " "


def _line(content: str, done: bool, **extra: Any) -> bytes:
    body = {
        "model": MODEL,
        "created_at": "2026-11-20T10:00:00.000Z",
        "message": {"role": "assistant", "content": content},
        "done": done,
        **extra,
    }
    return (json.dumps(body) + "\n").encode()


def _handler(fake: FakeOllama) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            role = role_of(body)
            behaviour = fake._next(role)
            if behaviour == "reset":
                self._reset()
                return
            if behaviour == "hang":
                time.sleep(fake.hang_s)
                behaviour = "ok"
            if behaviour == "error500":
                self._send_json(500, {"error": "llama runner process has terminated"})
                return
            text = {"ok": None, "die": None, "garbage": "Sure! I think HOLD.", "empty": ""}.get(
                behaviour
            )
            text = fake.answer(role) if text is None else text
            self._stream(text, die=behaviour == "die")

        def _send_json(self, status: int, data: dict[str, Any]) -> None:
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _stream(self, text: str, *, die: bool) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/x-ndjson")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            try:
                pieces = list(_chunks(text)) if text else []
                for n, piece in enumerate(pieces):
                    if die and n >= max(1, len(pieces) // 2):
                        self._reset()  # mid-stream: no last chunk, no `done`
                        return
                    self._chunk(_line(piece, False))
                    if fake.chunk_delay_s:
                        time.sleep(fake.chunk_delay_s)
                if die:
                    self._reset()
                    return
                self._chunk(
                    _line(
                        "",
                        True,
                        done_reason="stop",
                        prompt_eval_count=40,
                        eval_count=max(1, len(pieces)),
                    )
                )
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return  # the client gave up (its timeout)

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _reset(self) -> None:
            """Drop the connection with a TCP reset, as a crashed server does."""
            with contextlib.suppress(OSError):
                self.wfile.flush()
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
            self.close_connection = True

    return Handler

"""A fake OpenAI-compatible speech server for the voice tests: a real HTTP server on loopback
that speaks the wire format of ``POST /v1/audio/speech`` (a JSON body with ``model``,
``input``, ``voice``, ``response_format`` and ``speed``; the answer is the WAV file itself,
``audio/wav``) and can misbehave on demand: answer after a delay longer than the client's
timeout, answer 500, answer garbage with a 200, stream its WAV as Kokoro-FastAPI does (chunked,
the header's sizes 0xFFFFFFFF), or go away altogether (nothing listening on its port).

The tone it answers lasts in proportion to the text and in inverse proportion to ``speed``, so
the speech contract (faster is shorter) holds against it.
"""

from __future__ import annotations

import contextlib
import json
import math
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal

from support.net import LoopbackServer, QuietHandler
from tradecast.voice.wav import wav_bytes

Behaviour = Literal["ok", "stream", "slow", "error500", "error400", "garbage", "empty"]
BEHAVIOURS: tuple[Behaviour, ...] = (
    "ok",
    "stream",
    "slow",
    "error500",
    "error400",
    "garbage",
    "empty",
)
SAMPLE_RATE = 24_000
SECONDS_PER_CHAR = 0.06
VOICES = frozenset({"af_bella", "af_sky", "am_adam"})
GARBAGE = b"<html><body>502 Bad Gateway (nginx)</body></html>"


def tone(seconds: float, sample_rate: int = SAMPLE_RATE, hz: float = 220.0) -> bytes:
    """A sine tone as mono 16-bit PCM."""
    frames = max(1, round(seconds * sample_rate))
    return struct.pack(
        f"<{frames}h",
        *(round(8000 * math.sin(2 * math.pi * hz * n / sample_rate)) for n in range(frames)),
    )


def spoken_seconds(text: str, speed: float) -> float:
    """How long the fake server says ``text`` at ``speed``."""
    return max(0.2, len(text) * SECONDS_PER_CHAR) / speed


def streamed_wav(pcm16: bytes, sample_rate: int) -> bytes:
    """A WAV file as a streaming server writes it: RIFF and data sizes unknown (0xFFFFFFFF)."""
    wav = bytearray(wav_bytes(pcm16, sample_rate))
    wav[4:8] = b"\xff\xff\xff\xff"
    assert wav[36:40] == b"data"
    wav[40:44] = b"\xff\xff\xff\xff"
    return bytes(wav)


@dataclass
class Request:
    """One request the server received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    behaviour: Behaviour


@dataclass
class FakeSpeechServer:
    """The server's script and record: every request answers as ``behaviour`` (change it
    between calls); ``delay_s`` is how long a ``slow`` answer waits (released by ``stop``)."""

    behaviour: Behaviour = "ok"
    delay_s: float = 5.0
    requests: list[Request] = field(default_factory=list)
    url: str = ""
    port: int = 0
    _server: LoopbackServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _released: threading.Event = field(default_factory=threading.Event)

    def start(self, port: int = 0) -> FakeSpeechServer:
        """Listen on ``port`` (0: any free port; the same port again after ``stop``)."""
        server = LoopbackServer(("127.0.0.1", port or self.port), _handler(self))
        self._server = server
        self._released.clear()
        self.port = server.port
        self.url = server.serve_in_background()
        return self

    def stop(self) -> None:
        """Stop listening: connections to the port are refused (a dead server)."""
        self._released.set()
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def count(self) -> int:
        """How many requests reached the server."""
        with self._lock:
            return len(self.requests)

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


def _handler(fake: FakeSpeechServer) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                body = {}
            behaviour = fake.behaviour
            fake._record(
                Request(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body if isinstance(body, dict) else {},
                    behaviour,
                )
            )
            if self.path != "/v1/audio/speech":
                self._send(404, "application/json", b'{"detail":"Not Found"}')
                return
            if behaviour == "slow":
                if fake._released.wait(fake.delay_s):
                    return  # stopped while waiting: a server that never answered
                behaviour = "ok"
            if behaviour == "error500":
                self._send(500, "application/json", b'{"detail":"model worker crashed"}')
                return
            problem = _invalid(body)
            if behaviour == "error400" or problem:
                detail = problem or f"unknown voice {body.get('voice')!r}"
                # like FastAPI's validation errors, the refusal echoes the request's input
                refusal = {"detail": detail, "input": body.get("input")}
                self._send(400, "application/json", json.dumps(refusal).encode())
                return
            if behaviour == "garbage":
                self._send(200, "audio/wav", GARBAGE)
                return
            text, speed = str(body["input"]), float(body.get("speed", 1.0))
            pcm = b"" if behaviour == "empty" else tone(spoken_seconds(text, speed))
            if behaviour == "stream":
                self._stream(streamed_wav(pcm, SAMPLE_RATE))
                return
            self._send(200, "audio/wav", wav_bytes(pcm, SAMPLE_RATE))

        def _send(self, status: int, content_type: str, payload: bytes) -> None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        def _stream(self, payload: bytes) -> None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(200)
                self.send_header("content-type", "audio/wav")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for start in range(0, len(payload), 4096):
                    piece = payload[start : start + 4096]
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

    return Handler


def _invalid(body: Any) -> str | None:
    """What is wrong with a request body, as a real server would refuse it (None: nothing)."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    for key in ("model", "input", "voice"):
        if not isinstance(body.get(key), str) or not body[key]:
            return f"{key} is required"
    if body.get("response_format", "mp3") != "wav":
        return "this server only answers response_format wav"
    speed = body.get("speed", 1.0)
    if not isinstance(speed, int | float) or not 0.25 <= speed <= 4.0:
        return "speed must be between 0.25 and 4.0"
    if body["voice"] not in VOICES:
        return f"unknown voice {body['voice']!r}"
    return None

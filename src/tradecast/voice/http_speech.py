"""An OpenAI-compatible speech server: ``POST {base}/v1/audio/speech``.

The request is the shape OpenAI, Kokoro-FastAPI and openedai-speech serve::

    {"model": "kokoro", "input": "...", "voice": "af_bella", "response_format": "wav",
     "speed": 1.0}

with ``Authorization: Bearer KEY`` when a key is set; the answer is the audio itself
(``audio/wav``). Kokoro-FastAPI streams it, so its WAV header says 0xFFFFFFFF bytes of data:
:func:`~tradecast.voice.wav.read_wav` reads the frames that arrived.

Each call has ``timeout_s`` in all (connecting, sending, the whole answer). The server sits
behind a circuit breaker (:class:`~tradecast.llm.breaker.CircuitBreaker`, scope ``voice``):
after ``breaker_threshold`` consecutive faults (unreachable, timed out, 5xx or 429) calls fail
at once with :class:`SpeechCircuitOpen` for ``breaker_cooldown_s``, then one trial call
decides whether the server is back. An answer that is not audio, or a 4xx, comes from a live
server: it fails the call but does not count.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx

from tradecast.errors import SpeechError
from tradecast.llm.breaker import CircuitBreaker, CircuitOpenError
from tradecast.logs import get_logger
from tradecast.settings import VoiceConfig
from tradecast.voice.base import Speech, VoiceStyle
from tradecast.voice.wav import duration_s, read_wav, wav_bytes

log = get_logger(__name__)

COOLDOWN_SETTING = "TRADECAST_VOICE__BREAKER_COOLDOWN_S"
TIMEOUT_SETTING = "TRADECAST_VOICE__TIMEOUT_S"
URL_SETTING = "TRADECAST_VOICE__HTTP_URL"
EXCERPT_CHARS = 160


class SpeechServerError(SpeechError):
    """The speech server failed the call; ``status`` is its HTTP status (None: no answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SpeechCircuitOpen(SpeechServerError):
    """The server's breaker is open: the call was not made."""

    def __init__(self, error: CircuitOpenError) -> None:
        super().__init__(str(error))
        self.retry_in_s = error.retry_in_s


def speech_url(base_url: str) -> str:
    """``{base}/v1/audio/speech`` (a base that already ends in ``/v1`` is taken as it is)."""
    base = base_url.strip().rstrip("/")
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
    return f"{base}/v1/audio/speech"


class HttpSpeech:
    """A :class:`~tradecast.voice.base.SpeechSynthesizer` on an OpenAI-compatible server.

    Args:
        base_url: the server, without ``/v1`` (``http://127.0.0.1:8880``).
        model: the ``model`` field (``kokoro``, ``tts-1``, ...).
        voice: the voice when ``style.voice`` is ``""``.
        api_key: sent as ``Authorization: Bearer`` when set.
        timeout_s: the whole call's budget (and httpx's connect/read/write/pool timeouts).
        breaker: the server's circuit breaker; default a new one with ``breaker_threshold``
            and ``breaker_cooldown_s``.
        transport: an httpx transport (tests); default httpx's own.

    Empty (or blank) text is refused with :class:`SpeechError` without calling the server.
    """

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "kokoro",
        voice: str = "af_bella",
        api_key: str = "",
        timeout_s: float = 10.0,
        breaker: CircuitBreaker | None = None,
        breaker_threshold: int = 3,
        breaker_cooldown_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, not {timeout_s}")
        self.base_url = base_url.strip().rstrip("/")
        self.url = speech_url(base_url)
        self.model = model
        self.voice = voice
        self.timeout_s = timeout_s
        self.breaker = breaker or CircuitBreaker(
            f"speech server {self.base_url}",
            breaker_threshold,
            breaker_cooldown_s,
            setting=COOLDOWN_SETTING,
            scope="voice",
        )
        self._headers = {"Accept": "audio/wav"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_config(cls, config: VoiceConfig, breaker: CircuitBreaker | None = None) -> HttpSpeech:
        """The server ``TRADECAST_VOICE__HTTP_*`` names, with its limits."""
        return cls(
            config.http_url,
            model=config.http_model,
            voice=config.http_voice,
            api_key=config.http_api_key,
            timeout_s=config.timeout_s,
            breaker=breaker,
            breaker_threshold=config.breaker_threshold,
            breaker_cooldown_s=config.breaker_cooldown_s,
        )

    @property
    def name(self) -> str:
        return f"http:{self.model}/{self.voice}"

    async def synthesize(self, text: str, style: VoiceStyle) -> Speech:
        if not text.strip():
            raise SpeechError("nothing to say: the text is empty")
        voice = style.voice or self.voice
        body = {
            "model": self.model,
            "input": text,
            "voice": voice,
            "response_format": "wav",
            "speed": style.speed,
        }
        try:
            trial = self.breaker.before_call()
        except CircuitOpenError as exc:
            raise SpeechCircuitOpen(exc) from None
        started = time.perf_counter()
        try:
            response = await self._post(body)
        except SpeechServerError as exc:
            self.breaker.record_failure(exc)
            raise
        except BaseException:
            if trial:  # cancelled: let another call be the trial
                self.breaker.record_abandoned()
            raise
        if response.status_code >= 500 or response.status_code == 429:
            error = self._status_error(response, text)
            self.breaker.record_failure(error)
            raise error
        self.breaker.record_success()  # the server answered: it is alive
        if not response.is_success:
            raise self._status_error(response, text)
        pcm, rate = self._audio(response)
        log.debug(
            "voice.http_spoke",
            server=self.base_url,
            voice=voice,
            seconds=round(time.perf_counter() - started, 3),
        )
        return Speech(
            wav=wav_bytes(pcm, rate),
            sample_rate=rate,
            duration_s=duration_s(pcm, rate),
            voice=f"http:{self.model}/{voice}",
        )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _post(self, body: dict[str, object]) -> httpx.Response:
        """The server's whole answer, or :class:`SpeechServerError` when it gave none."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout_s), transport=self._transport
            )
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._client.post(self.url, json=body, headers=self._headers)
        except (TimeoutError, httpx.TimeoutException):
            raise SpeechServerError(
                f"the speech server at {self.base_url} did not answer within "
                f"{self.timeout_s:g} s; raise {TIMEOUT_SETTING} or check the server"
            ) from None
        except httpx.TransportError as exc:
            raise SpeechServerError(
                f"cannot reach the speech server at {self.base_url} ({type(exc).__name__}): is "
                f"it running? (set {URL_SETTING})"
            ) from None
        except Exception as exc:  # anything else the client raises is a failed call
            raise SpeechServerError(
                f"the call to the speech server at {self.base_url} failed: "
                f"{type(exc).__name__}: {str(exc)[:EXCERPT_CHARS]}"
            ) from None

    def _status_error(self, response: httpx.Response, text: str) -> SpeechServerError:
        return SpeechServerError(
            f"the speech server at {self.base_url} answered {response.status_code}: "
            f"{_excerpt(response.content, text)}",
            status=response.status_code,
        )

    def _audio(self, response: httpx.Response) -> tuple[bytes, int]:
        content_type = response.headers.get("content-type", "")
        try:
            pcm, rate = read_wav(response.content)
        except SpeechError as exc:
            raise SpeechServerError(
                f"the speech server at {self.base_url} did not answer a WAV file "
                f"(content-type {content_type or 'none'!r}, {len(response.content)} bytes): {exc}",
                status=response.status_code,
            ) from None
        if not pcm:
            raise SpeechServerError(
                f"the speech server at {self.base_url} answered a WAV file with no audio",
                status=response.status_code,
            )
        return pcm, rate


def _excerpt(body: bytes, text: str) -> str:
    """The start of an error body, on one line, without the line spoken (servers echo it)."""
    excerpt = " ".join(body[:2000].decode("utf-8", "replace").split())
    for spoken in {text, json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]}:
        if spoken.strip():
            excerpt = excerpt.replace(spoken, "<text>")
    if len(excerpt) > EXCERPT_CHARS:
        excerpt = excerpt[:EXCERPT_CHARS] + "..."
    return excerpt or "(empty body)"

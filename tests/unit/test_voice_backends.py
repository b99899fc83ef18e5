"""The speech backends' failure modes: the HTTP server's timeouts, errors, garbage and breaker
(against a real loopback server; the breaker's clock injected, nothing sleeps), the fallback to
the embedded voice, Piper's voice checks, the WAV helpers and the factory."""

from __future__ import annotations

import asyncio
import io
import struct
import time
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog

from support.net import free_port
from support.speech_server import (
    GARBAGE,
    SAMPLE_RATE,
    FakeSpeechServer,
    spoken_seconds,
    streamed_wav,
    tone,
)
from tradecast.errors import LLMError, SpeechError
from tradecast.llm.breaker import BreakerState, CircuitBreaker, CircuitOpenError
from tradecast.settings import VoiceBackend, VoiceConfig
from tradecast.voice.base import Speech, VoiceStyle
from tradecast.voice.factory import build_speech
from tradecast.voice.fallback import FallbackSpeech
from tradecast.voice.http_speech import (
    COOLDOWN_SETTING,
    HttpSpeech,
    SpeechCircuitOpen,
    SpeechServerError,
    speech_url,
)
from tradecast.voice.piper import PiperSpeech
from tradecast.voice.wav import duration_s, read_wav, wav_bytes

LINE = "Candles don't lie, chat."


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recording:
    """A synthesizer that answers a short tone and records what it was asked."""

    name = "fake:recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[str, VoiceStyle]] = []
        self.closed = False

    async def synthesize(self, text: str, style: VoiceStyle) -> Speech:
        self.calls.append((text, style))
        pcm = tone(0.5, 16_000)
        return Speech(wav_bytes(pcm, 16_000), 16_000, duration_s(pcm, 16_000), self.name)

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
def server() -> Iterator[FakeSpeechServer]:
    fake = FakeSpeechServer().start()
    yield fake
    fake.stop()


def voice_breaker(threshold: int = 2, cooldown: float = 30.0) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    breaker = CircuitBreaker(
        "speech server test", threshold, cooldown, clock, setting=COOLDOWN_SETTING, scope="voice"
    )
    return breaker, clock


@pytest.fixture
async def http(server: FakeSpeechServer) -> AsyncIterator[HttpSpeech]:
    speech = HttpSpeech(server.url, api_key="sk-test", timeout_s=5)
    yield speech
    await speech.aclose()


# --- the wire format ------------------------------------------------------------------------


async def test_request_is_the_openai_speech_shape(server: FakeSpeechServer, http: HttpSpeech):
    speech = await http.synthesize(LINE, VoiceStyle(speed=1.25))
    await http.synthesize(LINE, VoiceStyle(voice="am_adam"))
    first, second = server.requests
    assert first.path == "/v1/audio/speech"
    assert first.headers["authorization"] == "Bearer sk-test"
    assert first.headers["content-type"] == "application/json"
    assert first.body == {
        "model": "kokoro",
        "input": LINE,
        "voice": "af_bella",
        "response_format": "wav",
        "speed": 1.25,
    }
    assert second.body["voice"] == "am_adam"
    assert speech.voice == "http:kokoro/af_bella" and http.name == "http:kokoro/af_bella"
    assert speech.sample_rate == SAMPLE_RATE
    assert speech.duration_s == pytest.approx(spoken_seconds(LINE, 1.25), abs=1e-3)


async def test_no_key_no_authorization_header(server: FakeSpeechServer):
    speech = HttpSpeech(server.url + "/v1/", model="tts-1", voice="af_sky")
    try:
        assert (await speech.synthesize(LINE, VoiceStyle())).voice == "http:tts-1/af_sky"
    finally:
        await speech.aclose()
    assert "authorization" not in server.requests[0].headers
    assert server.requests[0].path == "/v1/audio/speech"
    assert server.requests[0].body["model"] == "tts-1"


def test_speech_url_takes_a_base_with_or_without_v1():
    assert speech_url("http://h:8880") == "http://h:8880/v1/audio/speech"
    assert speech_url("http://h:8880/") == "http://h:8880/v1/audio/speech"
    assert speech_url("http://h:8880/v1") == "http://h:8880/v1/audio/speech"
    assert speech_url("http://h/tts/v1/") == "http://h/tts/v1/audio/speech"


async def test_a_streamed_wav_is_read_to_its_last_frame(server: FakeSpeechServer, http: HttpSpeech):
    server.behaviour = "stream"
    speech = await http.synthesize(LINE, VoiceStyle())
    expected = len(tone(spoken_seconds(LINE, 1.0))) // 2
    assert speech.duration_s == pytest.approx(expected / SAMPLE_RATE)
    # what it hands on is a complete WAV file again, sizes and all
    with wave.open(io.BytesIO(speech.wav), "rb") as reader:
        assert reader.getnframes() == expected


async def test_empty_text_never_reaches_the_server(server: FakeSpeechServer, http: HttpSpeech):
    with pytest.raises(SpeechError, match="nothing to say"):
        await http.synthesize("  ", VoiceStyle())
    assert server.count == 0


# --- failures -------------------------------------------------------------------------------


async def test_a_server_slower_than_the_timeout_fails_within_about_the_timeout(
    server: FakeSpeechServer,
):
    server.behaviour, server.delay_s = "slow", 60.0
    speech = HttpSpeech(server.url, timeout_s=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(SpeechServerError, match=r"did not answer within 0\.5 s") as info:
            await speech.synthesize(LINE, VoiceStyle())
    finally:
        await speech.aclose()
    assert time.monotonic() - started < 3.0  # the server would have taken 60 s
    assert "TRADECAST_VOICE__TIMEOUT_S" in str(info.value)
    assert info.value.status is None
    assert server.count == 1


async def test_500_is_an_error_with_the_status_and_an_excerpt(
    server: FakeSpeechServer, http: HttpSpeech
):
    server.behaviour = "error500"
    with pytest.raises(SpeechServerError, match=r"answered 500: .*model worker crashed") as info:
        await http.synthesize(LINE, VoiceStyle())
    assert info.value.status == 500
    assert isinstance(info.value, SpeechError)


async def test_a_400_names_the_status_and_does_not_echo_the_line(
    server: FakeSpeechServer, http: HttpSpeech
):
    with pytest.raises(SpeechServerError, match=r"answered 400: .*unknown voice") as info:
        await http.synthesize(LINE, VoiceStyle(voice="nobody"))
    assert info.value.status == 400
    assert LINE not in str(info.value) and "<text>" in str(info.value)
    assert http.breaker.state is BreakerState.CLOSED  # a live server said no


async def test_a_body_that_is_not_wav_is_an_error(server: FakeSpeechServer, http: HttpSpeech):
    server.behaviour = "garbage"
    with pytest.raises(SpeechServerError, match="did not answer a WAV file") as info:
        await http.synthesize(LINE, VoiceStyle())
    assert f"{len(GARBAGE)} bytes" in str(info.value)
    assert "audio/wav" in str(info.value)


async def test_a_wav_without_audio_is_an_error(server: FakeSpeechServer, http: HttpSpeech):
    server.behaviour = "empty"
    with pytest.raises(SpeechServerError, match="no audio"):
        await http.synthesize(LINE, VoiceStyle())


async def test_a_dead_server_is_unreachable():
    speech = HttpSpeech(f"http://127.0.0.1:{free_port()}", timeout_s=5)
    try:
        with pytest.raises(SpeechServerError, match="cannot reach the speech server"):
            await speech.synthesize(LINE, VoiceStyle())
    finally:
        await speech.aclose()


# --- the breaker ----------------------------------------------------------------------------


async def test_the_breaker_opens_after_the_threshold_then_fails_fast_without_calling(
    server: FakeSpeechServer,
):
    breaker, _ = voice_breaker(threshold=3)
    speech = HttpSpeech(server.url, breaker=breaker)
    server.behaviour = "error500"
    try:
        for _ in range(3):
            with pytest.raises(SpeechServerError, match="answered 500"):
                await speech.synthesize(LINE, VoiceStyle())
        assert breaker.state is BreakerState.OPEN and server.count == 3
        server.behaviour = "ok"  # even a healthy server is not asked while it is open
        for _ in range(5):
            with pytest.raises(SpeechCircuitOpen, match=COOLDOWN_SETTING) as info:
                await speech.synthesize(LINE, VoiceStyle())
            assert isinstance(info.value, SpeechError)
            assert not isinstance(info.value, LLMError)
        assert server.count == 3
        assert breaker.stats.rejected == 5
        assert info.value.retry_in_s == pytest.approx(30.0)
    finally:
        await speech.aclose()


async def test_garbage_and_4xx_do_not_open_the_breaker(server: FakeSpeechServer):
    breaker, _ = voice_breaker(threshold=1)
    speech = HttpSpeech(server.url, breaker=breaker)
    try:
        for behaviour in ("garbage", "error400", "empty"):
            server.behaviour = behaviour
            with pytest.raises(SpeechServerError):
                await speech.synthesize(LINE, VoiceStyle())
        assert breaker.state is BreakerState.CLOSED and breaker.stats.failures == 0
    finally:
        await speech.aclose()


async def test_half_open_after_the_cooldown_one_trial_closes_it(server: FakeSpeechServer):
    breaker, clock = voice_breaker(threshold=1, cooldown=30.0)
    speech = HttpSpeech(server.url, breaker=breaker)
    try:
        server.behaviour = "error500"
        with pytest.raises(SpeechServerError):
            await speech.synthesize(LINE, VoiceStyle())
        clock.now += 29.9
        with pytest.raises(SpeechCircuitOpen):
            await speech.synthesize(LINE, VoiceStyle())
        assert server.count == 1
        clock.now += 0.1
        assert breaker.state is BreakerState.HALF_OPEN
        server.behaviour = "ok"
        speech_ok = await speech.synthesize(LINE, VoiceStyle())  # the trial
        assert speech_ok.duration_s > 0 and server.count == 2
        assert breaker.state is BreakerState.CLOSED
        await speech.synthesize(LINE, VoiceStyle())
        assert server.count == 3
    finally:
        await speech.aclose()


async def test_a_failed_trial_opens_it_for_another_cooldown(server: FakeSpeechServer):
    breaker, clock = voice_breaker(threshold=2, cooldown=10.0)
    speech = HttpSpeech(server.url, breaker=breaker)
    server.behaviour = "error500"
    try:
        for _ in range(2):
            with pytest.raises(SpeechServerError):
                await speech.synthesize(LINE, VoiceStyle())
        clock.now += 10
        with pytest.raises(SpeechServerError, match="answered 500"):
            await speech.synthesize(LINE, VoiceStyle())  # the trial, and it fails
        assert server.count == 3 and breaker.state is BreakerState.OPEN
        clock.now += 9.9
        with pytest.raises(SpeechCircuitOpen):
            await speech.synthesize(LINE, VoiceStyle())
        assert server.count == 3
    finally:
        await speech.aclose()


async def test_timeouts_count_towards_the_breaker(server: FakeSpeechServer):
    breaker, _ = voice_breaker(threshold=1)
    server.behaviour, server.delay_s = "slow", 60.0
    speech = HttpSpeech(server.url, timeout_s=0.3, breaker=breaker)
    try:
        with pytest.raises(SpeechServerError, match="did not answer"):
            await speech.synthesize(LINE, VoiceStyle())
        with pytest.raises(SpeechCircuitOpen):
            await speech.synthesize(LINE, VoiceStyle())
    finally:
        await speech.aclose()
    assert server.count == 1


async def test_a_cancelled_trial_lets_the_next_call_be_the_trial(server: FakeSpeechServer):
    breaker, clock = voice_breaker(threshold=1, cooldown=5.0)
    speech = HttpSpeech(server.url, breaker=breaker)
    try:
        server.behaviour = "error500"
        with pytest.raises(SpeechServerError):
            await speech.synthesize(LINE, VoiceStyle())
        clock.now += 5
        server.behaviour, server.delay_s = "slow", 60.0
        trial = asyncio.create_task(speech.synthesize(LINE, VoiceStyle()))
        async with asyncio.timeout(10):
            while server.count < 2:  # wait until the trial reached the server
                await asyncio.sleep(0.01)
        trial.cancel()
        with pytest.raises(asyncio.CancelledError):
            await trial
        server.behaviour = "ok"
        assert (await speech.synthesize(LINE, VoiceStyle())).duration_s > 0
        assert breaker.state is BreakerState.CLOSED
    finally:
        await speech.aclose()


def test_the_voice_breaker_logs_and_names_its_own_setting():
    breaker, _ = voice_breaker(threshold=1)
    with structlog.testing.capture_logs() as logs:
        breaker.before_call()
        breaker.record_failure(SpeechError("down"))
    assert [e["event"] for e in logs] == ["voice.breaker_open"]
    with pytest.raises(CircuitOpenError) as info:
        breaker.before_call()
    assert info.value.scope == "voice" and info.value.setting == COOLDOWN_SETTING
    assert COOLDOWN_SETTING in str(info.value)
    assert "TRADECAST_LLM__" not in str(info.value)


def test_an_llm_breaker_is_unchanged():
    breaker = CircuitBreaker("ollama", 1, 10.0)
    breaker.before_call()
    breaker.record_failure(LLMError("timeout", "slow"))
    with pytest.raises(CircuitOpenError, match="TRADECAST_LLM__BREAKER_COOLDOWN_S") as info:
        breaker.before_call()
    assert info.value.scope == "llm" and info.value.kind == "unreachable"


# --- the fallback ---------------------------------------------------------------------------


async def test_fallback_speaks_in_its_default_voice_at_the_same_speed():
    primary = HttpSpeech(f"http://127.0.0.1:{free_port()}", timeout_s=5)
    recorder = Recording()
    speech = FallbackSpeech(primary, recorder)
    try:
        with structlog.testing.capture_logs() as logs:
            spoken = await speech.synthesize(LINE, VoiceStyle(voice="af_sky", speed=1.3))
    finally:
        await speech.aclose()
    assert spoken.voice == "fake:recorder"
    assert recorder.calls == [(LINE, VoiceStyle(voice="", speed=1.3))]
    (event,) = [e for e in logs if e["event"] == "voice.fallback"]
    assert event["primary"] == "http:kokoro/af_bella"
    assert event["fallback"] == "fake:recorder"
    assert "cannot reach the speech server" in event["reason"]
    assert LINE not in str(logs)
    assert speech.fallbacks == 1 and recorder.closed
    assert speech.name == "http:kokoro/af_bella or fake:recorder"


async def test_no_fallback_while_the_primary_speaks(server: FakeSpeechServer):
    recorder = Recording()
    speech = FallbackSpeech(HttpSpeech(server.url), recorder)
    try:
        with structlog.testing.capture_logs() as logs:
            spoken = await speech.synthesize(LINE, VoiceStyle(voice="am_adam"))
    finally:
        await speech.aclose()
    assert spoken.voice == "http:kokoro/am_adam"
    assert recorder.calls == [] and not [e for e in logs if e["event"] == "voice.fallback"]


async def test_the_reason_logged_never_carries_the_line(server: FakeSpeechServer):
    class Echoing(Recording):
        async def synthesize(self, text: str, style: VoiceStyle) -> Speech:
            raise SpeechError(f"refused {text!r} because reasons")

    line = "a secret line nobody should log"
    speech = FallbackSpeech(Echoing(), Recording())
    with structlog.testing.capture_logs() as logs:
        await speech.synthesize(line, VoiceStyle())
    assert "secret line" not in str(logs)
    assert "because reasons" in str(logs)


@pytest.mark.slow
async def test_a_dead_server_falls_back_to_piper(tmp_path: Path):
    primary = HttpSpeech(f"http://127.0.0.1:{free_port()}", timeout_s=5)
    speech = FallbackSpeech(primary, PiperSpeech())
    try:
        with structlog.testing.capture_logs() as logs:
            spoken = await speech.synthesize(LINE, VoiceStyle(voice="af_bella", speed=1.1))
    finally:
        await speech.aclose()
    assert spoken.voice == "piper:en_US-joe-medium"
    pcm, rate = read_wav(spoken.wav)
    assert len(pcm) > 0 and rate == spoken.sample_rate == 22050 and spoken.duration_s > 0.5
    assert [e["event"] for e in logs if e["event"].startswith("voice.")] == [
        "voice.fallback",
        "voice.loaded",
    ]


async def test_both_dead_is_a_speech_error(tmp_path: Path):
    primary = HttpSpeech(f"http://127.0.0.1:{free_port()}", timeout_s=5)
    speech = FallbackSpeech(primary, PiperSpeech(tmp_path / "gone.onnx"))
    try:
        with pytest.raises(SpeechError, match="no voice could speak the line") as info:
            await speech.synthesize(LINE, VoiceStyle())
    finally:
        await speech.aclose()
    message = str(info.value)
    assert "cannot reach the speech server" in message and "gone.onnx" in message
    assert speech.fallbacks == 0


async def test_fallback_refuses_empty_text_without_trying_either():
    primary, fallback = Recording(), Recording()
    with pytest.raises(SpeechError, match="nothing to say"):
        await FallbackSpeech(primary, fallback).synthesize("", VoiceStyle())
    assert primary.calls == fallback.calls == []


# --- piper ----------------------------------------------------------------------------------


async def test_piper_rejects_another_voice_name_without_loading():
    piper = PiperSpeech()
    with pytest.raises(SpeechError, match="'af_bella'") as info:
        await piper.synthesize(LINE, VoiceStyle(voice="af_bella"))
    assert "en_US-joe-medium" in str(info.value)
    assert not piper.loaded
    assert piper.name == "piper:en_US-joe-medium"


async def test_piper_without_its_model_file_names_the_file_and_the_setting(tmp_path: Path):
    piper = PiperSpeech(tmp_path / "voice.onnx")
    with pytest.raises(SpeechError, match="TRADECAST_VOICE__PIPER_MODEL_PATH") as info:
        await piper.synthesize(LINE, VoiceStyle())
    assert str(tmp_path / "voice.onnx") in str(info.value)
    assert piper.name == "piper:voice"


async def test_piper_needs_the_config_beside_the_model(tmp_path: Path):
    (tmp_path / "x.onnx").write_bytes(b"not a model")
    with pytest.raises(SpeechError, match=r"x\.onnx\.json"):
        await PiperSpeech(tmp_path / "x.onnx").synthesize(LINE, VoiceStyle())


@pytest.mark.slow
async def test_piper_speaks_off_the_event_loop_in_its_own_voice_name():
    piper = PiperSpeech(threads=1)
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    try:
        spoken = await piper.synthesize(LINE, VoiceStyle(voice="en_US-joe-medium"))
    finally:
        done.set()
        await task
        await piper.aclose()
    assert ticks > 1  # the loop kept running while the model loaded and spoke
    assert spoken.voice == "piper:en_US-joe-medium" and spoken.duration_s > 0.5
    assert piper.load_s is not None and not piper.loaded


# --- wav ------------------------------------------------------------------------------------


def test_wav_round_trip():
    pcm = tone(0.25, 16_000)
    wav = wav_bytes(pcm, 16_000)
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    assert read_wav(wav) == (pcm, 16_000)
    assert duration_s(pcm, 16_000) == pytest.approx(0.25)
    assert read_wav(wav_bytes(b"", 8000)) == (b"", 8000)


def test_a_streamed_header_reads_the_frames_there_and_drops_a_half_frame():
    pcm = tone(0.1, 22_050)
    streamed = streamed_wav(pcm, 22_050)
    assert read_wav(streamed) == (pcm, 22_050)
    assert read_wav(streamed[:-1]) == (pcm[:-2], 22_050)


def _wav(channels: int, width: int, frames: bytes, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(frames)
    return out.getvalue()


def test_stereo_is_mixed_down_to_mono():
    stereo = struct.pack("<6h", 1000, 3000, -2000, -4000, 32767, 32767)
    assert read_wav(_wav(2, 2, stereo)) == (struct.pack("<3h", 2000, -3000, 32767), 8000)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a WAV file"),
        (GARBAGE, "not a WAV file"),
        (b"ID3\x04" + bytes(100), "not a WAV file"),  # an MP3
        (_wav(1, 1, bytes(10)), "8-bit samples"),
        (_wav(1, 3, bytes(12)), "24-bit samples"),
        (_wav(3, 2, bytes(12)), "3 channels"),
        (wav_bytes(tone(0.01), SAMPLE_RATE)[:30], "not a readable"),
    ],
)
def test_anything_but_16_bit_pcm_wav_is_refused(data: bytes, message: str):
    with pytest.raises(SpeechError, match=message):
        read_wav(data)


def test_float_wav_is_refused():
    wav = bytearray(wav_bytes(tone(0.01), 8000))
    wav[20:22] = struct.pack("<H", 3)  # WAVE_FORMAT_IEEE_FLOAT
    with pytest.raises(SpeechError, match="not a readable 16-bit PCM WAV"):
        read_wav(bytes(wav))


def test_wav_bytes_refuses_what_is_not_16_bit_pcm():
    with pytest.raises(ValueError, match="even number"):
        wav_bytes(b"\x00", 8000)
    with pytest.raises(ValueError, match="positive"):
        wav_bytes(b"", 0)


# --- the factory ----------------------------------------------------------------------------


def test_build_speech_per_backend(tmp_path: Path):
    assert build_speech(VoiceConfig(backend=VoiceBackend.OFF)) is None
    piper = build_speech(VoiceConfig(piper_model_path=tmp_path / "en_GB-x-low.onnx"))
    assert isinstance(piper, PiperSpeech) and piper.name == "piper:en_GB-x-low"
    assert not piper.loaded
    config = VoiceConfig(
        backend=VoiceBackend.HTTP,
        http_url="http://tts.local:8880",
        http_model="tts-1",
        http_voice="af_sky",
        http_api_key="k",
        timeout_s=4,
        breaker_threshold=5,
        breaker_cooldown_s=12,
    )
    both = build_speech(config)
    assert isinstance(both, FallbackSpeech)
    assert isinstance(both.primary, HttpSpeech) and isinstance(both.fallback, PiperSpeech)
    http = both.primary
    assert http.url == "http://tts.local:8880/v1/audio/speech"
    assert http.name == "http:tts-1/af_sky" and http.timeout_s == 4
    assert http.breaker.threshold == 5 and http.breaker.cooldown_s == 12
    assert http.breaker.scope == "voice" and http.breaker.setting == COOLDOWN_SETTING
    assert both.fallback.name == "piper:en_US-joe-medium"

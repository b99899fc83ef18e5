"""The SpeechSynthesizer contract, run against every implementation with the same assertions.

Implementations: Piper in process (the real en_US-joe-medium voice), HttpSpeech against a
loopback server speaking the real ``/v1/audio/speech`` wire format, and FallbackSpeech twice:
with a live primary (the server speaks) and with a dead one (Piper speaks). The ones that run
the Piper model are marked slow.

Documented behaviour every implementation shares: empty or blank text is refused with
SpeechError (nothing is called); any other sentence comes back as a complete mono 16-bit WAV
file whose ``duration_s`` is its frames over its sample rate.
"""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest

from support.net import free_port
from support.speech_server import FakeSpeechServer
from tradecast.errors import SpeechError
from tradecast.voice.base import Speech, SpeechSynthesizer, VoiceStyle
from tradecast.voice.fallback import FallbackSpeech
from tradecast.voice.http_speech import HttpSpeech
from tradecast.voice.piper import PiperSpeech
from tradecast.voice.wav import read_wav

SENTENCE = "Bitcoin just tagged its stop, so we are flat again. Risk first, vibes second!"
UNICODE = 'She said “don\'t chase it” — naïve café traders, 100% "sure"… ¿right? ✨'


@pytest.fixture(scope="module")
def piper() -> Iterator[PiperSpeech]:
    """The real Piper voice, loaded once for the module."""
    speech = PiperSpeech()
    yield speech
    asyncio.run(speech.aclose())


@pytest.fixture
def server() -> Iterator[FakeSpeechServer]:
    fake = FakeSpeechServer().start()
    yield fake
    fake.stop()


IMPLEMENTATIONS = [
    pytest.param("piper", marks=pytest.mark.slow),
    pytest.param("http"),
    pytest.param("fallback"),
    pytest.param("fallback-to-piper", marks=pytest.mark.slow),
]


@pytest.fixture(params=IMPLEMENTATIONS)
async def synth(
    request: pytest.FixtureRequest, server: FakeSpeechServer
) -> AsyncIterator[SpeechSynthesizer]:
    kind = request.param
    if kind == "piper":
        yield request.getfixturevalue("piper")
        return
    if kind == "http":
        http = HttpSpeech(server.url, timeout_s=5)
        yield http
        await http.aclose()
        return
    if kind == "fallback":
        # the primary is alive: the fallback is never loaded
        live = HttpSpeech(server.url, timeout_s=5)
        yield FallbackSpeech(live, PiperSpeech())
        await live.aclose()
        return
    dead = HttpSpeech(f"http://127.0.0.1:{free_port()}", timeout_s=5)
    yield FallbackSpeech(dead, request.getfixturevalue("piper"))
    await dead.aclose()


def assert_valid(speech: Speech) -> np.ndarray:
    """A complete mono 16-bit PCM WAV whose duration is its frames over its rate."""
    with wave.open(io.BytesIO(speech.wav), "rb") as reader:
        assert reader.getnchannels() == 1
        assert reader.getsampwidth() == 2
        assert reader.getcomptype() == "NONE"
        assert reader.getframerate() == speech.sample_rate
        frames = reader.getnframes()
        assert len(reader.readframes(frames)) == 2 * frames
    pcm, rate = read_wav(speech.wav)
    assert rate == speech.sample_rate > 0
    assert len(pcm) == 2 * frames
    assert speech.duration_s == pytest.approx(frames / rate)
    assert isinstance(speech.voice, str) and speech.voice
    return np.frombuffer(pcm, dtype="<i2")


def assert_speech(speech: Speech) -> None:
    """Valid, and sound: more than a blip, and not silence."""
    samples = assert_valid(speech)
    assert speech.duration_s > 0.5
    assert int(np.abs(samples.astype(np.int32)).max()) > 1000


async def test_a_sentence_is_valid_non_empty_wav(synth: SpeechSynthesizer) -> None:
    assert synth.name
    assert_speech(await synth.synthesize(SENTENCE, VoiceStyle()))


async def test_faster_is_shorter(synth: SpeechSynthesizer) -> None:
    fast = await synth.synthesize(SENTENCE, VoiceStyle(speed=1.5))
    slow = await synth.synthesize(SENTENCE, VoiceStyle(speed=0.75))
    assert_valid(fast)
    assert_valid(slow)
    # twice the pace: much shorter, whatever the voice's own jitter
    assert fast.duration_s < 0.8 * slow.duration_s


async def test_unicode_and_quotes_are_spoken(synth: SpeechSynthesizer) -> None:
    assert_speech(await synth.synthesize(UNICODE, VoiceStyle()))


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
async def test_empty_text_is_refused(synth: SpeechSynthesizer, text: str) -> None:
    with pytest.raises(SpeechError, match="nothing to say"):
        await synth.synthesize(text, VoiceStyle())


async def test_lines_spoken_at_once_are_all_valid(synth: SpeechSynthesizer) -> None:
    lines = ["Good morning, chat!", "The trend is up.", "Stops are set, as always."]
    speeches = await asyncio.gather(*(synth.synthesize(t, VoiceStyle()) for t in lines))
    for speech in speeches:
        assert_valid(speech)
        assert speech.duration_s > 0.3

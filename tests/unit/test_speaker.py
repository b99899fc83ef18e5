"""The speech pipeline: sentences spoken while the next is generated, stored with a
retention limit, announced as ``speech`` events; failures and drops announced as
``speech_skipped``; a stop-out said at once. The voice is a scripted one at the edge."""

from __future__ import annotations

import asyncio
import io
import wave
from pathlib import Path

import pytest

from tradecast.agents.persona_card import CardVoice, EmotionVoice
from tradecast.domain import StreamEvent
from tradecast.errors import NotFound, SpeechError
from tradecast.voice.base import Speech, VoiceStyle
from tradecast.voice.queue import SpeakingQueue
from tradecast.voice.speaker import Speaker
from tradecast.voice.store import SpeechStore
from tradecast.voice.words import word_timings

RATE = 16_000


def silent_wav(seconds: float) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(b"\0\0" * int(seconds * RATE))
    return out.getvalue()


class ScriptedVoice:
    """Says each line in 0.1 s per word; ``hold`` makes it wait until released."""

    name = "scripted:test"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.started: list[tuple[str, VoiceStyle]] = []
        self.hold: asyncio.Event | None = None

    async def busy(self) -> None:
        """Wait until a line is being synthesised."""
        async with asyncio.timeout(5):
            while not self.started:
                await asyncio.sleep(0)

    async def synthesize(self, text: str, style: VoiceStyle) -> Speech:
        self.started.append((text, style))
        if self.hold is not None:
            await self.hold.wait()
        if self.fail:
            raise SpeechError("the speech server is gone")
        seconds = 0.1 * len(text.split())
        return Speech(silent_wav(seconds), RATE, seconds, self.name)

    async def aclose(self) -> None:
        return None


class Published:
    def __init__(self) -> None:
        self.events: list[StreamEvent] = []
        self.arrived = asyncio.Event()

    async def publish(self, event: StreamEvent) -> StreamEvent:
        self.events.append(event)
        self.arrived.set()
        return event

    async def wait_for(self, count: int) -> list[StreamEvent]:
        async with asyncio.timeout(5):
            while len(self.events) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.events


def sentence(text: str, emotion: str = "happy") -> StreamEvent:
    return StreamEvent(
        channel="persona",
        event="sentence",
        data={"text": text, "emotion": emotion, "decision_id": "BTCUSDT-20210105T1200"},
    )


def make_speaker(tmp_path: Path, voice: ScriptedVoice, **queue: float) -> tuple[Speaker, Published]:
    published = Published()
    card_voice = CardVoice(speed=1.05, emotions={"excited": EmotionVoice(speed=1.2)})
    speaker = Speaker(
        voice,
        SpeechStore(tmp_path / "speech", keep_files=3),
        published,
        card_voice,
        SpeakingQueue(max_backlog_s=queue.get("max_backlog_s", 60.0)),
        warm_up=False,
    )
    return speaker, published


async def test_each_sentence_is_spoken_stored_and_announced(tmp_path: Path) -> None:
    voice = ScriptedVoice()
    speaker, published = make_speaker(tmp_path, voice)
    speaker.start()
    try:
        speaker.observe(sentence("The desk bought a little.", "excited"))
        (event,) = await published.wait_for(1)
    finally:
        await speaker.aclose()
    data = event.data
    assert (event.channel, event.event) == ("persona", "speech")
    assert data["text"] == "The desk bought a little." and data["emotion"] == "excited"
    assert data["decision_id"] == "BTCUSDT-20210105T1200" and data["priority"] == "normal"
    assert data["duration_s"] == pytest.approx(0.5) and data["voice"] == "scripted:test"
    assert data["url"] == f"/v1/speech/{data['id']}"
    assert speaker.store.path(data["id"]).read_bytes()[:4] == b"RIFF"
    assert [w["text"] for w in data["words"]] == ["The", "desk", "bought", "a", "little."]
    assert voice.started[0][1] == VoiceStyle(speed=1.2), "the card's voice for the emotion"


async def test_the_next_sentence_is_synthesised_while_the_model_writes_the_one_after(
    tmp_path: Path,
) -> None:
    voice = ScriptedVoice()
    voice.hold = asyncio.Event()
    speaker, published = make_speaker(tmp_path, voice)
    speaker.start()
    try:
        speaker.observe(sentence("First sentence here."))
        await voice.busy()
        # the first is being synthesised; the model has not produced the second yet
        assert [text for text, _ in voice.started] == ["First sentence here."]
        speaker.observe(sentence("Second one."))
        voice.hold.set()
        events = await published.wait_for(2)
    finally:
        await speaker.aclose()
    assert [e.data["text"] for e in events] == ["First sentence here.", "Second one."]


async def test_a_failed_voice_is_announced_as_skipped_so_the_caption_still_shows(
    tmp_path: Path,
) -> None:
    speaker, published = make_speaker(tmp_path, ScriptedVoice(fail=True))
    speaker.start()
    try:
        speaker.observe(sentence("Still a caption."))
        (event,) = await published.wait_for(1)
    finally:
        await speaker.aclose()
    assert event.event == "speech_skipped" and event.data["text"] == "Still a caption."
    assert "speech server is gone" in event.data["reason"]


async def test_a_dropped_line_is_announced_as_skipped(tmp_path: Path) -> None:
    voice = ScriptedVoice()
    voice.hold = asyncio.Event()
    speaker, published = make_speaker(tmp_path, voice, max_backlog_s=4.0)
    speaker.start()
    try:
        speaker.observe(sentence("A first line the voice is busy with."))
        await voice.busy()
        speaker.observe(sentence("An older line that will be dropped now, it talks for too long."))
        speaker.observe(sentence("The newest line, short."))
        voice.hold.set()
        events = await published.wait_for(3)
    finally:
        await speaker.aclose()
    skipped = [e for e in events if e.event == "speech_skipped"]
    assert [e.data["text"] for e in skipped] == [
        "An older line that will be dropped now, it talks for too long."
    ]
    assert "faster than the voice" in skipped[0].data["reason"]


async def test_a_stop_out_is_said_first_from_the_fills_numbers(tmp_path: Path) -> None:
    voice = ScriptedVoice()
    voice.hold = asyncio.Event()
    speaker, published = make_speaker(tmp_path, voice)
    speaker.start()
    try:
        speaker.observe(sentence("Small talk being said."))
        await voice.busy()
        speaker.observe(sentence("More small talk, queued."))
        fill = {
            "symbol": "BTC/USDT",
            "quantity": "0.01",
            "price": "31000.5",
            "trigger": "stop_loss",
        }
        speaker.observe(StreamEvent(channel="desk", event="fill", data=fill))
        voice.hold.set()
        events = await published.wait_for(3)
    finally:
        await speaker.aclose()
    texts = [e.data["text"] for e in events]
    assert texts[1] == "Stop-loss hit: the desk sold 0.01 BTC/USDT at 31000.5."
    assert texts[2] == "More small talk, queued.", "the risk line went ahead of it"
    assert events[1].data["priority"] == "risk" and events[1].data["interrupt"] is True


def test_the_store_keeps_the_newest_lines_only(tmp_path: Path) -> None:
    store = SpeechStore(tmp_path / "speech", keep_files=2)
    ids = [store.new_id() for _ in range(3)]
    for speech_id in ids:
        store.save(speech_id, silent_wav(0.1))
    assert store.ids() == ids[1:]
    with pytest.raises(NotFound, match="newest 2"):
        store.path(ids[0])
    with pytest.raises(NotFound, match="ids look like"):
        store.path("../../etc/passwd")


def test_word_times_cover_the_line_in_order() -> None:
    times = word_timings("Risk first, vibes second.", 2.0)
    assert [t["text"] for t in times] == ["Risk", "first,", "vibes", "second."]
    starts = [t["start_s"] for t in times]
    assert starts == sorted(starts) and 0 < starts[0] < 0.1
    assert times[-1]["end_s"] == pytest.approx(2.0 - 0.08, abs=0.01)
    assert all(t["end_s"] > t["start_s"] for t in times)
    assert word_timings("", 1.0) == [] and word_timings("hi", 0) == []


async def test_the_voice_is_loaded_before_the_first_line_needs_it(tmp_path: Path) -> None:
    voice = ScriptedVoice()
    speaker, published = make_speaker(tmp_path, voice)
    speaker.warm_up = True
    speaker.start()
    try:
        speaker.observe(sentence("Hello there."))
        await published.wait_for(1)
    finally:
        await speaker.aclose()
    assert [text for text, _ in voice.started] == ["Ready.", "Hello there."]
    assert [e.data["text"] for e in published.events] == ["Hello there."], "not announced"

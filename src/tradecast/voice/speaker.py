"""Speech as it streams: the persona's sentences are spoken while the next is generated.

The speaker watches the events the desk publishes (it never sees the broker or the model).
Each persona ``sentence`` (published only once it passed grounding and moderation) is queued
(:mod:`tradecast.voice.queue`) and synthesised by a worker task, so the voice works on one
sentence while the model writes the next, then stored (:mod:`tradecast.voice.store`) and
announced on the persona stream:

- ``speech``: ``{id, decision_id, text, emotion, priority, interrupt, url, duration_s,
  words, voice}`` (the overlay fetches ``url`` and plays it, captions following ``words``);
- ``speech_skipped``: ``{decision_id, text, emotion, reason}`` for a line that will not be
  heard (dropped from the queue, or the voice failed): the overlay captions it instead.

A stop-loss exit is said at once, ahead of and over the small talk: a risk line made from the
fill's own numbers, so there is nothing in it to check.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Protocol

from tradecast.domain import StreamEvent
from tradecast.errors import SpeechError
from tradecast.logs import get_logger
from tradecast.voice.base import SpeechSynthesizer, VoiceStyle
from tradecast.voice.queue import Line, SpeakingQueue
from tradecast.voice.store import SpeechStore
from tradecast.voice.words import word_timings

log = get_logger(__name__)
SPEECH_URL = "/v1/speech/{speech_id}"
DROPPED = "dropped: the desk talks faster than the voice"
WARM_UP = "Ready."


class VoiceChoice(Protocol):
    """How each line is spoken (the persona card's ``[voice]`` table)."""

    def style_for(self, emotion: str | None) -> VoiceStyle:
        """The voice and speed of a line with ``emotion``."""
        ...


class Announcer(Protocol):
    """Where the speaker announces lines (the desk's event publisher)."""

    async def publish(self, event: StreamEvent) -> StreamEvent:
        """Publish ``event`` on its channel; returns it with its id."""
        ...


def line_for(event: StreamEvent) -> Line | None:
    """The line an event asks to be said, if any."""
    data = event.data
    if event.channel == "persona" and event.event == "sentence" and data.get("text"):
        emotion = str(data.get("emotion") or "neutral")
        return Line(str(data["text"]), emotion, data.get("decision_id"))
    if event.channel == "desk" and event.event == "fill" and data.get("trigger") == "stop_loss":
        text = (
            f"Stop-loss hit: the desk sold {data['quantity']} {data['symbol']} at {data['price']}."
        )
        return Line(text, "worried", data.get("decision_id"), priority="risk")
    return None


class Speaker:
    """Queues, synthesises, stores and announces the persona's lines."""

    def __init__(
        self,
        tts: SpeechSynthesizer,
        store: SpeechStore,
        publisher: Announcer,
        voice: VoiceChoice,
        queue: SpeakingQueue,
        *,
        warm_up: bool = True,
    ) -> None:
        self.tts = tts
        self.warm_up = warm_up
        self.store = store
        self.publisher = publisher
        self.voice = voice
        self.queue = queue
        self._worker: asyncio.Task[None] | None = None
        self._notices: set[asyncio.Task[Any]] = set()

    def observe(self, event: StreamEvent) -> None:
        """Queue what ``event`` asks to be said (an :class:`EventObserver`: it must not block)."""
        line = line_for(event)
        if line is None:
            return
        for dropped in self.queue.put(line):
            log.info("voice.dropped", decision_id=dropped.decision_id, chars=len(dropped.text))
            notice = asyncio.get_running_loop().create_task(self._skipped(dropped, DROPPED))
            self._notices.add(notice)
            notice.add_done_callback(self._notices.discard)

    def start(self) -> None:
        """Start the worker that speaks the queued lines."""
        self._worker = asyncio.create_task(self._run(), name="speaker")

    async def aclose(self) -> None:
        """Stop speaking and release the voice."""
        tasks = [t for t in (self._worker, *self._notices) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.tts.aclose()

    async def _run(self) -> None:
        if self.warm_up:
            await self._warm_up()
        while True:
            line = await self.queue.next()
            try:
                await self.speak(line)
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad line must not silence the persona for good
                log.exception("voice.line_failed", decision_id=line.decision_id)

    async def _warm_up(self) -> None:
        """Load the voice (and check it answers) before the first line needs it."""
        started = time.perf_counter()
        try:
            await self.tts.synthesize(WARM_UP, self.voice.style_for(None))
        except SpeechError as exc:
            log.warning("voice.warm_up_failed", voice=self.tts.name, reason=str(exc)[:300])
            return
        log.info(
            "voice.ready", voice=self.tts.name, seconds=round(time.perf_counter() - started, 2)
        )

    async def speak(self, line: Line) -> StreamEvent | None:
        """Synthesise, store and announce one line; returns the ``speech`` event (None when
        the voice failed and the line was announced as skipped)."""
        try:
            speech = await self.tts.synthesize(line.text, self.voice.style_for(line.emotion))
        except SpeechError as exc:
            log.warning("voice.failed", decision_id=line.decision_id, reason=str(exc)[:300])
            await self._skipped(line, f"the voice failed: {exc}"[:300])
            return None
        speech_id = self.store.new_id()
        await asyncio.to_thread(self.store.save, speech_id, speech.wav)
        interrupts = self.queue.announced(line, speech.duration_s)
        data = {
            "id": speech_id,
            "decision_id": line.decision_id,
            "text": line.text,
            "emotion": line.emotion,
            "priority": line.priority,
            "interrupt": interrupts,
            "url": SPEECH_URL.format(speech_id=speech_id),
            "duration_s": round(speech.duration_s, 3),
            "words": word_timings(line.text, speech.duration_s),
            "voice": speech.voice,
        }
        return await self.publisher.publish(
            StreamEvent(channel="persona", event="speech", data=data)
        )

    async def _skipped(self, line: Line, reason: str) -> None:
        with contextlib.suppress(Exception):  # a notice that cannot be sent is only a caption
            await self.publisher.publish(
                StreamEvent(
                    channel="persona",
                    event="speech_skipped",
                    data={
                        "decision_id": line.decision_id,
                        "text": line.text,
                        "emotion": line.emotion,
                        "reason": reason,
                    },
                )
            )

"""The audience: viewers' chat in, the persona's answers out on the persona stream.

    sources (Twitch, YouTube, the API) -> gate -> queue -> answer -> persona stream

Every message passes :class:`~tradecast.agents.viewer_gate.ViewerGate` first: one that fails
is neither answered nor shown (counted, logged by digest). Admitted questions wait in an
:class:`AnswerQueue` (mods and the broadcaster first, then subscribers, then everyone else;
bounded; a budget of answers per minute; a question left waiting too long is skipped and
counted). The desk's own commentary comes first: no answer starts while a tick runs.

Each answer is published on the persona channel as ``viewer_question`` (who asked what), the
answer's ``token``/``sentence`` events (with ``viewer_message_id``; the voice speaks them like
any sentence), then ``viewer_answer``. Answering reads the desk's state through
:class:`DeskView` only: nothing here can trade or change a limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel

from tradecast.agents.persona_card import PersonaCard
from tradecast.agents.viewer_answer import answer_viewer, snapshot_of
from tradecast.agents.viewer_gate import SlidingWindow, ViewerGate, digest
from tradecast.domain import StreamEvent
from tradecast.domain.viewers import ViewerMessage
from tradecast.errors import ChatSourceError
from tradecast.logs import get_logger
from tradecast.viewers.base import ChatSource

log = get_logger(__name__)
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Publish = Callable[[StreamEvent], Awaitable[Any]]
BUSY_POLL_S = 0.2
MAX_YIELD_TO_DESK_S = 30.0
ANSWER_TOKENS = 80
QUESTION_CHARS = 300


class DeskView(Protocol):
    """What answering may read of the desk (the desk service provides it)."""

    def status(self) -> dict[str, Any]:
        """State, symbol, equity, and whether a tick is running (``ticking``)."""
        ...

    def limits(self) -> Any:
        """The risk limits in force."""
        ...

    def recent_decisions(self, limit: int = 5) -> list[dict[str, Any]]:
        """The latest decisions, newest first."""
        ...


def urgency(message: ViewerMessage) -> int:
    """0 for mods and the broadcaster, 1 for subscribers, 2 for everyone else."""
    if message.is_mod or message.is_broadcaster:
        return 0
    return 1 if message.is_subscriber else 2


@dataclass
class AudienceStats:
    """What the audience has done since it started (``GET /v1/viewers``)."""

    received: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    commands: int = 0
    queued: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    answered: int = 0
    refused: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The counters as JSON-ready values."""
        return {
            "received": self.received,
            "rejected": dict(self.rejected),
            "commands": self.commands,
            "queued": self.queued,
            "skipped": dict(self.skipped),
            "answered": self.answered,
            "refused": self.refused,
        }


class AnswerQueue:
    """Admitted questions, most urgent first, within a budget of answers per minute.

    Args:
        maxsize: questions that may wait; past it the least urgent (the oldest of them) is
            skipped.
        max_wait_s: a question that waited longer is skipped when its turn comes.
        per_minute: answers started in any 60 s.
        clock, sleep: injected for tests.
    """

    def __init__(
        self,
        maxsize: int,
        max_wait_s: float,
        per_minute: int,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.maxsize = maxsize
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._sleep = sleep
        self._budget = SlidingWindow(per_minute, 60.0, clock)
        self._heap: list[tuple[int, int, float, ViewerMessage]] = []
        self._order = itertools.count()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._heap)

    def put(self, message: ViewerMessage) -> ViewerMessage | None:
        """Queue ``message``; returns the question skipped to make room, if any."""
        entry = (urgency(message), next(self._order), self._clock(), message)
        heapq.heappush(self._heap, entry)
        self._ready.set()
        if len(self._heap) <= self.maxsize:
            return None
        # the least urgent question that has waited longest makes room
        worst = max(self._heap, key=lambda e: (e[0], -e[1]))
        self._heap.remove(worst)
        heapq.heapify(self._heap)
        return worst[3]

    async def wait(self) -> None:
        """Return once a question is waiting."""
        while not self._heap:
            self._ready.clear()
            await self._ready.wait()

    async def next(self, on_stale: Callable[[ViewerMessage], None]) -> ViewerMessage:
        """The next question to answer, once the per-minute budget allows one; questions
        that waited past ``max_wait_s`` go to ``on_stale`` instead."""
        while True:
            await self.wait()
            while not self._budget.allow():
                await self._sleep(1.0)
            _, _, queued_at, message = heapq.heappop(self._heap)
            if self._clock() - queued_at <= self.max_wait_s:
                return message
            self._budget.give_back()
            on_stale(message)


@dataclass
class Audience:
    """Reads the chat sources and answers viewers through the persona.

    Args:
        gate: moderation in (it also keeps the mute list).
        queue: admitted questions.
        model, card: the persona's model and character.
        desk: what answers may read.
        publish: puts an event on the persona stream.
        sources: the platforms' chats (the API's messages come through :meth:`receive`).
    """

    gate: ViewerGate
    queue: AnswerQueue
    model: BaseChatModel
    card: PersonaCard
    desk: DeskView
    publish: Publish
    sources: Sequence[ChatSource] = ()
    answers: bool = True
    stats: AudienceStats = field(default_factory=AudienceStats)
    sleep: Sleep = asyncio.sleep
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        """Start reading every source and answering."""
        for source in self.sources:
            self._tasks.append(asyncio.create_task(self._read(source), name=source.name))
        if self.answers:
            self._tasks.append(asyncio.create_task(self._answer_loop(), name="audience"))

    async def aclose(self) -> None:
        """Stop reading and answering; close the sources."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for source in self.sources:
            with contextlib.suppress(Exception):
                await source.close()

    def receive(self, message: ViewerMessage) -> tuple[str, str | None]:
        """Moderate one message and queue it if admitted; returns (verdict, reason)."""
        self.stats.received += 1
        verdict = self.gate.admit(message)
        if verdict.kind == "rejected":
            reason = verdict.reason or "rejected"
            self.stats.rejected[reason] += 1
            log.info(
                "viewers.rejected",
                platform=message.platform,
                viewer=message.viewer_id,
                reason=reason,
                digest=digest(message.text),
            )
            return "rejected", reason
        if verdict.kind == "command":
            self.stats.commands += 1
            log.info("viewers.command", command=verdict.command, mod=message.viewer_id)
            return "command", verdict.command
        self.stats.queued += 1
        skipped = self.queue.put(message)
        if skipped is not None:
            self._skip(skipped, "the queue is full")
        return "queued", None

    def _skip(self, message: ViewerMessage, reason: str) -> None:
        self.stats.skipped[reason] += 1
        log.info("viewers.skipped", viewer=message.viewer_id, reason=reason, id=message.id)

    async def _read(self, source: ChatSource) -> None:
        try:
            async for message in source.messages():
                self.receive(message)
        except ChatSourceError as exc:
            log.error("viewers.source_stopped", source=source.name, reason=str(exc))

    async def _answer_loop(self) -> None:
        while True:
            # the desk's commentary first; the most urgent question is chosen after it
            await self.queue.wait()
            await self._yield_to_desk()
            message = await self.queue.next(lambda m: self._skip(m, "waited too long"))
            try:
                await self.answer(message)
            except asyncio.CancelledError:
                raise
            except Exception:  # one failed answer must not silence the audience for good
                log.exception("viewers.answer_failed", id=message.id)

    async def _yield_to_desk(self) -> None:
        waited = 0.0
        while self.desk.status().get("ticking") and waited < MAX_YIELD_TO_DESK_S:
            await self.sleep(BUSY_POLL_S)
            waited += BUSY_POLL_S

    async def answer(self, message: ViewerMessage) -> list[str]:
        """Answer one admitted question on the persona stream; returns the sentences said."""
        question = message.text.strip()[:QUESTION_CHARS]
        asked = {"viewer_message_id": message.id}
        await self.publish(_persona("viewer_question", {**_who(message), "text": question}))
        events: asyncio.Queue[StreamEvent | None] = asyncio.Queue()
        drain = asyncio.create_task(self._drain(events))
        try:
            snapshot = snapshot_of(
                self.desk.status(), self.desk.limits(), self.desk.recent_decisions(1)
            )
            intent, lines, _call = await answer_viewer(
                self.model,
                self.card,
                snapshot,
                question,
                lambda event, data: events.put_nowait(_persona(event, {**data, **asked})),
                ANSWER_TOKENS,
            )
        finally:
            events.put_nowait(None)
            await drain
        said = [line.text for line in lines]
        if intent == "question":
            self.stats.answered += 1
        else:
            self.stats.refused += 1
        await self.publish(
            _persona(
                "viewer_answer",
                {
                    **_who(message),
                    "question": question,
                    "text": " ".join(said),
                    "intent": intent,
                    "emotion": lines[0].emotion if lines else "neutral",
                },
            )
        )
        return said

    async def _drain(self, events: asyncio.Queue[StreamEvent | None]) -> None:
        while (event := await events.get()) is not None:
            await self.publish(event)


def _persona(event: str, data: dict[str, Any]) -> StreamEvent:
    return StreamEvent(channel="persona", event=event, data=data)


def _who(message: ViewerMessage) -> dict[str, Any]:
    return {
        "viewer_message_id": message.id,
        "platform": message.platform,
        "display_name": message.display_name,
        "priority": urgency(message),
    }

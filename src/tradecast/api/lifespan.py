"""Opening the desk behind the API, in the background.

Loading the models and the memory's embedder takes seconds (10 to 12 on the embedded
defaults). The app's lifespan only starts :class:`DeskOpener`, so the server answers
``/healthz`` at once and ``/readyz`` says "starting" until the desk is open; every other route
answers 503 ``not_ready`` until then. A desk that fails to open makes liveness fail (and
``tradecast serve`` exit non-zero), instead of a process that runs and can do nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver

from tradecast import __version__
from tradecast.agents.persona import card_blocklist
from tradecast.agents.persona_card import PersonaCard, load_card
from tradecast.agents.viewer_gate import GateLimits, ViewerGate
from tradecast.api.auth import KeyRing
from tradecast.api.deps import ApiContext
from tradecast.api.runs import RunStore
from tradecast.api.sse import FrameCache
from tradecast.bootstrap import (
    build_chat_sources,
    build_desk_models,
    build_desk_store,
    build_memory,
    build_speech,
    open_desk,
    open_shared_services,
)
from tradecast.desk.audience import AnswerQueue, Audience
from tradecast.desk.metrics import Metrics
from tradecast.desk.publisher import EventPublisher
from tradecast.desk.service import DeskService
from tradecast.graphs.chat import ChatController
from tradecast.logs import get_logger
from tradecast.memory.base import DecisionMemory
from tradecast.settings import AgentRole, Settings
from tradecast.voice.queue import SpeakingQueue
from tradecast.voice.speaker import Speaker
from tradecast.voice.store import SpeechStore

log = get_logger(__name__)
OpenFailed = Callable[[BaseException], None]
"""Told why the desk could not open (``tradecast serve`` stops the server)."""


class DeskOpener:
    """Opens the app's services in a background task and holds them open until closed; the
    app's ``state.ctx`` is the :class:`ApiContext` while they are open (else None)."""

    def __init__(
        self,
        app: FastAPI,
        open_context: Callable[[], AbstractAsyncContextManager[ApiContext]],
        on_failure: OpenFailed | None = None,
    ) -> None:
        self._app = app
        self._open_context = open_context
        self._on_failure = on_failure
        self.error: str | None = None
        """Why the desk could not open (None: it is opening, open or closed)."""
        self._settled = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def opening(self) -> bool:
        """Whether the desk is still being opened."""
        return not self._settled.is_set()

    def start(self) -> None:
        """Start opening (returns at once)."""
        self._task = asyncio.create_task(self._hold(), name="desk-open")

    async def wait_open(self, timeout: float) -> ApiContext:
        """The context, once the desk is open.

        Raises:
            RuntimeError: the desk failed to open, or is closed.
            TimeoutError: it is still opening after ``timeout`` seconds.
        """
        await asyncio.wait_for(self._settled.wait(), timeout)
        ctx: ApiContext | None = self._app.state.ctx
        if ctx is None:
            raise RuntimeError(f"the desk did not open: {self.error or 'it is closed'}")
        return ctx

    async def aclose(self) -> None:
        """Close what was opened (or stop opening it)."""
        self._closing.set()
        if self._task is None:
            return
        if self.opening:
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _hold(self) -> None:
        try:
            async with self._open_context() as ctx:
                self._app.state.ctx = ctx
                self._settled.set()
                await self._closing.wait()
                self._app.state.ctx = None  # routes answer 503 while the desk closes
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"[:500]
            log.exception("api.desk_open_failed")
            if self._on_failure is not None:
                self._on_failure(exc)
        finally:
            self._app.state.ctx = None
            self._settled.set()


@asynccontextmanager
async def running_desk(
    settings: Settings,
    keys: KeyRing,
    models: Mapping[AgentRole, BaseChatModel] | None,
    memory: DecisionMemory | None,
) -> AsyncIterator[ApiContext]:
    """Everything the routes use, open: the shared services, the desk and its loop.

    The models and the memory load in worker threads, so the event loop goes on answering
    liveness while they do.
    """
    metrics = Metrics()
    desk_models = dict(models) if models else await asyncio.to_thread(build_desk_models, settings)
    desk_memory = memory or await asyncio.to_thread(build_memory, settings)
    card = load_card(settings.desk.persona_card)
    async with AsyncExitStack() as stack:
        shared = await stack.enter_async_context(open_shared_services(settings))
        publisher = EventPublisher(shared.bus, metrics)
        runtime = await stack.enter_async_context(
            open_desk(settings, sink=publisher, models=desk_models, memory=desk_memory)
        )
        store = build_desk_store(settings)
        stack.callback(store.close)
        if shared.health is not None:
            await shared.health.check_now()
            shared.health.start()
            stack.push_async_callback(shared.health.aclose)
        service = DeskService(
            runtime,
            store,
            publisher,
            metrics=metrics,
            persona_name=card.name,
            lease=shared.lease,
            health=shared.health,
        )
        await service.start(autostart=settings.desk.autostart)
        stack.push_async_callback(service.aclose)
        runs = RunStore()
        stack.push_async_callback(runs.aclose)
        speaker = await stack.enter_async_context(speaking(settings, card, publisher))
        audience = await stack.enter_async_context(
            listening(settings, card, desk_models["persona"], service, publisher)
        )
        with tuned_gc():
            log.info(
                "api.started",
                data_dir=str(settings.data_dir),
                version=__version__,
                symbol=settings.desk.symbol,
                mode=service.timeline.mode,
                roles=dict(keys.roles()),
            )
            yield ApiContext(
                settings=settings,
                keys=keys,
                limiter=shared.limiter,
                metrics=metrics,
                bus=shared.bus,
                publisher=publisher,
                frames=FrameCache(),
                desk=service,
                runs=runs,
                card=card,
                chat=ChatController(
                    service,
                    desk_models["persona"],
                    card,
                    max_tokens=settings.desk.persona_max_tokens,
                    checkpointer=_saver(runtime.runner.graph.checkpointer),
                ),
                speech=speaker.store if speaker else None,
                voice_name=speaker.tts.name if speaker else "",
                audience=audience,
            )


@asynccontextmanager
async def speaking(
    settings: Settings, card: PersonaCard, publisher: EventPublisher
) -> AsyncIterator[Speaker | None]:
    """The persona's voice, speaking what the desk publishes (None: the voice is off)."""
    tts = await asyncio.to_thread(build_speech, settings.voice)
    if tts is None:
        yield None
        return
    voice = settings.voice
    speaker = Speaker(
        tts,
        SpeechStore(settings.data_dir / "speech", voice.keep_files),
        publisher,
        card.voice,
        SpeakingQueue(voice.max_backlog_s),
    )
    stop_watching = publisher.watch(speaker.observe)
    speaker.start()
    try:
        yield speaker
    finally:
        stop_watching()
        await speaker.aclose()


@asynccontextmanager
async def listening(
    settings: Settings,
    card: PersonaCard,
    model: BaseChatModel,
    desk: DeskService,
    publisher: EventPublisher,
) -> AsyncIterator[Audience]:
    """The audience: viewers' chat moderated, queued and answered by the persona."""
    viewers = settings.viewers
    audience = Audience(
        gate=ViewerGate(
            blocklist=(*card_blocklist(card), *viewers.blocklist),
            persona_name=card.name,
            limits=GateLimits(
                viewers.per_viewer_messages,
                viewers.per_channel_messages,
                viewers.flood_window_s,
            ),
        ),
        queue=AnswerQueue(viewers.queue_size, viewers.max_wait_s, viewers.answers_per_minute),
        model=model,
        card=card,
        desk=desk,
        publish=publisher,
        sources=build_chat_sources(viewers),
        answers=viewers.answers,
    )
    audience.start()
    try:
        yield audience
    finally:
        await audience.aclose()


GC_YOUNG_THRESHOLD = 10_000


@contextlib.contextmanager
def tuned_gc() -> Iterator[None]:
    """Keep garbage-collector pauses out of the streams while the desk is open.

    What was loaded at start (libraries, models: ~600,000 objects) lives as long as the
    process, and a full collection over it takes ~300 ms here: frozen, the collector skips it.
    Each SSE client adds ~275 long-lived objects, so with 1,000 clients a full collection
    still takes ~150 ms; collecting the young generation every 10,000 allocations instead of
    700 makes those rare (none in a 10 s burst of 200,000 deliveries, see
    docs/PERFORMANCE.md) at the cost of cyclic garbage living a little longer.
    """
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(max(previous[0], GC_YOUNG_THRESHOLD), *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


def _saver(checkpointer: object) -> BaseCheckpointSaver | None:
    """The desk graph's checkpointer, which keeps the chat threads too."""
    return checkpointer if isinstance(checkpointer, BaseCheckpointSaver) else None

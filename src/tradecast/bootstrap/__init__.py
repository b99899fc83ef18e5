"""Builds the run's dependencies from settings.

This is the only module that picks implementations (embedded vs scale-out). Everything
below it depends on the small Protocols in each package, never on a mode flag.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, closing
from datetime import datetime
from functools import cache, partial

from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver

from tradecast.agents.persona_card import load_card
from tradecast.agents.tools import build_agent_tools
from tradecast.bootstrap.scaled import (
    SharedServices,
    open_redis_services,
    postgres_checkpointer,
    postgres_probes,
)
from tradecast.broker.journal import JOURNAL_FILENAME, Journal, SqliteJournal
from tradecast.broker.market_rules import DEFAULT_MARKET_RULES
from tradecast.broker.paper import Broker, PaperBroker
from tradecast.bus import InProcessEventBus
from tradecast.desk.health import HealthMonitor
from tradecast.desk.lease import LocalLease
from tradecast.desk.runtime import DeskRuntime, TickClock
from tradecast.desk.store import STORE_FILENAME, DeskStore
from tradecast.desk.timeline import TimelineFactory, live_timeline, replay_timeline
from tradecast.domain import Channel, StreamEvent, utc_now
from tradecast.errors import SettingsError
from tradecast.graphs.checkpoints import InlineSqliteSaver, desk_serializer
from tradecast.graphs.desk import DeskDependencies, build_desk_graph
from tradecast.graphs.nodes import MemoryCalls
from tradecast.graphs.portfolio import PortfolioDependencies, build_portfolio_graph
from tradecast.graphs.portfolio_runner import PortfolioRunner
from tradecast.graphs.runner import DeskRunner, EventSink
from tradecast.llm.breaker import LOCAL_BOARD, BreakerBoard
from tradecast.llm.breaker_redis import RedisBreakerBoard
from tradecast.llm.factory import create_chat_model
from tradecast.market.base import MarketData
from tradecast.market.closed_bars import ClosedBarsView, parse_timeframe
from tradecast.memory.base import DecisionMemory
from tradecast.memory.embeddings import Embedder, SentenceTransformerEmbedder
from tradecast.news.base import NewsSource
from tradecast.news.view import NewsView
from tradecast.ratelimit import LocalRateLimiter
from tradecast.risk.book_exposure import window_note
from tradecast.risk.execution import GatedExecutor
from tradecast.settings import (
    AGENT_ROLES,
    AgentRole,
    LLMBackend,
    Settings,
    ViewersConfig,
    VoiceConfig,
)
from tradecast.viewers.base import ChatSource
from tradecast.voice.base import SpeechSynthesizer

CHECKPOINTS_FILENAME = "checkpoints.sqlite"
CheckpointerFactory = Callable[[Settings], AbstractAsyncContextManager[BaseCheckpointSaver]]
"""Opens the checkpointer of a desk from its settings (and closes it on exit)."""


def build_chat_model(settings: Settings, role: AgentRole) -> BaseChatModel:
    """The chat model one agent role talks to (llama.cpp in-process or Ollama), an Ollama
    server's circuit breaker shared by the replicas through Redis when ``redis_url`` is set."""
    board = breaker_board(settings.redis_url, settings.cluster.namespace)
    return create_chat_model(settings.llm, role, board=board)


@cache
def breaker_board(redis_url: str | None, namespace: str) -> BreakerBoard:
    """Where model servers' breakers keep their state: Redis when configured, else this
    process (one board per deployment, so its breakers are shared by every role)."""
    if not redis_url:
        return LOCAL_BOARD
    return RedisBreakerBoard.from_url(redis_url, namespace)


def build_speech(config: VoiceConfig) -> SpeechSynthesizer | None:
    """The persona's voice: piper in process (the default), or an OpenAI-compatible speech
    server that falls back to piper; None when the voice is off."""
    from tradecast.voice.factory import build_speech as build  # onnxruntime only when asked

    return build(config)


def build_chat_sources(config: ViewersConfig) -> list[ChatSource]:
    """The livestream chats to read (``TRADECAST_VIEWERS__SOURCES``); "local" is the API's
    ``POST /v1/viewers/chat``, which needs no source.

    Raises:
        ChatSourceError: a platform is named but not configured (the message says what to set).
    """
    sources: list[ChatSource] = []
    if "twitch" in config.sources:
        from tradecast.viewers.twitch import TwitchChatSource

        sources.append(TwitchChatSource.from_config(config.twitch))
    if "youtube" in config.sources:
        from tradecast.viewers.youtube import YouTubeChatSource  # googleapiclient when asked

        sources.append(YouTubeChatSource.from_config(config.youtube))
    return sources


def build_embedder(settings: Settings) -> Embedder:
    """The sentence embedder of the memory: a local model folder, loaded once per process."""
    config = settings.embeddings
    return SentenceTransformerEmbedder(config.model_path, config.device, config.batch_size)


def build_memory(settings: Settings, embedder: Embedder | None = None) -> DecisionMemory:
    """The decision memory: a Chroma server when ``chroma_url`` is set, else files under
    ``data_dir/memory``."""
    # chromadb is imported only when a memory is built: most commands never need it
    from tradecast.memory.chroma import ChromaDecisionMemory, http_client, persistent_client

    client = (
        http_client(settings.chroma_url)
        if settings.chroma_url
        else persistent_client(settings.data_dir / "memory")
    )
    return ChromaDecisionMemory(client, embedder or build_embedder(settings))


def build_news(settings: Settings, embedder: Embedder) -> NewsView | None:
    """The news the analyst reads: a replay file (``news.file``), RSS/Atom feeds
    (``news.feeds``) and CryptoPanic (``news.cryptopanic_token``), as one time-safe view
    ranked with ``embedder``; None when no source is set. Close it with ``aclose()``.

    Raises:
        NewsError: the replay file is missing or malformed.
    """
    config = settings.news
    if not config.enabled():
        return None
    from tradecast.news.replay import ReplayNewsSource
    from tradecast.news.sentiment import VaderSentiment

    sources: list[NewsSource] = []
    if config.file is not None:
        sources.append(ReplayNewsSource.from_file(config.file))
    if config.feeds:
        from tradecast.news.rss import RssNewsSource  # feedparser only when feeds are set

        sources.append(RssNewsSource.from_config(config))
    if config.cryptopanic_token.get_secret_value():
        from tradecast.news.cryptopanic import CryptoPanicSource

        sources.append(CryptoPanicSource.from_config(config))
    return NewsView(sources, embedder, VaderSentiment(), config)


def build_market(settings: Settings) -> tuple[MarketData, TimelineFactory]:
    """Candles and prices, and the timelines they allow: the bundled replay (plus
    ``market.csv_paths``) replayed over its span by default, or an exchange through ccxt,
    live, when ``market.source`` is 'ccxt'. Close the market with ``aclose()``."""
    config = settings.market
    if config.source == "ccxt":
        # ccxt is imported only when a live market is asked for (it is slow to import)
        from tradecast.market.ccxt_market import CcxtMarket

        return CcxtMarket(config.exchange, config.timeframe), live_timeline
    from tradecast.market.replay import ReplayMarket

    replay = ReplayMarket(csv_paths=config.csv_paths)
    bar = parse_timeframe(config.timeframe)
    return replay, partial(replay_timeline, replay.span, bar=bar)


def build_market_data(settings: Settings) -> MarketData:
    """The market of :func:`build_market` alone (close it with ``aclose()``)."""
    return build_market(settings)[0]


def build_journal(settings: Settings) -> Journal:
    """The broker's journal: PostgreSQL when ``postgres_url`` is set (replicas share it),
    else SQLite at ``data_dir/journal.sqlite``."""
    if settings.postgres_url:
        from tradecast.broker.journal_postgres import PostgresJournal

        return PostgresJournal(settings.postgres_url)
    return SqliteJournal(settings.data_dir / JOURNAL_FILENAME)


def build_desk_store(settings: Settings) -> DeskStore:
    """The desk service's store: PostgreSQL when ``postgres_url`` is set, else SQLite at
    ``data_dir/control.sqlite``."""
    if settings.postgres_url:
        from tradecast.desk.store_db import PostgresStoreDb

        return DeskStore(PostgresStoreDb(settings.postgres_url))
    return DeskStore.sqlite(settings.data_dir / STORE_FILENAME)


@asynccontextmanager
async def open_checkpointer(settings: Settings) -> AsyncIterator[BaseCheckpointSaver]:
    """LangGraph's checkpointer: PostgreSQL when ``postgres_url`` is set (any replica can
    resume any tick), else SQLite at ``data_dir/checkpoints.sqlite``."""
    if settings.postgres_url:
        async with postgres_checkpointer(settings.postgres_url) as saver:
            yield saver
        return
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async with aiosqlite.connect(str(settings.data_dir / CHECKPOINTS_FILENAME)) as connection:
        yield AsyncSqliteSaver(connection, serde=desk_serializer())


@asynccontextmanager
async def open_run_checkpointer(settings: Settings) -> AsyncIterator[BaseCheckpointSaver]:
    """An eval run's checkpointer: :func:`open_checkpointer`, except that the SQLite file
    (the run's own, in its data dir) is written on the event loop, without aiosqlite's
    worker thread (:class:`~tradecast.graphs.checkpoints.InlineSqliteSaver`), and with
    ``synchronous=NORMAL`` instead of an fsync per commit: a run that dies is run again from
    scratch, so its checkpoints need to survive nothing but the run itself."""
    if settings.postgres_url:
        async with open_checkpointer(settings) as saver:
            yield saver
        return
    path = settings.data_dir / CHECKPOINTS_FILENAME
    with closing(sqlite3.connect(str(path), check_same_thread=False)) as connection:
        saver = InlineSqliteSaver(connection, serde=desk_serializer())
        saver.setup()
        connection.execute("PRAGMA synchronous=NORMAL")
        yield saver


@asynccontextmanager
async def open_shared_services(
    settings: Settings, *, account: str = "paper", on_drop: Callable[[Channel], None] | None = None
) -> AsyncIterator[SharedServices]:
    """Redis Streams, a Redis lease and health checks when ``redis_url`` is set (with an event
    archive in PostgreSQL when ``postgres_url`` is set too); else the in-process bus and a
    lease this process always holds."""
    api = settings.api
    if not settings.redis_url:
        bus = InProcessEventBus(api.stream_buffer, api.sse_queue_size, on_drop=on_drop)
        probes = postgres_probes(settings)
        health = HealthMonitor(probes, settings.cluster.health_interval_s) if probes else None
        try:
            limiter = LocalRateLimiter(api.control_rate_per_minute, api.control_burst)
            yield SharedServices(bus, LocalLease(), health, limiter)
        finally:
            await bus.aclose()
        return
    async with open_redis_services(settings, account=account, on_drop=on_drop) as services:
        yield services


def build_broker(
    settings: Settings,
    journal: Journal,
    *,
    account: str = "paper",
    clock: Callable[[], datetime] = utc_now,
    symbols: Iterable[str] | None = None,
) -> Broker:
    """The paper broker, restored from ``journal`` (or opened with ``broker.starting_cash``).

    ``symbols`` defaults to the bundled pairs plus ``market.csv_paths``.
    """
    tradable = symbols or [*DEFAULT_MARKET_RULES, *settings.market.csv_paths]
    return PaperBroker.from_config(
        settings.broker, journal, account=account, clock=clock, symbols=tradable
    )


def build_executor(
    settings: Settings,
    broker: Broker,
    market: MarketData,
    clock: Callable[[], datetime] = utc_now,
) -> GatedExecutor:
    """The risk-gated path to the broker that agents, chat and the API use."""
    return GatedExecutor(broker, market, settings.risk, clock, margin=settings.broker.margin)


def build_desk_models(settings: Settings) -> dict[AgentRole, BaseChatModel]:
    """One chat model per agent role."""
    return {role: build_chat_model(settings, role) for role in AGENT_ROLES}


@asynccontextmanager
async def open_desk(
    settings: Settings,
    *,
    sink: EventSink | None = None,
    models: Mapping[AgentRole, BaseChatModel] | None = None,
    memory: DecisionMemory | None = None,
    wrap_broker: Callable[[Broker], Broker] | None = None,
    checkpointer: CheckpointerFactory = open_checkpointer,
    memory_calls: MemoryCalls = asyncio.to_thread,
    embedder: Embedder | None = None,
) -> AsyncIterator[DeskRuntime]:
    """Build the desk from ``settings`` (``models``/``memory`` may be given, e.g. by tests)
    and close what it opened on exit. ``wrap_broker`` replaces the paper broker with what it
    makes of it, everywhere the desk uses one (the eval's fills at the next open, for
    instance); ``checkpointer`` opens the checkpoints (:func:`open_run_checkpointer` for an
    eval run); ``memory_calls`` is how the graph calls the memory (a worker thread by
    default); ``embedder`` ranks the news (default: the configured sentence model)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    bar = parse_timeframe(settings.market.timeframe)
    source, timelines = build_market(settings)
    market = ClosedBarsView(source, bar)
    clock = TickClock()
    journal = build_journal(settings)
    news: NewsView | None = None
    try:
        if settings.news.enabled():
            news = build_news(settings, embedder or build_embedder(settings))
        broker = build_broker(settings, journal, clock=clock)
        if wrap_broker is not None:
            broker = wrap_broker(broker)
        executor = build_executor(settings, broker, market, clock)
        deps = DeskDependencies(
            market=market,
            executor=executor,
            memory=memory or build_memory(settings),
            models=models or build_desk_models(settings),
            trader_tools=[t for t in build_agent_tools(executor) if t.name in READ_ONLY_TOOLS],
            card=load_card(settings.desk.persona_card),
            config=settings.desk,
            bar=bar,
            memory_calls=memory_calls,
            news=news,
            shorts=executor.margin is not None and executor.margin.enabled,
        )
        async with checkpointer(settings) as saver:
            runner = build_runner(settings, deps, saver, sink or _no_sink, clock)
            yield DeskRuntime(
                settings,
                market,
                broker,
                executor,
                deps.memory,
                runner,
                clock,
                timelines,
                news,
                deps,
            )
    finally:
        if news is not None:
            await news.aclose()
        journal.close()
        await source.aclose()


def build_runner(
    settings: Settings,
    deps: DeskDependencies,
    saver: BaseCheckpointSaver,
    sink: EventSink,
    clock: TickClock,
) -> DeskRunner:
    """The one-symbol desk, or the portfolio desk when ``desk.symbols`` lists several."""
    symbols = settings.desk.desk_symbols
    if len(symbols) == 1:
        return DeskRunner(build_desk_graph(deps, saver), sink, set_clock=clock.set)
    short_window = window_note(settings.risk, deps.bar)
    if short_window is not None:  # the book's VaR would quietly cover fewer days
        raise SettingsError(
            f"TRADECAST_RISK__RISK_WINDOW_DAYS: {short_window}; shorten the window or use "
            "longer bars (TRADECAST_MARKET__TIMEFRAME)"
        )
    graph = build_portfolio_graph(
        PortfolioDependencies(deps, symbols, symbols_at_once(settings)), saver
    )
    return PortfolioRunner(graph, symbols, sink=sink, set_clock=clock.set)


def symbols_at_once(settings: Settings) -> int:
    """How many symbols a portfolio tick decides at once: the setting, else one when an
    agent runs on the embedded model (one call at a time, and a symbol deciding alone keeps
    its context in the KV cache), else all (Ollama answers several at once)."""
    if settings.desk.symbols_at_once:
        return settings.desk.symbols_at_once
    embedded = any(
        settings.llm.for_role(role)[0] is LLMBackend.LLAMACPP
        for role in ("analyst", "risk", "trader")
    )
    return 1 if embedded else 0


READ_ONLY_TOOLS = frozenset({"get_price", "get_candles_summary", "get_portfolio"})
"""The tools the trader may call: it reads, it never submits."""


async def _no_sink(_: StreamEvent) -> None:
    return None

"""Builds the run's dependencies from settings.

This is the only module that picks implementations (embedded vs scale-out). Everything
below it depends on the small Protocols in each package, never on a mode flag.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from langchain_core.language_models import BaseChatModel

from tradecast.agents.persona_card import load_card
from tradecast.domain import StreamEvent, utc_now
from tradecast.graphs.checkpoints import desk_serializer
from tradecast.graphs.desk import DeskDependencies, build_desk_graph
from tradecast.graphs.runner import DeskRunner, EventSink
from tradecast.llm.factory import create_chat_model
from tradecast.memory.base import DecisionMemory
from tradecast.memory.embeddings import Embedder, SentenceTransformerEmbedder
from tradecast.settings import AGENT_ROLES, AgentRole, Settings
from tradecast.tools.agent_tools import build_agent_tools
from tradecast.tools.broker import Broker, PaperBroker
from tradecast.tools.closed_bars import ClosedBarsView, parse_timeframe
from tradecast.tools.execution import GatedExecutor
from tradecast.tools.journal import JOURNAL_FILENAME, Journal, SqliteJournal
from tradecast.tools.market_data import MarketData
from tradecast.tools.market_rules import DEFAULT_MARKET_RULES


def build_chat_model(settings: Settings, role: AgentRole) -> BaseChatModel:
    """The chat model one agent role talks to (llama.cpp in-process or Ollama)."""
    return create_chat_model(settings.llm, role)


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


def build_market_data(settings: Settings) -> MarketData:
    """Candles and prices: the bundled replay (plus ``market.csv_paths``) by default, or an
    exchange through ccxt when ``market.source`` is 'ccxt'. Close it with ``aclose()``."""
    config = settings.market
    if config.source == "ccxt":
        # ccxt is imported only when a live market is asked for (it is slow to import)
        from tradecast.tools.ccxt_market import CcxtMarket

        return CcxtMarket(config.exchange, config.timeframe)
    from tradecast.tools.replay import ReplayMarket

    return ReplayMarket(csv_paths=config.csv_paths)


def build_journal(settings: Settings) -> Journal:
    """The broker's journal: SQLite at ``data_dir/journal.sqlite`` (a Postgres journal for
    the scale-out setup implements the same Protocol; it comes with issue 8)."""
    return SqliteJournal(settings.data_dir / JOURNAL_FILENAME)


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
    return GatedExecutor(broker, market, settings.risk, clock)


class TickClock:
    """The desk's clock: the tick's instant while replaying, the wall clock otherwise."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start

    def set(self, at: datetime) -> None:
        """Make ``at`` the current instant (a replayed tick)."""
        self._now = at

    def __call__(self) -> datetime:
        return self._now or utc_now()


@dataclass
class DeskRuntime:
    """A desk ready to tick, with the parts the API and CLI read from."""

    settings: Settings
    market: MarketData
    broker: Broker
    executor: GatedExecutor
    memory: DecisionMemory
    runner: DeskRunner
    clock: TickClock


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
) -> AsyncIterator[DeskRuntime]:
    """Build the desk from ``settings`` (``models``/``memory`` may be given, e.g. by tests) and
    close what it opened on exit."""
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    bar = parse_timeframe(settings.market.timeframe)
    source = build_market_data(settings)
    market = ClosedBarsView(source, bar)
    clock = TickClock()
    journal = build_journal(settings)
    try:
        broker = build_broker(settings, journal, clock=clock)
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
        )
        checkpoints = settings.data_dir / "checkpoints.sqlite"
        async with aiosqlite.connect(str(checkpoints)) as connection:
            saver = AsyncSqliteSaver(connection, serde=desk_serializer())
            graph = build_desk_graph(deps, saver)
            runner = DeskRunner(graph, sink or _no_sink, set_clock=clock.set)
            yield DeskRuntime(settings, market, broker, executor, deps.memory, runner, clock)
    finally:
        journal.close()
        await source.aclose()


READ_ONLY_TOOLS = frozenset({"get_price", "get_candles_summary", "get_portfolio"})
"""The tools the trader may call: it reads, it never submits."""


async def _no_sink(_: StreamEvent) -> None:
    return None

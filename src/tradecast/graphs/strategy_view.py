"""What the strategy agents and the adaptive weights make of a tick: the strategies' votes
over daily bars, the regime, each voter's weight from the memory's recent outcomes, and the
desk's closed trades (for Kelly sizing). Part of ``gather_context``."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tradecast.agents.strategies import HISTORY_DAYS, StrategyInputs, strategy_signals
from tradecast.agents.weights import agent_weights, current_regime, track_records
from tradecast.domain import AgentSignal, AgentWeight, Candle, Fill, Portfolio
from tradecast.domain.base import parse_duration
from tradecast.market.regimes import UNKNOWN
from tradecast.memory.base import DecisionMemory
from tradecast.risk.sizing import trade_record
from tradecast.settings import DeskConfig

MAX_BARS_READ = 5000
"""The most bars a tick reads (the strategies' history on a fine timeframe is cut here)."""
RECORD_SPAN_CADENCES = 3
"""A track record reads the decisions of the last ``record_decisions`` x this many cadences
(a desk that paused leaves gaps; the span stays bounded however long the desk has run)."""
MAX_CLOSED_TRADES = 200
"""Closed trades a Kelly size reads: the latest ones."""


@dataclass(frozen=True)
class StrategySources:
    """What the strategy view reads besides the bars: the memory, the desk's settings, the
    bar length and how memory calls are made (see ``graphs.nodes.MemoryCalls``)."""

    memory: DecisionMemory
    config: DeskConfig
    bar: timedelta
    memory_calls: Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class StrategyView:
    """What the strategy agents and the adaptive weights make of the bars and the record."""

    inputs: StrategyInputs
    signals: list[AgentSignal]
    regime: str | None
    weights: tuple[AgentWeight, ...]
    closed_trades: tuple[float, ...]


def bars_read(config: DeskConfig, bar: timedelta) -> int:
    """Bars a tick reads: the prompt's ``candles`` or the strategies' daily history."""
    strategy_bars = math.ceil((HISTORY_DAYS + 1) * _bars_per_day(bar))
    return min(MAX_BARS_READ, max(config.candles, strategy_bars))


async def strategy_view(
    sources: StrategySources,
    symbol: str,
    at: datetime,
    history: Sequence[Candle],
    portfolio: Portfolio,
    fills: Iterable[Fill],
) -> StrategyView:
    """The strategies' votes, the regime and the weights at ``at`` over the closed bars
    ``history`` (oldest first), and the closed trades of ``symbol`` from ``fills``."""
    config = sources.config.strategy
    position = portfolio.position(symbol)
    held = (
        position.market_value(portfolio.prices.get(symbol, position.avg_price)) if position else 0
    )
    weight = float(held / portfolio.equity) if portfolio.equity > 0 else 0.0
    inputs = StrategyInputs.from_candles(history, _bars_per_day(sources.bar), weight)
    records = {}
    regime = None
    if config.adaptive_weights:
        regime = current_regime(inputs)
        recent = await sources.memory_calls(
            sources.memory.recent,
            symbol=symbol,
            as_of=at,
            since=at - RECORD_SPAN_CADENCES * config.record_decisions * _cadence(sources),
            limit=config.record_decisions,
        )
        records = track_records(
            recent,
            horizon=sources.config.outcome_horizons[0],
            half_life=config.record_half_life,
            prior=config.record_prior,
        )
    return StrategyView(
        inputs=inputs,
        signals=strategy_signals(inputs, config.strategies),
        regime=regime,
        weights=agent_weights(sources.config, regime or UNKNOWN, records),
        closed_trades=trade_record(fills, symbol).returns[-MAX_CLOSED_TRADES:],
    )


def _cadence(sources: StrategySources) -> timedelta:
    return max(sources.bar, parse_duration(sources.config.every, "desk.every"))


def _bars_per_day(bar: timedelta) -> float:
    return timedelta(days=1) / bar

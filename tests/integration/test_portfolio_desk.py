"""The portfolio desk graph with scripted chat models at the edge and everything else real:
both bundled datasets in the replay market, one paper account and its journal, the
portfolio check, the per-order gate, the in-process memory with the real embedding model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from support.scripted_model import NO_TOOL, ScriptedChatModel, analyst, risk, trader
from tradecast.bootstrap import open_desk
from tradecast.desk.runtime import DeskRuntime
from tradecast.domain import Side
from tradecast.evals.portfolio_checks import portfolio_violations
from tradecast.graphs.portfolio_plan import per_symbol_calls
from tradecast.graphs.portfolio_runner import PortfolioRunner
from tradecast.memory.inprocess import InProcessDecisionMemory
from tradecast.risk.book_exposure import book_exposure
from tradecast.settings import load_settings

SYMBOLS = ["BTC/USDT", "ETH/BUSD"]
AT = datetime(2021, 3, 1, tzinfo=UTC)


def models(action: str = "BUY") -> dict[str, ScriptedChatModel]:
    return {
        "analyst": ScriptedChatModel(script=[analyst(action, 0.9)]),
        "risk": ScriptedChatModel(script=[risk("approve", 1.0)]),
        "trader": ScriptedChatModel(script=[NO_TOOL, trader(action, 1.0, 0.9)]),
        "persona": ScriptedChatModel(script=["Two books, one brain!"]),
    }


@asynccontextmanager
async def portfolio_desk(
    tmp_path: Path,
    embedder: Any,
    chat: dict[str, Any],
    desk: dict[str, Any] | None = None,
    **overrides: Any,
) -> AsyncIterator[tuple[DeskRuntime, Any]]:
    settings = load_settings(
        data_dir=tmp_path / "data",
        # the scripted LLM agents alone vote, so that the test says what the desk decides
        desk={
            "symbols": SYMBOLS,
            "memory_k": 0,
            "rules_weight": 0,
            "analyst_weight": 1,
            "trader_weight": 1,
            "strategy": {"sizing": "fixed", "strategies": []},
            **(desk or {}),
        },
        **overrides,
    )
    memory = InProcessDecisionMemory(embedder)
    async with open_desk(settings, models=chat, memory=memory) as desk:
        assert isinstance(desk.runner, PortfolioRunner)
        yield desk, desk.runner


async def tick(desk: DeskRuntime, runner: Any, at: datetime) -> dict[str, Any]:
    result = await runner.tick(SYMBOLS[0], at)
    return await runner.state(result.thread_id)


async def test_one_tick_decides_every_symbol_and_buys_both_within_the_limits(tmp_path, embedder):
    async with portfolio_desk(tmp_path, embedder, models()) as (desk, graph):
        state = await tick(desk, graph, AT)
        book = desk.broker.portfolio()
        exposure = await book_exposure(
            desk.market, timedelta(hours=1), book, AT, desk.executor.limits
        )
    assert sorted(p.symbol for p in state["proposals"]) == SYMBOLS
    assert all(p.decision.action == "BUY" for p in state["proposals"])
    filled = {o.symbol for o in state["outcomes"] if o.execution and o.execution.fills}
    assert filled == set(SYMBOLS)
    assert {p.symbol for p in book.positions} == set(SYMBOLS)
    calls = per_symbol_calls(state)
    assert set(calls) == set(SYMBOLS) and all(1 <= n <= 5 for n in calls.values())
    assert sum(calls.values()) == 4 * 2 + 1  # analyst, risk, trader x2 each; one persona call
    assert state["persona"] and state["headline"] in SYMBOLS
    assert exposure.gross <= desk.executor.limits.max_gross_exposure_pct
    assert portfolio_violations(state, exposure, desk.executor.limits) == []


async def test_the_portfolio_caps_scale_the_buys_of_the_whole_book(tmp_path, embedder):
    risk_limits = {"max_position_pct": "0.30", "max_gross_exposure_pct": "0.20"}
    async with portfolio_desk(tmp_path, embedder, models(), risk=risk_limits) as (desk, graph):
        state = await tick(desk, graph, AT)
        book = desk.broker.portfolio()
    review = state["review"]
    assert 0 < review.scale < 1
    assert any("gross" in note for note in review.notes)
    gross = sum(abs(p.market_value(book.prices[p.symbol])) for p in book.positions)
    assert gross / book.equity <= Decimal("0.20")
    assert len(book.positions) == 2  # both scaled by the one factor, neither dropped


async def test_kill_switch_stops_every_symbol(tmp_path, embedder):
    async with portfolio_desk(tmp_path, embedder, models(), risk={"kill_switch": True}) as (
        desk,
        graph,
    ):
        state = await tick(desk, graph, AT)
        assert desk.broker.fills() == []
    assert state["review"].orders == ()
    assert all(p.decision.action == "BUY" for p in state["proposals"])


async def test_a_rerun_tick_fills_nothing_twice_and_sells_go_first(tmp_path, embedder):
    async with portfolio_desk(tmp_path, embedder, models()) as (desk, graph):
        await tick(desk, graph, AT)
        held = len(desk.broker.fills())
        await tick(desk, graph, AT)  # the same tick again: the same client order ids
        assert len(desk.broker.fills()) == held == 2
    async with portfolio_desk(tmp_path, embedder, models("SELL")) as (desk, graph):
        state = await tick(desk, graph, AT + timedelta(hours=4))
        book = desk.broker.portfolio()
    orders = state["review"].orders
    assert [o.intent.side for o in orders] == [Side.SELL, Side.SELL]
    assert all(o.exit for o in orders)
    assert book.positions == ()


async def test_the_runner_reports_one_decision_per_symbol_and_a_finished_tick_is_not_rerun(
    tmp_path, embedder
):
    async with portfolio_desk(tmp_path, embedder, models()) as (desk, runner):
        result = await runner.tick(SYMBOLS[0], AT)
        again = await runner.tick(SYMBOLS[0], AT)
        fills = desk.broker.fills()
    reports = result.reports()
    assert sorted(r.decision.symbol for r in reports) == SYMBOLS
    assert all(r.portfolio is not None and r.portfolio.symbols == SYMBOLS for r in reports)
    assert all(r.risk.approved and r.fills for r in reports)
    assert result.persona.text and not any(r.persona.text for r in result.companions)
    assert {r.decision.symbol: r.llm.calls for r in reports} == result.portfolio.llm_calls
    assert "companions" not in result.model_dump(mode="json")
    assert again.resumed and len(fills) == 2
    assert sorted(r.decision.id for r in again.reports()) == sorted(r.decision.id for r in reports)


async def test_on_margin_a_sell_opens_shorts_with_stops_above_within_the_book_limits(
    tmp_path, embedder
):
    margin = {"margin": {"enabled": True}}
    async with portfolio_desk(tmp_path, embedder, models("SELL"), broker=margin) as (desk, run):
        state = await tick(desk, run, AT)
        book = desk.broker.portfolio()
        exposure = await book_exposure(
            desk.market, timedelta(hours=1), book, AT, desk.executor.limits
        )
    shorts = [p for p in book.positions if p.side == "short"]
    assert {p.symbol for p in shorts} == set(SYMBOLS)
    assert all(p.liquidation_price and p.liquidation_price > book.prices[p.symbol] for p in shorts)
    opening = [o for o in state["review"].orders if not o.exit]
    assert opening and all(o.intent.side is Side.SELL for o in opening)
    for order in opening:
        stop = order.intent.stop_loss
        assert stop is not None and stop > book.prices[order.symbol]
    assert exposure.net <= desk.executor.limits.max_net_exposure_pct
    assert portfolio_violations(state, exposure, desk.executor.limits) == []


def by_symbol_and_time(make: Any, actions: dict[tuple[str, str], str], default: str) -> Any:
    """A scripted reply that depends on the symbol and the time in the prompt."""

    def reply(messages: list[Any]) -> dict[str, Any]:
        text = " ".join(str(m.content) for m in messages)
        for (symbol, hour), action in actions.items():
            if f"Symbol: {symbol}. Time: 2021-03-01 {hour}" in text:
                return make(action)
        return make(default)

    return reply


async def test_an_exit_cut_by_the_gate_leaves_no_room_it_did_not_free(tmp_path, embedder):
    # tick 1 buys BTC; tick 2 sells it and buys ETH with the room the exit was to free, but
    # the gate cuts the exit to max_order_notional: the ETH buy is checked again
    plan = {("ETH/BUSD", "00:00"): "HOLD", ("BTC/USDT", "04:00"): "SELL"}
    chat = {
        "analyst": ScriptedChatModel(
            script=[by_symbol_and_time(lambda a: analyst(a, 0.9), plan, "BUY")]
        ),
        "risk": ScriptedChatModel(script=[risk("approve", 1.0)]),
        "trader": ScriptedChatModel(
            script=[by_symbol_and_time(lambda a: trader(a, 1.0, 0.9), plan, "BUY")]
        ),
        "persona": ScriptedChatModel(script=["Steady now."]),
    }
    loose = {
        "max_position_pct": "0.7",
        "max_order_notional": "10000",
        "max_gross_exposure_pct": "1",
        "max_net_exposure_pct": "1",
        "max_var_pct": "1",
        "max_cvar_pct": "1",
    }
    one_call = {"trader_tool_steps": 0}
    async with portfolio_desk(tmp_path, embedder, chat, one_call, risk=loose) as (desk, run):
        await tick(desk, run, AT)
        desk.executor.update_limits(
            max_gross_exposure_pct=Decimal("0.5"),
            max_net_exposure_pct=Decimal("0.5"),
            max_order_notional=Decimal("2000"),
        )
        state = await tick(desk, run, AT + timedelta(hours=4))
        book = desk.broker.portfolio()
        exposure = await book_exposure(
            desk.market, timedelta(hours=1), book, AT, desk.executor.limits
        )
    (exit_,) = [o for o in state["outcomes"] if o.symbol == "BTC/USDT"]
    assert exit_.execution is not None and exit_.verdict.shrunk  # cut to 2,000
    assert book.position("BTC/USDT") is not None  # some of BTC is still held
    (planned,) = [o for o in state["review"].orders if o.symbol == "ETH/BUSD"]
    (bought,) = [o for o in state["outcomes"] if o.symbol == "ETH/BUSD"]
    assert bought.execution is not None
    assert bought.execution.order.intent.quantity < planned.intent.quantity / 2
    assert exposure.gross <= Decimal("0.5")
    assert portfolio_violations(state, exposure, desk.executor.limits) == []

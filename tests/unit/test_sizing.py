"""Sizing: volatility targeting and fractional Kelly, never past the risk limits; the closed
trades Kelly reads; ATR exits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradecast.agents.consensus import SizingContext, combine
from tradecast.agents.weights import agent_weights
from tradecast.domain import Action, AgentSignal, Fill, Side
from tradecast.market.regimes import UNKNOWN
from tradecast.risk.exits import atr_exits, trader_exits
from tradecast.risk.sizing import TradeRecord, target_weight, trade_record
from tradecast.settings import DeskConfig, StrategyConfig

AT = datetime(2021, 3, 1, tzinfo=UTC)


def fill(side: Side, quantity: str, price: str, fee: str = "0", symbol: str = "BTC/USDT") -> Fill:
    return Fill(
        order_id="o",
        symbol=symbol,
        side=side,
        quantity=Decimal(quantity),
        price=Decimal(price),
        fee=Decimal(fee),
        timestamp=AT,
    )


def test_volatility_sizing_targets_the_book_volatility_and_is_capped() -> None:
    config = StrategyConfig(sizing="volatility", target_daily_vol=0.005)
    calm = target_weight(config, cap=0.10, daily_volatility=0.02, record=TradeRecord())
    lively = target_weight(config, cap=0.10, daily_volatility=0.10, record=TradeRecord())
    wild = target_weight(config, cap=0.10, daily_volatility=0.25, record=TradeRecord())
    assert calm.weight == 0.10 and "0.50%/day at 2.00%/day: capped at 10.0%" in calm.note
    assert lively.weight == pytest.approx(0.05) and wild.weight == pytest.approx(0.02)


def test_kelly_is_shrunk_toward_zero_with_few_trades_and_probes_without_a_record() -> None:
    config = StrategyConfig(sizing="kelly", kelly_fraction=0.5, kelly_prior_trades=20)
    nothing = target_weight(config, cap=0.10, daily_volatility=None, record=TradeRecord())
    assert nothing.weight == pytest.approx(0.01) and "probe" in nothing.note  # 10% of the cap
    # 3 wins of +10%, 1 loss of -5%: p = 0.75, b = 2, full Kelly 0.625
    record = TradeRecord((0.1, 0.1, -0.05, 0.1, 0.0))  # a trade at break-even says nothing
    assert record.kelly() == 0.625
    sized = target_weight(config, cap=0.10, daily_volatility=None, record=record)
    assert sized.weight == pytest.approx(0.625 * 0.5 * 5 / 25) and sized.firm
    assert not nothing.firm  # a probe: a larger position is not trimmed down to it


def test_closed_trades_are_sells_against_the_average_cost_with_fees() -> None:
    fills = [
        fill(Side.BUY, "1", "100", fee="1"),
        fill(Side.BUY, "1", "120", fee="1"),
        fill(Side.BUY, "5", "1", symbol="ETH/USDT"),
        fill(Side.SELL, "1", "132", fee="1"),  # basis 111 per unit: (131 / 111) - 1
        fill(Side.SELL, "1", "100", fee="0"),
        fill(Side.SELL, "1", "100", fee="0"),  # nothing left: not a trade
    ]
    record = trade_record(fills, "BTC/USDT")
    assert [round(r, 6) for r in record.returns] == [
        round(131 / 111 - 1, 6),
        round(100 / 111 - 1, 6),
    ]


def test_atr_exits_breathe_with_the_market_and_the_time_stop_follows_the_buy() -> None:
    config = StrategyConfig(stop_atr=2.0, take_profit_atr=3.0, time_stop_days=5)
    plan = atr_exits(config, Decimal(100), 4.0, AT)
    assert plan.stop_loss == Decimal("92.00") and plan.take_profit == Decimal("112.00")
    assert plan.time_stop_at == AT + timedelta(days=5)
    assert atr_exits(config, Decimal(100), None, AT).stop_loss is None
    assert atr_exits(config, Decimal(100), 60.0, AT).stop_loss is None  # would be below 0
    # rounded away from the price to the cent, never onto it (the gate would refuse the buy)
    tight = atr_exits(
        StrategyConfig(stop_atr=0.001, take_profit_atr=0.001), Decimal("0.05"), 0.001, AT
    )
    assert (tight.stop_loss, tight.take_profit) == (Decimal("0.04"), Decimal("0.06"))
    near = atr_exits(StrategyConfig(stop_atr=1, take_profit_atr=1), Decimal(60000), 0.004, AT)
    assert (near.stop_loss, near.take_profit) == (Decimal("59999.99"), Decimal("60000.01"))
    legacy = trader_exits(Decimal(100), stop_loss_pct=0.05, take_profit_pct=0.1)
    assert (legacy.stop_loss, legacy.take_profit) == (Decimal("95.00"), Decimal("110.00"))


methods = st.sampled_from(["volatility", "kelly", "fixed"])
unit = st.floats(min_value=0, max_value=1)
returns = st.lists(st.floats(min_value=-0.99, max_value=10), max_size=50)


@given(
    method=methods,
    cap=st.decimals(min_value="0.001", max_value=1, places=3),
    volatility=st.one_of(st.none(), st.floats(min_value=1e-6, max_value=5)),
    record=returns,
    held=st.decimals(min_value=0, max_value=10, places=6),
    price=st.decimals(min_value="0.01", max_value=100000, places=2),
    equity=st.decimals(min_value=1, max_value=10_000_000, places=2),
    votes=st.lists(st.tuples(st.sampled_from(["trend", "dca", "breakout"]), unit, unit)),
    risk_size=unit,
)
def test_a_buy_never_takes_the_position_past_the_cap(
    method, cap, volatility, record, held, price, equity, votes, risk_size
) -> None:
    config = DeskConfig(strategy=StrategyConfig(sizing=method))
    target = target_weight(
        config.strategy,
        cap=float(cap),
        daily_volatility=volatility,
        record=TradeRecord(tuple(record)),
    )
    assert 0 <= target.weight <= float(cap)
    sizing = SizingContext(
        price=price,
        equity=equity,
        held_quantity=held,
        max_position_pct=cap,
        target_weight=None if method == "fixed" else Decimal(str(target.weight)),
        note=target.note,
    )
    signals = [
        AgentSignal(agent=a, action=Action.BUY, confidence=c, size_fraction=f) for a, c, f in votes
    ]
    risk = AgentSignal(agent="risk", action=Action.HOLD, confidence=1, size_fraction=risk_size)
    decision = combine(
        symbol="BTC/USDT",
        at=AT,
        signals=signals,
        risk=risk,
        sizing=sizing,
        config=config,
        weights=agent_weights(config, UNKNOWN, {}),
    )
    if decision.action is Action.BUY:
        after = (held + decision.quantity) * price
        limit = cap * equity
        assert decision.quantity * price <= limit
        if method != "fixed":  # fixed adds to what is held; the gate caps the position
            assert after <= max(limit, held * price)
    if decision.action is Action.SELL:
        assert decision.quantity <= held

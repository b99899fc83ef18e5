"""The eval's trade log, equity curve, baseline extensions and after-the-fact checks, on
series and portfolios worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from tradecast.broker.market_rules import DEFAULT_MARKET_RULES, CostModel
from tradecast.broker.paper import Execution
from tradecast.domain import (
    Action,
    Decision,
    Fill,
    Order,
    OrderIntent,
    OrderStatus,
    PersonaLine,
    Portfolio,
    Position,
    RiskVerdict,
    Side,
)
from tradecast.evals.baselines import (
    at_decisions,
    buy_and_hold_equity,
    closed_trade_returns,
    rsi_mean_reversion_positions,
    window_baselines,
)
from tradecast.evals.checks import grounding_errors, risk_violations
from tradecast.evals.ledger import closed_trade_pnls, equity_curve, price_grid, trade_log
from tradecast.market.indicators import rsi
from tradecast.settings import RiskLimits

T0 = datetime(2021, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)
BTC = "BTC/USDT"


def _fill(i: int, side: Side, qty: str, price: str, fee: str) -> Fill:
    return Fill(
        order_id=f"PB-{i}",
        symbol=BTC,
        side=side,
        quantity=Decimal(qty),
        price=Decimal(price),
        fee=Decimal(fee),
        timestamp=T0 + i * H,
    )


def _order(i: int, client_id: str, side: Side) -> Order:
    intent = OrderIntent(symbol=BTC, side=side, quantity=Decimal(1), client_order_id=client_id)
    return Order(
        id=f"PB-{i}",
        client_order_id=client_id,
        intent=intent,
        status=OrderStatus.FILLED,
        created_at=T0 + i * H,
    )


FILLS = [
    _fill(1, Side.BUY, "1", "100", "0.1"),
    _fill(2, Side.BUY, "1", "110", "0.11"),
    _fill(3, Side.SELL, "1", "120", "0.12"),
    _fill(4, Side.SELL, "1", "100", "0.1"),
]
ORDERS = [
    _order(1, "tc-a", Side.BUY),
    _order(2, "tc-b", Side.BUY),
    _order(3, "tc-c", Side.SELL),
    _order(4, "stop_loss-PB-4", Side.SELL),
]


def test_trade_log_by_hand():
    rows = trade_log(FILLS, ORDERS, Decimal(1000))
    # cash: 1000 - 100.1 = 899.9; - 110.11 = 789.79; + 119.88 = 909.67; + 99.9 = 1009.57
    assert [r.cash_after for r in rows] == [
        Decimal("899.9"),
        Decimal("789.79"),
        Decimal("909.67"),
        Decimal("1009.57"),
    ]
    assert [r.position_after for r in rows] == [1, 2, 1, 0]
    # average cost with buy fees: (100.1 + 110.11) / 2 = 105.105 per unit
    # sell 1 at 120 with fee 0.12: 119.88 - 105.105 = 14.775; at 100 with 0.1: -5.205
    assert rows[2].realized_pnl == Decimal("14.775")
    assert rows[3].realized_pnl == Decimal("-5.205")
    assert closed_trade_pnls(rows) == [14.775, -5.205]
    assert [r.trigger for r in rows] == ["desk", "desk", "desk", "stop_loss"]
    assert rows[0].as_dict()["realized_pnl"] == ""


def test_equity_curve_marks_every_instant():
    rows = trade_log(FILLS, ORDERS, Decimal(1000))
    prices = pd.Series(
        [100.0, 100.0, 110.0, 120.0, 100.0], index=pd.DatetimeIndex([T0 + i * H for i in range(5)])
    )
    curve = equity_curve(rows, prices, Decimal(1000))
    # t0: no fill yet 1000; t1: 899.9 + 100; t2: 789.79 + 220; t3: 909.67 + 120; t4: 1009.57
    np.testing.assert_allclose(curve["equity"], [1000, 999.9, 1009.79, 1029.67, 1009.57])
    np.testing.assert_array_equal(curve["position"], [0, 1, 2, 1, 0])


def test_price_grid_starts_at_the_last_close_known_at_start():
    frame = pd.DataFrame(
        {"close": [1.0, 2.0, 3.0, 4.0, 5.0]}, index=pd.DatetimeIndex([T0 + i * H for i in range(5)])
    )
    grid = price_grid(frame, H, T0 + 2.5 * H, T0 + 4 * H)
    # bars close at 01:00..05:00; the last close at or before 02:30 is 02:00 (bar 2)
    assert list(grid.index) == [T0 + 2 * H, T0 + 3 * H, T0 + 4 * H]
    assert list(grid) == [2.0, 3.0, 4.0]


def test_at_decisions_trades_only_on_decision_bars():
    wanted = [0, 1, 1, 0, 1]
    decide = [False, True, False, True, False]
    # flat until the first decision (bar 1: 1), bar 3 decides 0, bar 4 cannot trade
    np.testing.assert_array_equal(at_decisions(wanted, decide), [0, 1, 1, 0, 0])


def test_closed_trade_returns_by_hand():
    close = [100.0, 110.0, 121.0, 100.0, 50.0]
    positions = [1, 1, 0, 1, 1]
    # one closed trade: in at 100, out at 121 -> 0.21; the second is still open
    np.testing.assert_allclose(closed_trade_returns(close, positions, 0.0), [0.21])
    np.testing.assert_allclose(closed_trade_returns(close, positions, 10.0), [0.999**2 * 1.21 - 1])


def test_rsi_mean_reversion_matches_a_loop():
    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 600)))
    strength = rsi(pd.Series(close)).to_numpy()
    expected, held = [], 0.0
    for value in strength:  # enter below 30, leave above 70, else keep what is held
        if value < 30:
            held = 1.0
        elif value > 70:
            held = 0.0
        expected.append(held)
    got = rsi_mean_reversion_positions(close)
    np.testing.assert_array_equal(got, expected)
    assert 0 < got.sum() < len(got)


def test_window_baselines_share_the_window_cadence_and_costs():
    index = pd.DatetimeIndex([T0 + i * H for i in range(300)])
    rng = np.random.default_rng(3)
    close = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300))), index=index)
    window = index[200:]
    decisions = pd.DatetimeIndex([T0 + (200 + 4 * i) * H for i in range(25)])
    out = window_baselines(close, window, decisions, 1000.0, 17.0)
    np.testing.assert_allclose(
        out["buy_and_hold"]["equity"], buy_and_hold_equity(close[200:].to_numpy(), 1000.0, 17.0)
    )
    for result in out.values():
        changes = np.flatnonzero(np.diff(result["positions"], prepend=0.0))
        assert all((c % 4) == 0 for c in changes), "trades only at decision bars"
        assert len(result["equity"]) == len(window)
    # the rules are warmed up by the history before the window: the crossover is defined
    # at the window's first bar, so it may hold a position from the first decision
    assert not np.isnan(out["sma_crossover_20_50"]["equity"]).any()


# --- after-the-fact checks ---------------------------------------------------------------

AT = datetime(2021, 1, 5, 12, tzinfo=UTC)
PRICE = Decimal("30000")
COSTS = CostModel()
RULES = DEFAULT_MARKET_RULES[BTC]


def _state(side: Side, qty: str, held: str = "0") -> dict:
    portfolio = Portfolio(
        cash=Decimal(10000),
        prices={BTC: PRICE},
        timestamp=AT,
        peak_equity=Decimal(10000),
        day_start_equity=Decimal(10000),
        positions=(Position(symbol=BTC, quantity=Decimal(held), avg_price=PRICE),)
        if Decimal(held)
        else (),
    )
    intent = OrderIntent(symbol=BTC, side=side, quantity=Decimal(qty), client_order_id="tc-x")
    fill_price = COSTS.taker_price(side, Decimal(qty), PRICE, RULES)
    fill = Fill(
        order_id="PB-1",
        symbol=BTC,
        side=side,
        quantity=Decimal(qty),
        price=fill_price,
        fee=COSTS.fee(Decimal(qty) * fill_price),
        timestamp=AT,
    )
    order = Order(
        id="PB-1", client_order_id="tc-x", intent=intent, status=OrderStatus.FILLED, created_at=AT
    )
    return {
        "at": AT,
        "context": SimpleNamespace(portfolio=portfolio, price=PRICE),
        "execution": Execution(order=order, fills=(fill,)),
    }


def test_an_order_within_the_limits_has_no_violation():
    # 0.03 BTC at 30,000 is 900: under 10% of 10,000 equity and under 2,000 notional
    assert risk_violations(_state(Side.BUY, "0.03"), RiskLimits(), RULES, COSTS) == []
    assert risk_violations(_state(Side.SELL, "0.01", held="0.02"), RiskLimits(), RULES, COSTS) == []


def test_an_oversize_buy_is_a_violation_twice_over():
    # 0.05 BTC is 1,500: over 10% of equity; the gate would have shrunk it
    problems = risk_violations(_state(Side.BUY, "0.05"), RiskLimits(), RULES, COSTS)
    assert any("of equity" in p for p in problems)
    assert any("shrink" in p for p in problems)
    # 0.1 BTC is 3,000: over the order notional too
    problems = risk_violations(_state(Side.BUY, "0.1"), RiskLimits(), RULES, COSTS)
    assert any("max_order_notional" in p for p in problems)


def test_selling_what_is_not_held_or_trading_with_the_kill_switch_is_a_violation():
    problems = risk_violations(_state(Side.SELL, "0.01"), RiskLimits(), RULES, COSTS)
    assert any("no shorts" in p for p in problems)
    killed = RiskLimits(kill_switch=True)
    problems = risk_violations(_state(Side.BUY, "0.01"), killed, RULES, COSTS)
    assert any("kill switch" in p for p in problems)


def test_a_tick_without_an_execution_has_nothing_to_check():
    assert risk_violations({"execution": None}, RiskLimits(), RULES, COSTS) == []


def _spoken(*lines: str) -> dict:
    decision = Decision(
        id="BTCUSDT-20210105T1200",
        symbol=BTC,
        action=Action.HOLD,
        quantity=Decimal(0),
        price=PRICE,
        confidence=0.4,
        decided_at=AT,
    )
    return {
        "decision": decision,
        "execution": None,
        "verdict": RiskVerdict(approved=False, reasons=("nothing to trade (HOLD)",)),
        "persona": [PersonaLine(text=line) for line in lines],
    }


def test_grounding_recheck_flags_only_unsupported_sentences():
    assert (
        grounding_errors(
            _spoken("Holding on BTC/USDT at 30,000.00 USDT for now.", "Patience is a position too!")
        )
        == []
    )
    errors = grounding_errors(_spoken("Holding at 30,000.00 USDT.", "I bought 5 ETH!"))
    assert len(errors) == 1 and "ETH" in errors[0]
    assert grounding_errors({"decision": None}) == []


@pytest.mark.parametrize("kind", ["BUY", "SELL"])
def test_executed_facts_are_grounded_for_fills(kind: str):
    side = Side(kind)
    state = _state(side, "0.01", held="0.02")
    fill = state["execution"].fills[0]
    decision = Decision(
        id="BTCUSDT-20210105T1200",
        symbol=BTC,
        action=Action(kind),
        quantity=Decimal("0.01"),
        price=PRICE,
        confidence=0.8,
        decided_at=AT,
    )
    verb = "Bought" if kind == "BUY" else "Sold"
    state |= {
        "decision": decision,
        "verdict": RiskVerdict(approved=True),
        "persona": [PersonaLine(text=f"{verb} 0.01 BTC at {fill.price:,.2f} USDT.")],
    }
    assert grounding_errors(state) == []


def test_the_gate_reason_quoted_by_the_fallback_counts_as_grounded():
    from tradecast.agents.grounding import fallback_sentence
    from tradecast.graphs.nodes import persona_facts

    decision = Decision(
        id="BTCUSDT-20210105T1200",
        symbol=BTC,
        action=Action.BUY,
        quantity=Decimal("0.01"),
        price=PRICE,
        confidence=0.8,
        decided_at=AT,
    )
    reason = (
        "max drawdown lock: equity 8500.00 is 15% below the peak 10000.00 (limit 15%); "
        "only sells are allowed"
    )
    state = {
        "decision": decision,
        "execution": None,
        "verdict": RiskVerdict(approved=False, reasons=(reason,)),
    }
    said = fallback_sentence(persona_facts(state))
    assert "8500.00" in said
    assert grounding_errors(state | {"persona": [PersonaLine(text=said)]}) == []
    invented = state | {"persona": [PersonaLine(text="Equity is 7,000.00 now.")]}
    assert len(grounding_errors(invented)) == 1

"""The risk gate on hand-picked cases: every limit, shrinking, the locks, and limit updates."""

from __future__ import annotations

import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tradecast.broker.market_rules import CostModel, rules_for
from tradecast.domain import Order, OrderStatus, Portfolio, Position, RiskVerdict
from tradecast.errors import RiskLimitsError
from tradecast.risk.gate import MarketContext, check_order, updated_limits
from tradecast.settings import MarginConfig, RiskLimits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.broker import BTC, ETH, T0, buy, sell

D = Decimal
LOOSE = RiskLimits(max_position_pct=D("1"), max_order_notional=D("1000000"), max_open_positions=5)


def portfolio(cash: str = "10000", **extra: Any) -> Portfolio:
    extra.setdefault("timestamp", T0)
    return Portfolio(cash=D(cash), **extra)


def market(
    price: str = "50000", symbol: str = BTC, open_orders: tuple[Order, ...] = ()
) -> MarketContext:
    return MarketContext(
        symbol=symbol,
        price=D(price),
        rules=rules_for(symbol),
        costs=CostModel(),
        open_orders=open_orders,
    )


def check(
    intent: Any,
    folio: Portfolio | None = None,
    limits: RiskLimits | None = None,
    context: MarketContext | None = None,
    now: Any = T0,
) -> RiskVerdict:
    return check_order(
        intent,
        folio or portfolio(),
        limits or RiskLimits(),
        context or market(symbol=intent.symbol),
        now,
    )


def btc_position(quantity: str, avg: str = "50000", **extra: Any) -> Position:
    return Position(symbol=BTC, quantity=D(quantity), avg_price=D(avg), **extra)


def test_risk_gate_approves_a_small_buy_unchanged() -> None:
    intent = buy("0.01")
    verdict = check(intent)
    assert verdict == RiskVerdict(approved=True, intent=intent, reasons=(), shrunk=False)


def test_risk_gate_shrinks_an_oversize_buy_to_the_position_limit() -> None:
    verdict = check(buy("1"))
    assert verdict.approved and verdict.shrunk
    assert verdict.intent is not None
    # 10% of 10,000 equity at 50,000, less the fill's costs, rounded down to 0.00001
    assert verdict.intent.quantity == D("0.01999")
    assert verdict.reasons == (
        "quantity shrunk from 1 to 0.01999: limited by max position 10% of equity 10000.00",
    )


def test_risk_gate_counts_the_held_position_against_the_limit() -> None:
    folio = portfolio("9000", positions=(btc_position("0.015"),), prices={BTC: D("50000")})
    verdict = check(buy("1"), folio)
    assert verdict.intent is not None
    assert verdict.intent.quantity == D("0.00449")  # 975 allowed (10% of 9,750), 750 held


def test_risk_gate_shrinks_to_the_max_order_notional() -> None:
    limits = RiskLimits(max_position_pct=D("1"), max_order_notional=D("1000"))
    verdict = check(buy("1"), portfolio("100000"), limits)
    assert verdict.intent is not None
    assert verdict.intent.quantity == D("0.01999")  # 1,000 at the slipped price
    assert verdict.reasons[0].endswith("limited by max order notional 1000")


def test_risk_gate_shrinks_to_the_available_cash() -> None:
    eth = Position(symbol=ETH, quantity=D("1"), avg_price=D("1500"))
    verdict = check(buy("1"), portfolio("600", positions=(eth,)), LOOSE)
    assert verdict.intent is not None
    # 0.01198 at 50011.35 plus a 10 bps fee is 599.74; one step more is over 600
    assert verdict.intent.quantity == D("0.01198")
    assert verdict.reasons[0].endswith("limited by available cash 600.00")


def test_risk_gate_rounds_a_buy_down_to_the_exchange_step() -> None:
    verdict = check(buy("0.0123456"))
    assert verdict.intent is not None
    assert verdict.intent.quantity == D("0.01234")
    assert verdict.shrunk
    assert "rounded down to the exchange step 0.00001" in verdict.reasons[0]


def test_risk_gate_rejects_what_shrinks_below_the_exchange_minimums() -> None:
    verdict = check(buy("1"), portfolio("40"))  # 10% of 40 = 4 USDT < 5 minimum
    assert not verdict.approved and verdict.intent is None
    assert any("max position 10%" in r for r in verdict.reasons)
    assert any("below the exchange minimum 5" in r for r in verdict.reasons)


def test_risk_gate_max_open_positions_blocks_new_symbols_only() -> None:
    eth = Position(symbol=ETH, quantity=D("0.5"), avg_price=D("1500"))
    folio = portfolio("9000", positions=(eth,), prices={ETH: D("1500")})
    limits = RiskLimits(max_open_positions=1)
    verdict = check(buy("0.01"), folio, limits)
    assert not verdict.approved
    assert verdict.reasons == ("max open positions: 1 open (ETH/BUSD), limit 1",)
    assert check(buy("0.1", ETH), folio, limits, market("1500", ETH)).approved


def test_risk_gate_resting_buys_count_as_open_and_against_cash() -> None:
    resting = Order(
        id="PB-1",
        client_order_id="c",
        intent=buy("0.5", ETH, limit_price=D("1000")),
        status=OrderStatus.OPEN,
        created_at=T0,
    )
    limits = RiskLimits(max_open_positions=1)
    context = market(open_orders=(resting,))
    verdict = check(buy("0.01"), portfolio(), limits, context)
    assert verdict.reasons == ("max open positions: 1 open (ETH/BUSD), limit 1",)
    verdict = check(buy("1"), portfolio("1000"), LOOSE, context)  # 500.5 held back
    assert verdict.intent is not None
    assert verdict.intent.quantity == D("0.00997")


def test_risk_gate_drawdown_lock_blocks_buys_but_not_sells() -> None:
    folio = portfolio(
        "8000",
        positions=(btc_position("0.01"),),
        prices={BTC: D("50000")},
        peak_equity=D("10000"),
        day_start_equity=D("8500"),
    )
    verdict = check(buy("0.001"), folio)
    assert not verdict.approved
    assert verdict.reasons[0].startswith("max drawdown lock: equity 8500.00 is 15% below the peak")
    assert check(sell("0.01"), folio).approved


def test_risk_gate_daily_loss_limit_blocks_buys_until_the_next_utc_day() -> None:
    folio = portfolio(
        "9000",
        positions=(btc_position("0.01"),),
        prices={BTC: D("50000")},
        peak_equity=D("10000"),
        day_start_equity=D("9800"),
    )
    verdict = check(buy("0.001"), folio)
    assert not verdict.approved
    assert (
        "daily loss limit: equity 9500.00 is 3.06% below the day's start 9800.00"
        in (verdict.reasons[0])
    )
    assert check(sell("0.005"), folio).approved
    tomorrow = T0.replace(hour=0) + timedelta(days=1)
    assert check(buy("0.001"), folio, now=tomorrow).approved


def test_risk_gate_rejects_a_buy_whose_own_costs_cross_a_lock() -> None:
    # Equity 10,000 just above the daily line (9,700): paying fees and slippage crosses it.
    folio = portfolio("10000", day_start_equity=D("10000.05"), peak_equity=D("10000.05"))
    limits = RiskLimits(daily_loss_limit_pct=D("0.00001"), max_position_pct=D("0.5"))
    verdict = check(buy("0.05"), folio, limits)
    assert not verdict.approved
    assert "would cross the daily loss limit" in verdict.reasons[-1]


def test_risk_gate_cooldown_after_a_stop_out_blocks_that_symbol() -> None:
    stopped = T0 - timedelta(minutes=30)
    folio = portfolio(stop_outs={BTC: stopped})
    verdict = check(buy("0.01"), folio)
    assert not verdict.approved
    assert "cooldown: BTC/USDT hit its stop-loss" in verdict.reasons[0]
    assert "no buys until 2021-03-01T12:30:00+00:00 (60 min)" in verdict.reasons[0]
    assert check(buy("0.1", ETH), folio, context=market("1500", ETH)).approved
    assert check(buy("0.01"), folio, now=T0 + timedelta(minutes=31)).approved
    assert check(buy("0.01"), folio, RiskLimits(cooldown_minutes=0)).approved


def test_risk_gate_kill_switch_rejects_buys_and_sells() -> None:
    folio = portfolio("9000", positions=(btc_position("0.01"),), prices={BTC: D("50000")})
    limits = RiskLimits(kill_switch=True)
    for intent in (buy("0.001"), sell("0.01")):
        verdict = check(intent, folio, limits)
        assert not verdict.approved
        assert verdict.reasons == ("kill switch is on: no new orders until an admin turns it off",)


def test_risk_gate_sells_only_what_is_held() -> None:
    folio = portfolio("9000", positions=(btc_position("0.02"),), prices={BTC: D("50000")})
    verdict = check(sell("5"), folio)
    assert verdict.intent is not None and verdict.shrunk
    assert verdict.intent.quantity == D("0.02")
    assert verdict.reasons == (
        "quantity shrunk from 5 to 0.02: limited by held BTC/USDT not already offered (0.02)",
    )
    nothing = check(sell("1", ETH), folio, context=market("1500", ETH))
    assert nothing.reasons == ("no ETH/BUSD position to sell; spot desk: no shorts",)


def test_risk_gate_resting_sells_are_not_sold_twice() -> None:
    folio = portfolio("9000", positions=(btc_position("0.02"),), prices={BTC: D("50000")})
    offered = Order(
        id="PB-1",
        client_order_id="c",
        intent=sell("0.02", limit_price=D("60000")),
        status=OrderStatus.OPEN,
        created_at=T0,
    )
    verdict = check(sell("0.01"), folio, context=market(open_orders=(offered,)))
    assert not verdict.approved
    assert "already offered by open sell orders" in verdict.reasons[0]


def test_risk_gate_shrinks_a_sell_to_the_max_order_notional() -> None:
    folio = portfolio("0", positions=(btc_position("1"),), prices={BTC: D("50000")})
    verdict = check(sell("1"), folio)
    assert verdict.intent is not None
    assert verdict.intent.quantity == D("0.04")


def test_risk_gate_refuses_dust_and_misplaced_protection() -> None:
    folio = portfolio("9000", positions=(btc_position("0.00005"),), prices={BTC: D("50000")})
    assert "below the exchange minimum 5" in check(sell("0.00005"), folio).reasons[-1]
    assert "only apply to BUY" in check(sell("0.00005", stop_loss=D("1")), folio).reasons[0]
    verdict = check(buy("0.01", stop_loss=D("51000"), take_profit=D("49000")))
    assert verdict.reasons == (
        "stop_loss 51000 must be below the entry price 50000",
        "take_profit 49000 must be above the entry price 50000",
    )


def test_risk_gate_moves_a_limit_price_onto_the_tick_cautiously() -> None:
    verdict = check(buy("0.01", limit_price=D("49000.129")))
    assert verdict.intent is not None
    assert verdict.intent.limit_price == D("49000.12")
    assert verdict.reasons == ("limit price 49000.129 rounded to the tick 0.01: 49000.12",)
    folio = portfolio("9000", positions=(btc_position("0.02"),), prices={BTC: D("50000")})
    verdict = check(sell("0.01", limit_price=D("51000.001")), folio)
    assert verdict.intent is not None
    assert verdict.intent.limit_price == D("51000.01")


def test_risk_gate_refuses_a_context_for_another_symbol_or_a_naive_time() -> None:
    with pytest.raises(ValueError, match=r"market context is for ETH/BUSD"):
        check(buy("0.01"), context=market("1500", ETH))
    with pytest.raises(ValueError, match=r"timezone-aware"):
        check(buy("0.01"), now=T0.replace(tzinfo=None))


def test_risk_limits_update_returns_a_new_validated_object() -> None:
    current = RiskLimits()
    changed = updated_limits(current, max_position_pct="0.05", kill_switch=True)
    assert changed.max_position_pct == D("0.05") and changed.kill_switch
    assert current.max_position_pct == D("0.10") and not current.kill_switch


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_position_pct": D("1.5")}, "max_position_pct: input should be less than or equal"),
        ({"max_position_pct": -1}, "max_position_pct: input should be greater than 0"),
        ({"max_order_notional": float("nan")}, "max_order_notional: input should be a finite"),
        ({"daily_loss_limit_pct": "Infinity"}, "daily_loss_limit_pct: input should be a finite"),
        ({"max_open_positions": 0}, "max_open_positions: input should be greater than or equal"),
        ({"cooldown_minutes": "soon"}, "cooldown_minutes: input should be a valid integer"),
        ({"max_drawdown_pct": 0}, "max_drawdown_pct: input should be greater than 0"),
        ({"max_leverage": 3}, "unknown risk limit.*max_leverage; known: cooldown_minutes"),
    ],
)
def test_risk_limits_update_refuses_nonsense(changes: dict[str, Any], message: str) -> None:
    current = RiskLimits()
    with pytest.raises(RiskLimitsError, match=message):
        updated_limits(current, **changes)
    assert current == RiskLimits()


# --- shorts on a margin account -------------------------------------------------------------

MARGIN = MarginConfig(enabled=True)


def margin_market(price: str = "50000", symbol: str = BTC, **extra: Any) -> MarketContext:
    return MarketContext(
        symbol=symbol, price=D(price), rules=rules_for(symbol), costs=CostModel(), **extra
    ).model_copy(update={"margin": MARGIN})


def btc_short(quantity: str, avg: str = "50000") -> Position:
    return Position(symbol=BTC, quantity=D(quantity), avg_price=D(avg), side="short")


def test_risk_gate_spot_still_rejects_a_sell_of_nothing_held() -> None:
    verdict = check(sell("0.01"))
    assert not verdict.approved and "no shorts" in verdict.reasons[0]
    disabled = market().model_copy(update={"margin": MarginConfig()})
    assert not check(sell("0.01"), context=disabled).approved


def test_risk_gate_margin_approves_a_small_short() -> None:
    intent = sell("0.01")
    verdict = check(intent, context=margin_market())
    assert verdict == RiskVerdict(approved=True, intent=intent, reasons=(), shrunk=False)


def test_risk_gate_margin_sell_with_a_long_closes_at_most_the_long() -> None:
    folio = portfolio(positions=(btc_position("0.01"),), prices={BTC: D(50000)})
    verdict = check(sell("0.05"), folio, LOOSE, margin_market())
    assert verdict.approved and verdict.intent is not None
    assert verdict.intent.quantity == D("0.01")


def test_risk_gate_margin_shrinks_a_short_to_the_position_and_margin_limits() -> None:
    verdict = check(sell("1"), context=margin_market())
    assert verdict.approved and verdict.intent is not None and verdict.shrunk
    assert "max position 10% of equity" in verdict.reasons[0]
    assert verdict.intent.quantity * D(50000) <= D(1000)
    # With an ETH short of 15,000 open, the initial margin binds first: equity 10,000 must
    # stay >= 0.5 * (15,000 + the new short), so at most 5,000 of BTC (less the costs).
    eth = Position(symbol=ETH, quantity=D("7.5"), avg_price=D(2000), side="short")
    folio = portfolio("25000", positions=(eth,), prices={ETH: D(2000)})
    loose = check(sell("1"), folio, LOOSE, margin_market())
    assert loose.approved and loose.intent is not None
    assert "initial margin" in loose.reasons[0]
    assert D("0.099") < loose.intent.quantity < D("0.1")


def test_risk_gate_margin_locks_block_new_shorts_but_never_covers() -> None:
    locked = portfolio(
        "20000",
        positions=(btc_short("0.1"),),
        prices={BTC: D(50000)},
        peak_equity=D(30000),
    )
    short = check(sell("0.01"), locked, LOOSE, margin_market())
    assert not short.approved and "max drawdown lock" in short.reasons[0]
    assert "no new shorts" in short.reasons[0]
    cover = check(buy("0.05"), locked, LOOSE, margin_market())
    assert cover.approved and cover.intent is not None and cover.intent.quantity == D("0.05")


def test_risk_gate_margin_cover_is_never_shrunk_by_position_caps() -> None:
    folio = portfolio("20000", positions=(btc_short("0.1"),), prices={BTC: D(50000)})
    tight = RiskLimits(max_position_pct=D("0.01"), max_order_notional=D("1000000"))
    verdict = check(buy("0.1"), folio, tight, margin_market())
    assert verdict.approved and verdict.intent is not None and not verdict.shrunk
    # ... only by the short itself (no flip through zero) and the order notional
    more = check(buy("0.5"), folio, tight, margin_market())
    assert more.intent is not None and more.intent.quantity == D("0.1")
    small = RiskLimits(max_order_notional=D("1000"))
    capped = check(buy("0.1"), folio, small, margin_market())
    assert capped.intent is not None and capped.intent.quantity == D("0.01999")
    assert "max order notional" in capped.reasons[0]


def test_risk_gate_margin_cover_checks_the_cash() -> None:
    folio = portfolio("1000", positions=(btc_short("0.1"),), prices={BTC: D(50000)})
    verdict = check(buy("0.1"), folio, LOOSE, margin_market())
    assert verdict.approved and verdict.intent is not None
    assert "available cash" in verdict.reasons[0]
    assert verdict.intent.quantity < D("0.02")


def test_risk_gate_margin_short_cooldown_kill_switch_and_protection() -> None:
    stopped = portfolio(stop_outs={BTC: T0 - timedelta(minutes=5)})
    verdict = check(sell("0.01"), stopped, context=margin_market())
    assert not verdict.approved and "cooldown" in verdict.reasons[0]
    killed = RiskLimits(kill_switch=True)
    assert not check(sell("0.01"), limits=killed, context=margin_market()).approved
    wrong = check(sell("0.01", stop_loss=D(49000)), context=margin_market())
    assert not wrong.approved and "must be above the entry" in wrong.reasons[0]
    right = check(sell("0.01", stop_loss=D(51000), take_profit=D(45000)), context=margin_market())
    assert right.approved
    resting = check(sell("0.01", limit_price=D(51000)), context=margin_market())
    assert not resting.approved and "must fill at once" in resting.reasons[0]


def test_risk_gate_margin_max_open_positions_counts_shorts() -> None:
    folio = portfolio(
        positions=(Position(symbol=ETH, quantity=D(1), avg_price=D(2000), side="short"),),
        prices={ETH: D(2000)},
    )
    limits = RiskLimits(max_open_positions=1)
    verdict = check(sell("0.001"), folio, limits, margin_market())
    assert not verdict.approved and "max open positions" in verdict.reasons[0]

"""The paper broker's margin account on hand-picked cases: shorts, covers, initial margin,
protection, borrow fees, liquidation, and the journaled terms."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tradecast.broker.journal import SqliteJournal
from tradecast.broker.margin import boundaries_crossed, liquidation_price
from tradecast.broker.market_rules import CostModel, money
from tradecast.broker.paper import PaperBroker
from tradecast.domain import OrderStatus, Position
from tradecast.errors import BrokerError
from tradecast.settings import BrokerConfig, MarginConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.broker import BTC, ETH, Clock, buy, run, sell

D = Decimal
T0 = datetime(2021, 3, 1, 1, 0, tzinfo=UTC)  # between the 00:00 and 08:00 borrow boundaries
MARGIN = MarginConfig(enabled=True)
FREE = CostModel(fee_bps=D(0), slippage_bps=D(0), impact_bps_per_1k=D(0))


def margin_broker(
    journal: SqliteJournal | None = None,
    *,
    cash: str = "10000",
    costs: CostModel | None = None,
    margin: MarginConfig | None = MARGIN,
    clock: Clock | None = None,
    seed: tuple[Position, ...] = (),
) -> PaperBroker:
    return PaperBroker(
        journal or SqliteJournal(":memory:"),
        starting_cash=D(cash),
        costs=costs or FREE,
        clock=clock or Clock(T0),
        margin=margin,
        seed_positions=seed,
    )


def marked(broker: PaperBroker, price: str, at: datetime = T0, symbol: str = BTC) -> PaperBroker:
    run(broker.on_price(symbol, D(price), at))
    return broker


def test_margin_sell_with_nothing_held_opens_a_short() -> None:
    broker = marked(margin_broker(), "100", symbol=ETH)
    execution = run(broker.submit(sell("10", ETH), at=T0))
    assert execution.order.status is OrderStatus.FILLED
    portfolio = broker.portfolio()
    short = portfolio.short(ETH)
    assert short is not None and short.side == "short"
    assert short.quantity == D(10) and short.avg_price == D(100)
    assert portfolio.position(ETH) is None
    assert portfolio.cash == D(11000)
    assert portfolio.equity == D(10000)
    assert short.signed_quantity == D(-10)
    assert broker.fill_trigger(execution.order.id) == "market"


def test_margin_short_average_entry_and_cover_pnl() -> None:
    broker = marked(margin_broker(), "100", symbol=ETH)
    run(broker.submit(sell("10", ETH), at=T0))
    marked(broker, "120", symbol=ETH)
    run(broker.submit(sell("10", ETH, client_order_id="second"), at=T0))
    short = broker.portfolio().short(ETH)
    assert short is not None and short.quantity == D(20) and short.avg_price == D(110)
    marked(broker, "90", symbol=ETH)
    run(broker.submit(buy("5", ETH), at=T0))
    portfolio = broker.portfolio()
    assert portfolio.realized_pnl == D(100)  # (110 - 90) * 5
    remaining = portfolio.short(ETH)
    assert remaining is not None and remaining.quantity == D(15)
    run(broker.submit(buy("15", ETH), at=T0))
    portfolio = broker.portfolio()
    assert portfolio.short(ETH) is None and portfolio.positions == ()
    assert portfolio.realized_pnl == D(400)  # (110 - 90) * 20
    assert portfolio.equity == portfolio.cash == D(10400)


def test_margin_cover_realised_pnl_counts_fees() -> None:
    broker = marked(
        margin_broker(costs=CostModel(slippage_bps=D(0), impact_bps_per_1k=D(0))), "100", symbol=ETH
    )
    run(broker.submit(sell("10", ETH), at=T0))  # fee 1
    run(broker.submit(buy("10", ETH), at=T0))  # fee 1
    portfolio = broker.portfolio()
    assert portfolio.realized_pnl == 0 and portfolio.fees_paid == D(2)
    assert portfolio.cash == D(9998)


def test_margin_no_order_goes_through_zero() -> None:
    broker = marked(margin_broker(), "100", symbol=ETH)
    run(broker.submit(buy("5", ETH), at=T0))
    with pytest.raises(BrokerError, match="long to short in one go"):
        run(broker.submit(sell("6", ETH), at=T0))
    run(broker.submit(sell("5", ETH), at=T0))
    run(broker.submit(sell("3", ETH), at=T0))
    with pytest.raises(BrokerError, match="short to long in one go"):
        run(broker.submit(buy("4", ETH), at=T0))
    run(broker.submit(buy("3", ETH), at=T0))
    assert broker.portfolio().positions == ()


def test_spot_sell_with_nothing_held_is_still_refused() -> None:
    broker = marked(margin_broker(margin=None), "100", symbol=ETH)
    with pytest.raises(BrokerError, match="spot account: no short selling"):
        run(broker.submit(sell("1", ETH), at=T0))
    disabled = marked(margin_broker(margin=MarginConfig()), "100", symbol=ETH)
    with pytest.raises(BrokerError, match="no short selling"):
        run(disabled.submit(sell("1", ETH), at=T0))
    assert disabled.margin_terms is None


def test_margin_initial_margin_refuses_an_oversize_short() -> None:
    broker = marked(margin_broker(cash="1000"), "100", symbol=ETH)
    # equity 1000 >= 0.5 * notional: at most 2000 of shorts (20 ETH)
    with pytest.raises(BrokerError, match="insufficient margin"):
        run(broker.submit(sell("20.01", ETH), at=T0))
    assert broker.fills() == [] and broker.orders() == []
    run(broker.submit(sell("20", ETH), at=T0))
    with pytest.raises(BrokerError, match="insufficient margin"):
        run(broker.submit(sell("0.1", ETH), at=T0))


def test_margin_resting_short_opening_limit_is_refused() -> None:
    broker = marked(margin_broker(), "100", symbol=ETH)
    with pytest.raises(BrokerError, match="resting short-opening limit orders"):
        run(broker.submit(sell("1", ETH, limit_price=D("110")), at=T0))
    # A marketable limit fills at once (at its limit or better).
    execution = run(broker.submit(sell("1", ETH, limit_price=D("95")), at=T0))
    assert execution.fills and execution.fills[0].price == D(100)


def test_margin_resting_buy_covers_and_blocks_a_new_short() -> None:
    broker = marked(margin_broker(), "100", symbol=ETH)
    run(broker.submit(sell("4", ETH), at=T0))
    run(broker.submit(buy("3", ETH, limit_price=D("90")), at=T0))
    with pytest.raises(BrokerError, match="covered by open buy orders"):
        run(broker.submit(buy("2", ETH), at=T0))
    marked(broker, "89", symbol=ETH)
    short = broker.portfolio().short(ETH)
    assert short is not None and short.quantity == D(1)
    # A resting buy in a symbol with nothing held blocks opening a short there.
    marked(broker, "50", symbol=BTC)
    run(broker.submit(buy("1", BTC, limit_price=D("40")), at=T0))
    with pytest.raises(BrokerError, match="cancel them first"):
        run(broker.submit(sell("1", BTC), at=T0))


def test_margin_short_protection_directions_and_exits() -> None:
    broker = marked(margin_broker(), "100", symbol=ETH)
    with pytest.raises(BrokerError, match="must be above the entry"):
        run(broker.submit(sell("1", ETH, stop_loss=D("99")), at=T0))
    with pytest.raises(BrokerError, match="must be below the entry"):
        run(broker.submit(sell("1", ETH, take_profit=D("101")), at=T0))
    run(broker.submit(sell("2", ETH, stop_loss=D("110"), take_profit=D("80")), at=T0))
    with pytest.raises(BrokerError, match="covers a short"):
        run(broker.submit(buy("1", ETH, stop_loss=D("90")), at=T0))
    short = broker.portfolio().short(ETH)
    assert short is not None and short.stop_loss == D(110) and short.take_profit == D(80)
    fills = run(broker.on_price(ETH, D("111"), T0 + timedelta(minutes=1)))
    assert len(fills) == 1 and fills[0].side.value == "BUY" and fills[0].quantity == D(2)
    assert broker.fill_trigger(fills[0].order_id) == "stop_loss"
    assert ETH in broker.portfolio().stop_outs
    assert broker.portfolio().short(ETH) is None
    # take-profit: a BUY limit at the take-profit price
    run(broker.submit(sell("2", ETH, take_profit=D("100")), at=T0 + timedelta(minutes=2)))
    fills = run(broker.on_price(ETH, D("95"), T0 + timedelta(minutes=3)))
    assert fills[0].price == D(100) and broker.fill_trigger(fills[0].order_id) == "take_profit"
    assert broker.portfolio().realized_pnl == D(-22) + D(22)  # -11*2 at the stop, +11*2 here


def test_margin_short_time_stop_covers() -> None:
    broker = marked(margin_broker(), "100", symbol=ETH)
    run(broker.submit(sell("1", ETH, time_stop_at=T0 + timedelta(hours=1)), at=T0))
    assert run(broker.on_price(ETH, D("100"), T0 + timedelta(minutes=59))) == ()
    fills = run(broker.on_price(ETH, D("100"), T0 + timedelta(hours=1)))
    assert broker.fill_trigger(fills[0].order_id) == "time_stop"
    assert broker.portfolio().positions == ()


def test_margin_borrow_fees_on_epoch_aligned_boundaries() -> None:
    broker = marked(margin_broker(), "100", symbol=ETH)
    run(broker.submit(sell("10", ETH), at=T0))  # 01:00, notional 1000
    assert run(broker.on_price(ETH, D("100"), T0 + timedelta(hours=6))) == ()
    assert broker.portfolio().borrow_paid == 0
    marked(broker, "120", T0 + timedelta(hours=7), ETH)  # 08:00 crossed at the mark 100
    portfolio = broker.portfolio()
    assert portfolio.borrow_paid == D("0.1")  # 1 bps of 1000
    assert portfolio.realized_pnl == D("-0.1")
    # 16:00 and 00:00 crossed together, at the mark 120: 2 * 1 bps of 1200
    marked(broker, "120", T0 + timedelta(hours=23, minutes=30), ETH)
    assert broker.portfolio().borrow_paid == D("0.1") + D("0.24")
    # a submit also charges (08:00 crossed)
    run(broker.submit(buy("10", ETH), at=T0 + timedelta(hours=31)))
    portfolio = broker.portfolio()
    assert portfolio.borrow_paid == D("0.1") + D("0.24") + D("0.12")
    assert portfolio.cash == D(10000) + D(1000) - D(1200) - portfolio.borrow_paid
    # no short: no more fees
    marked(broker, "120", T0 + timedelta(days=5), ETH)
    assert broker.portfolio().borrow_paid == D("0.46")


def test_borrow_boundaries_are_epoch_aligned() -> None:
    day = datetime(2021, 3, 1, tzinfo=UTC)
    assert boundaries_crossed(day + timedelta(hours=1), day + timedelta(hours=8), 8) == 1
    assert boundaries_crossed(day, day + timedelta(hours=8), 8) == 1
    assert boundaries_crossed(day + timedelta(hours=8), day + timedelta(hours=15), 8) == 0
    assert boundaries_crossed(day + timedelta(hours=7), day + timedelta(hours=25), 8) == 3
    assert boundaries_crossed(day + timedelta(hours=9), day + timedelta(hours=1), 8) == 0


def test_margin_liquidation_price_and_liquidation() -> None:
    broker = marked(margin_broker(cash="1000"), "100", symbol=ETH)
    run(broker.submit(sell("10", ETH), at=T0))
    short = broker.portfolio().short(ETH)
    assert short is not None
    # one short: p = cash / (q * (1 + m)) = 2000 / (10 * 1.25) = 160
    assert short.liquidation_price == D(160)
    assert run(broker.on_price(ETH, D("160"), T0 + timedelta(minutes=1))) == ()
    fills = run(broker.on_price(ETH, D("160.01"), T0 + timedelta(minutes=2)))
    assert len(fills) == 1 and broker.fill_trigger(fills[0].order_id) == "liquidation"
    assert fills[0].price == D("160.01") and fills[0].quantity == D(10)
    portfolio = broker.portfolio()
    assert portfolio.positions == ()
    assert portfolio.cash == D(2000) - D("1600.1")
    order = broker.order(fills[0].order_id)
    assert order is not None and order.client_order_id.startswith("liquidation-")


def test_margin_liquidation_price_with_longs_and_other_shorts() -> None:
    signed = {BTC: D(-1), ETH: D(-10), "SOL/USDT": D(5)}
    prices = {BTC: D(1000), ETH: D(100), "SOL/USDT": D(20)}
    m = D("0.25")
    p = liquidation_price(ETH, D(5000), signed, prices, m)
    assert p is not None
    # at p, equity == m * short notional
    at_p = {**prices, ETH: p}
    equity = D(5000) + sum(q * at_p[s] for s, q in signed.items())
    shorts = sum(-q * at_p[s] for s, q in signed.items() if q < 0)
    assert abs(equity - m * shorts) < D("0.000001")


def test_margin_liquidation_cancels_resting_covers_and_buys_back_every_short() -> None:
    broker = marked(margin_broker(cash="1000", costs=CostModel()), "100", symbol=ETH)
    marked(broker, "50", symbol=BTC)
    run(broker.submit(sell("5", ETH), at=T0))
    run(broker.submit(sell("4", BTC), at=T0))
    run(broker.submit(buy("1", ETH, limit_price=D("90")), at=T0))
    fills = run(broker.on_price(ETH, D("300"), T0 + timedelta(minutes=1)))
    assert {f.symbol for f in fills} == {ETH, BTC}
    assert all(broker.fill_trigger(f.order_id) == "liquidation" for f in fills)
    assert broker.orders(status=OrderStatus.OPEN) == []
    assert broker.portfolio().positions == ()
    assert broker.available_cash() == broker.portfolio().cash


def test_margin_journal_restores_exactly(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    broker = marked(margin_broker(SqliteJournal(path), costs=CostModel()), "100", symbol=ETH)
    run(broker.submit(sell("10", ETH, stop_loss=D("150")), at=T0))
    marked(broker, "110", T0 + timedelta(hours=9), ETH)
    restored = PaperBroker(SqliteJournal(path), costs=CostModel(), margin=MARGIN)
    assert restored.portfolio() == broker.portfolio()
    assert restored.fills() == broker.fills() and restored.orders() == broker.orders()
    assert restored.portfolio().borrow_paid > 0
    # margin=None takes the journal's terms
    assert PaperBroker(SqliteJournal(path)).margin_terms == MARGIN


def test_margin_terms_that_differ_from_the_journal_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    margin_broker(SqliteJournal(path))
    with pytest.raises(BrokerError, match="terms rule"):
        PaperBroker(
            SqliteJournal(path), margin=MarginConfig(enabled=True, initial_margin_pct=D("0.6"))
        )
    with pytest.raises(BrokerError, match="spot"):
        PaperBroker(SqliteJournal(path), margin=MarginConfig())
    with pytest.raises(BrokerError, match="terms rule"):
        PaperBroker.from_config(BrokerConfig(), SqliteJournal(path))


def test_margin_terms_turn_a_spot_account_into_a_margin_account(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    spot = margin_broker(SqliteJournal(path), margin=None)
    assert spot.margin_terms is None
    upgraded = PaperBroker(SqliteJournal(path), margin=MARGIN)
    assert upgraded.margin_terms == MARGIN
    assert [e.kind for e in SqliteJournal(path).read("paper")] == ["opened", "margin"]
    assert PaperBroker(SqliteJournal(path)).margin_terms == MARGIN


def test_spot_opened_event_is_unchanged() -> None:
    journal = SqliteJournal(":memory:")
    seed = (Position(symbol=BTC, quantity=D(1), avg_price=D(100)),)
    margin_broker(journal, margin=None, seed=seed)
    (opened,) = journal.read("paper")
    assert set(opened.data) == {"cash", "quote_currency", "positions"}
    assert "side" not in opened.data["positions"][0]
    assert "liquidation_price" not in opened.data["positions"][0]


def test_seeded_shorts_need_a_margin_account() -> None:
    seed = (Position(symbol=ETH, quantity=D(1), avg_price=D(100), side="short"),)
    with pytest.raises(BrokerError, match="margin account"):
        margin_broker(margin=None, seed=seed)
    broker = margin_broker(seed=seed)
    short = broker.portfolio().short(ETH)
    assert short is not None and short.liquidation_price is not None
    assert money(broker.portfolio().equity) == D(9900)

"""The paper broker: fills, costs, long-only spot, limits, stops, idempotency, clear refusals."""

from __future__ import annotations

import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from tradecast.broker.journal import SqliteJournal
from tradecast.broker.market_rules import CostModel
from tradecast.broker.paper import Broker, PaperBroker
from tradecast.domain import OrderIntent, OrderStatus, Position, Side
from tradecast.errors import BrokerError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.broker import BTC, ETH, T0, Clock, buy, paper_broker, sell

D = Decimal
PINNED_AUTO_ID = "auto-a5a331ef4caf25243ff5eade"  # derive_client_order_id before time stops


def snapshot(broker: PaperBroker) -> tuple[object, ...]:
    """Everything a refused request must leave untouched."""
    return (broker.portfolio(), broker.orders(), broker.fills(), broker.available_cash())


async def test_broker_paper_broker_implements_the_protocol() -> None:
    assert isinstance(paper_broker(), Broker)


async def test_broker_market_buy_pays_fee_and_size_aware_slippage() -> None:
    broker = paper_broker()
    await broker.on_price(BTC, D("50000"), T0)

    execution = await broker.submit(buy("0.01"))

    # slippage = 2 bps + 0.5 bps per 1,000 of notional (500) = 2.25 bps
    (fill,) = execution.fills
    assert execution.order.status is OrderStatus.FILLED
    assert fill.price == D("50011.25")
    assert fill.fee == D("0.50011250")  # 10 bps of 500.1125
    portfolio = broker.portfolio()
    assert portfolio.cash == D("10000") - D("500.1125") - D("0.5001125")
    assert portfolio.position(BTC) is not None
    assert portfolio.position(BTC).avg_price == D("50011.25")  # type: ignore[union-attr]
    assert portfolio.equity == portfolio.cash + D("0.01") * D("50000")
    assert broker.slippage_paid == D("0.1125")
    assert portfolio.fees_paid == fill.fee


async def test_broker_slippage_grows_with_order_size() -> None:
    broker = paper_broker(cash="100000")
    await broker.on_price(BTC, D("50000"), T0)
    small = (await broker.submit(buy("0.01"))).fills[0].price
    large = (await broker.submit(buy("1"))).fills[0].price
    # 1 BTC = 50,000 notional: 2 + 0.5 * 50 = 27 bps
    assert large == D("50135.00")
    assert large > small


async def test_broker_sell_realises_pnl_against_the_average_price() -> None:
    broker = paper_broker()
    await broker.on_price(BTC, D("50000"), T0)
    await broker.submit(buy("0.01"))
    await broker.on_price(BTC, D("55000"), T0 + timedelta(hours=1))

    execution = await broker.submit(sell("0.01"))

    # 2 + 0.5 * 0.55 = 2.275 bps below 55,000 = 54987.4875, rounded down to the tick
    assert execution.fills[0].price == D("54987.48")
    portfolio = broker.portfolio()
    assert portfolio.positions == ()
    assert portfolio.realized_pnl == D("549.8748") - D("500.1125")
    assert portfolio.equity == portfolio.cash
    assert portfolio.cash == D("10000") + portfolio.realized_pnl - portfolio.fees_paid


async def test_broker_averages_the_entry_price_over_buys() -> None:
    broker = paper_broker(costs=CostModel(fee_bps=D(0), slippage_bps=D(0), impact_bps_per_1k=D(0)))
    await broker.on_price(BTC, D("40000"), T0)
    await broker.submit(buy("0.01"))
    await broker.on_price(BTC, D("50000"), T0 + timedelta(minutes=1))
    await broker.submit(buy("0.03"))
    position = broker.portfolio().position(BTC)
    assert position is not None
    assert position.quantity == D("0.04")
    assert position.avg_price == D("47500")


async def test_broker_refuses_a_sell_beyond_the_holding_and_changes_nothing() -> None:
    broker = paper_broker()
    await broker.on_price(BTC, D("50000"), T0)
    await broker.submit(buy("0.01"))
    before = snapshot(broker)

    with pytest.raises(BrokerError, match=r"cannot sell 0\.02 BTC/USDT: holding 0\.01.*no short"):
        await broker.submit(sell("0.02"))
    with pytest.raises(BrokerError, match=r"cannot sell 1 ETH/BUSD: holding 0"):
        await broker.submit(sell("1", ETH))
    assert snapshot(broker) == before


async def test_broker_refuses_insufficient_cash_and_changes_nothing() -> None:
    broker = paper_broker(cash="1000")
    await broker.on_price(BTC, D("50000"), T0)
    before = snapshot(broker)
    with pytest.raises(BrokerError, match=r"insufficient cash for BUY 0.1 BTC.*available 1000"):
        await broker.submit(buy("0.1"))
    assert snapshot(broker) == before


async def test_broker_refuses_unknown_symbols_and_missing_prices() -> None:
    broker = paper_broker()
    before = snapshot(broker)
    with pytest.raises(BrokerError, match=r"unknown symbol 'DOGE/USDT'; this broker trades"):
        await broker.submit(buy("1", "DOGE/USDT"))
    with pytest.raises(BrokerError, match=r"unknown symbol"):
        await broker.on_price("DOGE/USDT", D("0.1"), T0)
    with pytest.raises(BrokerError, match=r"must look like BASE/QUOTE"):
        await broker.on_price("BTCUSDT", D("1"), T0)
    with pytest.raises(BrokerError, match=r"no price for BTC/USDT yet"):
        await broker.submit(buy("0.01"))
    assert snapshot(broker) == before


@pytest.mark.parametrize(
    ("price", "message"),
    [
        (D("NaN"), "finite"),
        (float("nan"), "finite"),
        (D("Infinity"), "finite"),
        (D("0"), "greater than 0"),
        (D("-5"), "greater than 0"),
        ("abc", "must be a number"),
    ],
)
async def test_broker_refuses_a_bad_price_and_changes_nothing(price: object, message: str) -> None:
    broker = paper_broker()
    await broker.on_price(BTC, D("50000"), T0)
    before = snapshot(broker)
    with pytest.raises(BrokerError, match=message):
        await broker.on_price(BTC, price, T0)  # type: ignore[arg-type]
    assert snapshot(broker) == before


@pytest.mark.parametrize("quantity", ["-1", "0", "NaN", "Infinity"])
def test_broker_order_intent_refuses_a_bad_quantity(quantity: str) -> None:
    with pytest.raises(ValidationError):
        OrderIntent(symbol=BTC, side=Side.BUY, quantity=D(quantity))


async def test_broker_refuses_anything_but_an_intent() -> None:
    broker = paper_broker()
    with pytest.raises(BrokerError, match=r"needs an OrderIntent, got dict"):
        await broker.submit({"symbol": BTC, "side": "BUY", "quantity": -1})  # type: ignore[arg-type]


async def test_broker_enforces_exchange_minimums_and_steps() -> None:
    broker = paper_broker()
    await broker.on_price(BTC, D("50000"), T0)
    with pytest.raises(BrokerError, match=r"not a multiple of the step 0.00001"):
        await broker.submit(buy("0.000015"))
    with pytest.raises(BrokerError, match=r"below the exchange minimum 5"):
        await broker.submit(buy("0.00005"))  # 2.5 USDT
    with pytest.raises(BrokerError, match=r"not a multiple of the tick 0.01"):
        await broker.submit(buy("0.01", limit_price=D("49000.005")))
    assert broker.orders() == []


async def test_broker_limit_buy_rests_holds_cash_back_and_fills_at_its_limit() -> None:
    broker = paper_broker()
    await broker.on_price(BTC, D("50000"), T0)
    execution = await broker.submit(buy("0.01", limit_price=D("48000")))
    assert execution.order.status is OrderStatus.OPEN
    assert execution.fills == ()
    held_back = D("480") + D("0.48")
    assert broker.available_cash() == D("10000") - held_back
    assert broker.portfolio().cash == D("10000")

    assert await broker.on_price(BTC, D("48500"), T0 + timedelta(hours=1)) == ()
    (fill,) = await broker.on_price(BTC, D("47000"), T0 + timedelta(hours=2))

    assert fill.price == D("48000")  # a resting limit fills at its own price
    assert broker.order(execution.order.id).status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert broker.available_cash() == broker.portfolio().cash == D("10000") - held_back


async def test_broker_marketable_limit_fills_now_but_never_beyond_its_limit() -> None:
    broker = paper_broker()
    await broker.on_price(BTC, D("50000"), T0)
    # The slipped price (50011.25) is above the limit: it fills at the limit.
    execution = await broker.submit(buy("0.01", limit_price=D("50005")))
    assert execution.fills[0].price == D("50005")
    execution = await broker.submit(sell("0.01", limit_price=D("49000")))
    assert execution.fills[0].price == D("49988.75")  # better than the limit: the market


async def test_broker_limit_sell_offers_held_quantity_only_once() -> None:
    broker = paper_broker()
    await broker.on_price(BTC, D("50000"), T0)
    await broker.submit(buy("0.02"))
    await broker.submit(sell("0.015", limit_price=D("60000")))
    with pytest.raises(BrokerError, match=r"of which 0.015 is offered by open sell orders"):
        await broker.submit(sell("0.01"))
    (fill,) = await broker.on_price(BTC, D("60001"), T0 + timedelta(hours=1))
    assert (fill.side, fill.price, fill.quantity) == (Side.SELL, D("60000"), D("0.015"))


async def test_broker_cancel_releases_what_the_order_held_back() -> None:
    broker = paper_broker()
    await broker.on_price(BTC, D("50000"), T0)
    execution = await broker.submit(buy("0.01", limit_price=D("45000"), client_order_id="c-1"))
    cancelled = await broker.cancel("c-1")  # by client id
    assert cancelled.status is OrderStatus.CANCELLED
    assert broker.available_cash() == D("10000")
    assert await broker.on_price(BTC, D("40000"), T0 + timedelta(hours=1)) == ()
    with pytest.raises(BrokerError, match=r"is cancelled; only open orders can be cancelled"):
        await broker.cancel(execution.order.id)
    with pytest.raises(BrokerError, match=r"unknown order 'nope'"):
        await broker.cancel("nope")


async def test_broker_stop_loss_sells_everything_and_records_the_stop_out() -> None:
    broker = paper_broker()
    await broker.on_price(BTC, D("50000"), T0)
    await broker.submit(buy("0.02", stop_loss=D("45000"), take_profit=D("60000")))
    resting = await broker.submit(sell("0.01", limit_price=D("58000")))
    position = broker.portfolio().position(BTC)
    assert position is not None
    assert (position.stop_loss, position.take_profit) == (D("45000"), D("60000"))

    assert await broker.on_price(BTC, D("46000"), T0 + timedelta(hours=1)) == ()
    stop_time = T0 + timedelta(hours=2)
    (fill,) = await broker.on_price(BTC, D("44000"), stop_time)

    assert (fill.side, fill.quantity) == (Side.SELL, D("0.02"))
    assert fill.price < D("44000")  # a stop is a market order: it slips
    portfolio = broker.portfolio()
    assert portfolio.positions == ()
    assert portfolio.stop_outs == {BTC: stop_time}
    assert broker.order(resting.order.id).status is OrderStatus.CANCELLED  # type: ignore[union-attr]
    stop_order = broker.order(fill.order_id)
    assert stop_order is not None
    assert stop_order.client_order_id.startswith("stop_loss-")


async def test_broker_take_profit_sells_at_the_target() -> None:
    broker = paper_broker()
    await broker.on_price(BTC, D("50000"), T0)
    await broker.submit(buy("0.02", take_profit=D("55000")))
    (fill,) = await broker.on_price(BTC, D("56000"), T0 + timedelta(hours=1))
    assert (fill.price, fill.quantity) == (D("55000"), D("0.02"))
    assert broker.portfolio().stop_outs == {}  # a take-profit is not a stop-out


async def test_broker_refuses_protection_on_the_wrong_side_of_the_price() -> None:
    broker = paper_broker()
    await broker.on_price(BTC, D("50000"), T0)
    with pytest.raises(BrokerError, match=r"stop_loss 51000 must be below the entry price 50000"):
        await broker.submit(buy("0.01", stop_loss=D("51000")))
    with pytest.raises(BrokerError, match=r"take_profit 49000 must be above"):
        await broker.submit(buy("0.01", take_profit=D("49000")))
    await broker.submit(buy("0.01"))
    with pytest.raises(BrokerError, match=r"only apply to BUY orders"):
        await broker.submit(sell("0.01", stop_loss=D("40000")))


async def test_broker_duplicate_submit_returns_the_original_and_fills_once() -> None:
    broker = paper_broker()
    await broker.on_price(BTC, D("50000"), T0)
    first = await broker.submit(buy("0.01", client_order_id="decision-7"))
    await broker.on_price(BTC, D("51000"), T0 + timedelta(minutes=5))
    again = await broker.submit(buy("0.01", client_order_id="decision-7"))

    assert again.duplicate and not first.duplicate
    assert again.order == first.order
    assert again.fills == first.fills
    assert len(broker.fills()) == 1
    with pytest.raises(BrokerError, match=r"'decision-7' was already used for a different order"):
        await broker.submit(buy("0.02", client_order_id="decision-7"))


async def test_broker_derives_a_client_id_so_a_same_instant_retry_fills_once() -> None:
    clock = Clock()
    broker = paper_broker(clock=clock)
    await broker.on_price(BTC, D("50000"), T0)
    first = await broker.submit(buy("0.01"))
    again = await broker.submit(buy("0.01"))
    assert first.order.client_order_id.startswith("auto-")
    assert again.duplicate and len(broker.fills()) == 1
    clock.advance(hours=1)
    later = await broker.submit(buy("0.01"))
    assert not later.duplicate and len(broker.fills()) == 2


async def test_broker_tracks_peak_and_day_start_equity() -> None:
    broker = paper_broker(costs=CostModel(fee_bps=D(0), slippage_bps=D(0), impact_bps_per_1k=D(0)))
    await broker.on_price(BTC, D("50000"), T0)
    await broker.submit(buy("0.1"))  # 5,000 in BTC, 5,000 cash
    await broker.on_price(BTC, D("60000"), T0 + timedelta(hours=1))
    await broker.on_price(BTC, D("55000"), T0 + timedelta(hours=2))
    portfolio = broker.portfolio()
    assert portfolio.peak_equity == D("11000")
    assert portfolio.day_start_equity == D("10000")
    assert portfolio.equity == D("10500")

    next_day = T0.replace(hour=0) + timedelta(days=1, hours=1)
    await broker.on_price(BTC, D("54000"), next_day)
    portfolio = broker.portfolio()
    # The day starts from the previous day's last equity, before the new price.
    assert portfolio.day_start_equity == D("10500")
    assert portfolio.equity == D("10400")
    assert portfolio.peak_equity == D("11000")


async def test_broker_values_at_given_prices_without_marking() -> None:
    broker = paper_broker()
    await broker.on_price(BTC, D("50000"), T0)
    await broker.submit(buy("0.01"))
    valued = broker.portfolio({BTC: D("60000")})
    assert valued.equity == valued.cash + D("600")
    assert broker.portfolio().prices[BTC] == D("50000")
    with pytest.raises(BrokerError, match=r"finite"):
        broker.portfolio({BTC: D("NaN")})


async def test_broker_seed_positions_open_a_new_account_only(tmp_path: Path) -> None:
    seed = (Position(symbol=ETH, quantity=D("2"), avg_price=D("1500")),)
    journal = SqliteJournal(tmp_path / "j.sqlite")
    broker = paper_broker(journal, seed=seed)
    assert broker.portfolio().position(ETH) == seed[0]
    assert broker.portfolio().equity == D("13000")
    with pytest.raises(BrokerError, match=r"already has a journal"):
        paper_broker(journal, seed=seed)


async def test_broker_a_failed_journal_write_changes_nothing() -> None:
    journal = SqliteJournal(":memory:")
    broker = paper_broker(journal)
    await broker.on_price(BTC, D("50000"), T0)
    before = snapshot(broker)
    journal.close()
    with pytest.raises(BrokerError, match=r"journal .* is closed"):
        await broker.submit(buy("0.01"))
    with pytest.raises(BrokerError, match=r"closed"):
        await broker.on_price(BTC, D("1"), T0)
    assert snapshot(broker) == before


async def test_broker_from_config_uses_the_settings_costs_and_cash() -> None:
    from tradecast.settings import BrokerConfig

    config = BrokerConfig(starting_cash=D("500"), quote_currency="BUSD", fee_bps=D("7.5"))
    broker = PaperBroker.from_config(config, SqliteJournal(":memory:"), clock=Clock())
    assert broker.portfolio().cash == D("500")
    assert broker.portfolio().quote_currency == "BUSD"
    assert broker.cost_model.fee_bps == D("7.5")
    assert broker.market_rules(ETH).min_notional == D("10")


# --- time stop ---------------------------------------------------------------------------


def _trigger_of_fill(journal: SqliteJournal, order_id: str) -> str:
    (event,) = [
        e
        for e in journal.read("paper")
        if e.kind == "fill" and e.data["fill"]["order_id"] == order_id
    ]
    return str(event.data["trigger"])


async def test_broker_time_stop_sells_everything_at_the_market_once_time_is_up() -> None:
    journal = SqliteJournal(":memory:")
    broker = paper_broker(journal)
    deadline = T0 + timedelta(hours=4)
    await broker.on_price(BTC, D("50000"), T0)
    await broker.submit(buy("0.02", time_stop_at=deadline))
    resting = await broker.submit(sell("0.01", limit_price=D("58000")))
    position = broker.portfolio().position(BTC)
    assert position is not None and position.time_stop_at == deadline

    assert await broker.on_price(BTC, D("51000"), T0 + timedelta(hours=1)) == ()
    assert await broker.on_price(BTC, D("51000"), deadline - timedelta(seconds=1)) == ()
    (fill,) = await broker.on_price(BTC, D("51000"), deadline)

    # a market sell: 2 + 0.5 * 1.02 = 2.51 bps below 51,000 = 50987.199, down to the tick
    assert (fill.side, fill.quantity, fill.price) == (Side.SELL, D("0.02"), D("50987.19"))
    assert fill.fee == D("1.01974380")  # 10 bps of 1019.7438
    assert fill.timestamp == deadline
    order = broker.order(fill.order_id)
    assert order is not None and order.client_order_id.startswith("time_stop-")
    assert _trigger_of_fill(journal, fill.order_id) == "time_stop"
    portfolio = broker.portfolio()
    assert portfolio.positions == ()
    assert portfolio.stop_outs == {}  # a time stop is not a stop-out: no cooldown
    cancelled = broker.order(resting.order.id)
    assert cancelled is not None and cancelled.status is OrderStatus.CANCELLED
    assert cancelled.reason == "position closed by time-stop"
    assert await broker.on_price(BTC, D("51000"), deadline + timedelta(hours=1)) == ()
    assert len(broker.fills()) == 2


async def test_broker_time_stop_fires_at_the_first_price_after_it() -> None:
    broker = paper_broker(costs=CostModel(fee_bps=D(0), slippage_bps=D(0), impact_bps_per_1k=D(0)))
    await broker.on_price(BTC, D("50000"), T0)
    await broker.submit(buy("0.01", time_stop_at=T0 + timedelta(minutes=30)))
    assert await broker.on_price(BTC, D("50100"), T0 + timedelta(minutes=29)) == ()
    (fill,) = await broker.on_price(BTC, D("49900"), T0 + timedelta(hours=2))
    assert (fill.price, fill.fee, fill.quantity) == (D("49900"), D(0), D("0.01"))
    assert broker.portfolio().realized_pnl == D("-1")


@pytest.mark.parametrize(
    ("price", "trigger", "fill_price"),
    [
        ("44000", "stop_loss", None),  # a market exit: slips below 44,000
        ("56000", "take_profit", D("55000")),
        ("50000", "time_stop", None),
    ],
)
async def test_broker_stop_loss_and_take_profit_win_over_a_due_time_stop(
    price: str, trigger: str, fill_price: Decimal | None
) -> None:
    broker = paper_broker()
    await broker.on_price(BTC, D("50000"), T0)
    await broker.submit(
        buy(
            "0.02",
            stop_loss=D("45000"),
            take_profit=D("55000"),
            time_stop_at=T0 + timedelta(hours=1),
        )
    )
    (fill,) = await broker.on_price(BTC, D(price), T0 + timedelta(hours=2))
    order = broker.order(fill.order_id)
    assert order is not None and order.client_order_id.startswith(f"{trigger}-")
    assert fill.quantity == D("0.02")
    if fill_price is not None:
        assert fill.price == fill_price
    else:
        assert fill.price < D(price)
    assert (BTC in broker.portfolio().stop_outs) is (trigger == "stop_loss")


async def test_broker_a_later_buy_replaces_the_time_stop_one_without_keeps_it() -> None:
    broker = paper_broker()
    first, later = T0 + timedelta(hours=2), T0 + timedelta(hours=5)
    await broker.on_price(BTC, D("50000"), T0)
    await broker.submit(buy("0.01", time_stop_at=first))
    await broker.submit(buy("0.01", client_order_id="no-time-stop"))
    assert broker.portfolio().position(BTC).time_stop_at == first  # type: ignore[union-attr]
    await broker.submit(buy("0.01", time_stop_at=later))
    assert broker.portfolio().position(BTC).time_stop_at == later  # type: ignore[union-attr]

    assert await broker.on_price(BTC, D("50000"), first + timedelta(minutes=1)) == ()
    (fill,) = await broker.on_price(BTC, D("50000"), later)
    assert fill.quantity == D("0.03")
    assert broker.portfolio().positions == ()

    # a full close cleared it: a new position without one is not closed by the old deadline
    await broker.submit(buy("0.01"), at=later + timedelta(minutes=1))
    assert await broker.on_price(BTC, D("50000"), later + timedelta(hours=1)) == ()
    assert broker.portfolio().position(BTC).time_stop_at is None  # type: ignore[union-attr]


async def test_broker_a_resting_buy_brings_its_time_stop_when_it_fills() -> None:
    broker = paper_broker()
    deadline = T0 + timedelta(hours=3)
    await broker.on_price(BTC, D("50000"), T0)
    await broker.submit(buy("0.01", limit_price=D("49000"), time_stop_at=deadline))
    (entry,) = await broker.on_price(BTC, D("48900"), T0 + timedelta(hours=1))
    assert entry.side is Side.BUY
    assert broker.portfolio().position(BTC).time_stop_at == deadline  # type: ignore[union-attr]
    (exit_,) = await broker.on_price(BTC, D("49500"), deadline)
    assert (exit_.side, exit_.quantity) == (Side.SELL, D("0.01"))


async def test_broker_refuses_a_time_stop_on_a_sell_or_not_in_the_future() -> None:
    broker = paper_broker()
    await broker.on_price(BTC, D("50000"), T0)
    await broker.submit(buy("0.01"))
    before = snapshot(broker)
    with pytest.raises(BrokerError, match=r"only apply to BUY orders"):
        await broker.submit(sell("0.01", time_stop_at=T0 + timedelta(hours=1)))
    with pytest.raises(BrokerError, match=r"time_stop_at 2021-03-01T12:00:00\+00:00 must be after"):
        await broker.submit(buy("0.01", time_stop_at=T0))
    with pytest.raises(BrokerError, match=r"must be after the order time"):
        await broker.submit(buy("0.01", time_stop_at=T0 - timedelta(minutes=1)))
    assert snapshot(broker) == before


def test_broker_order_intent_refuses_a_naive_time_stop() -> None:
    with pytest.raises(ValidationError, match=r"timezone-aware"):
        buy("0.01", time_stop_at=T0.replace(tzinfo=None))


async def test_broker_time_stop_survives_a_restart_and_fires_once(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    deadline = T0 + timedelta(hours=6)
    broker = paper_broker(SqliteJournal(path))
    await broker.on_price(BTC, D("50000"), T0)
    await broker.submit(buy("0.02", stop_loss=D("45000"), time_stop_at=deadline))

    restarted = paper_broker(SqliteJournal(path))
    position = restarted.portfolio().position(BTC)
    assert position is not None and position.time_stop_at == deadline
    assert restarted.portfolio() == broker.portfolio()
    assert await restarted.on_price(BTC, D("50500"), deadline - timedelta(minutes=1)) == ()
    (fill,) = await restarted.on_price(BTC, D("50500"), deadline + timedelta(minutes=1))

    # the same price again, on the same broker, on a stale one and after another restart
    assert await restarted.on_price(BTC, D("50500"), deadline + timedelta(minutes=1)) == ()
    assert await broker.on_price(BTC, D("50500"), deadline + timedelta(minutes=1)) == ()
    again = paper_broker(SqliteJournal(path))
    assert await again.on_price(BTC, D("50500"), deadline + timedelta(hours=1)) == ()
    for each in (broker, restarted, again):
        each.refresh()
        assert each.portfolio().positions == ()
        assert [f.order_id for f in each.fills() if f.side is Side.SELL] == [fill.order_id]
    assert broker.portfolio() == restarted.portfolio() == again.portfolio()


async def test_broker_replays_a_journal_written_before_time_stops(tmp_path: Path) -> None:
    old = SqliteJournal(":memory:")
    broker = paper_broker(old, seed=(Position(symbol=ETH, quantity=D("2"), avg_price=D("1500")),))
    await broker.on_price(BTC, D("50000"), T0)
    await broker.submit(buy("0.02", stop_loss=D("45000"), take_profit=D("60000")))
    await broker.submit(buy("0.01", limit_price=D("49000")))
    events = old.read("paper")
    for event in events:  # drop the new key, as the events written before it existed
        for position in event.data.get("positions", []):
            position.pop("time_stop_at")
        if "order" in event.data:
            event.data["order"]["intent"].pop("time_stop_at")
    assert "time_stop_at" not in str([e.data for e in events])
    replayed = SqliteJournal(tmp_path / "old.sqlite")
    replayed.append("paper", events)

    restored = paper_broker(replayed)
    assert restored.portfolio() == broker.portfolio()
    assert restored.orders() == broker.orders()
    assert all(p.time_stop_at is None for p in restored.portfolio().positions)
    # the resting buy fills at its limit, then the stop closes everything (no time stop)
    entry, exit_ = await restored.on_price(BTC, D("44000"), T0 + timedelta(days=30))
    assert (entry.side, exit_.side, exit_.quantity) == (Side.BUY, Side.SELL, D("0.03"))
    assert restored.order(exit_.order_id).client_order_id.startswith("stop_loss-")  # type: ignore[union-attr]


def test_broker_derived_client_ids_are_unchanged_for_intents_without_a_time_stop() -> None:
    from tradecast.broker.paper import derive_client_order_id

    # the id this intent got before time_stop_at existed (a retry across the upgrade repeats)
    assert derive_client_order_id(buy("0.01", stop_loss=D("45000")), T0) == PINNED_AUTO_ID
    timed = buy("0.01", stop_loss=D("45000"), time_stop_at=T0 + timedelta(hours=1))
    assert derive_client_order_id(timed, T0) != PINNED_AUTO_ID


async def test_broker_gated_executor_reports_a_time_stop_exit() -> None:
    from tradecast.domain.market import Ticker
    from tradecast.risk.execution import GatedExecutor
    from tradecast.settings import RiskLimits

    class OnePrice:
        price = D("50000")

        async def ticker(self, symbol: str, at: object = None) -> Ticker:
            return Ticker(symbol=symbol, timestamp=T0, last=self.price)

    market = OnePrice()
    broker = paper_broker()
    executor = GatedExecutor(broker, market, RiskLimits(), clock=lambda: T0)  # type: ignore[arg-type]
    await broker.on_price(BTC, D("50000"), T0)
    await broker.submit(buy("0.01", time_stop_at=T0 + timedelta(hours=1)))
    market.price = D("50200")
    _, exits = await executor.mark_with_exits(BTC, T0 + timedelta(hours=1))
    ((fill, trigger),) = exits
    assert (fill.side, trigger) == (Side.SELL, "time_stop")

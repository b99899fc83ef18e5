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

"""Exchange trading rules (minimums, step sizes) and the paper trading cost model.

The broker and the risk gate share these so the gate sizes an order exactly as the broker
will fill it: same step rounding, same fees, same slippage.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from pydantic import Field, model_validator

from tradecast.domain import DomainModel, Side
from tradecast.settings import BrokerConfig

MONEY_QUANTUM = Decimal("0.00000001")
"""Cash, fees and notionals are kept to 8 decimal places of the quote currency."""
AVG_PRICE_QUANTUM = Decimal("0.0000000001")
"""Average entry prices carry 10 decimal places (below any exchange tick)."""
BPS = Decimal(10_000)
_THOUSAND = Decimal(1000)


class MarketRules(DomainModel):
    """An exchange's limits for one symbol (Binance LOT_SIZE, MIN_NOTIONAL, PRICE_FILTER)."""

    min_qty: Decimal = Field(gt=0, allow_inf_nan=False)
    qty_step: Decimal = Field(gt=0, allow_inf_nan=False)
    min_notional: Decimal = Field(ge=0, allow_inf_nan=False)
    price_tick: Decimal = Field(gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _min_on_step(self) -> MarketRules:
        if self.min_qty % self.qty_step != 0:
            raise ValueError(f"min_qty {self.min_qty} must be a multiple of qty_step")
        return self

    def floor_qty(self, quantity: Decimal) -> Decimal:
        """``quantity`` rounded DOWN to the step (what an exchange would accept)."""
        steps = (quantity / self.qty_step).to_integral_value(rounding=ROUND_FLOOR)
        return tidy((steps * self.qty_step).quantize(self.qty_step))

    def on_step(self, quantity: Decimal) -> bool:
        """Whether ``quantity`` is a whole number of steps."""
        return quantity % self.qty_step == 0

    def round_price(self, price: Decimal, up: bool) -> Decimal:
        """``price`` on the tick, rounded up (worse for a buyer) or down (worse for a seller)."""
        rounding = ROUND_CEILING if up else ROUND_FLOOR
        steps = (price / self.price_tick).to_integral_value(rounding=rounding)
        return (steps * self.price_tick).quantize(self.price_tick)

    def violations(self, quantity: Decimal, price: Decimal) -> list[str]:
        """Why an order of ``quantity`` at ``price`` breaks these rules (empty: it does not)."""
        problems = []
        if quantity < self.min_qty:
            problems.append(f"quantity {quantity} is below the exchange minimum {self.min_qty}")
        if not self.on_step(quantity):
            problems.append(f"quantity {quantity} is not a multiple of the step {self.qty_step}")
        notional = quantity * price
        if notional < self.min_notional:
            problems.append(
                f"order value {money(notional)} is below the exchange minimum {self.min_notional}"
            )
        return problems


# Binance spot filters for the bundled pairs (LOT_SIZE, PRICE_FILTER, NOTIONAL).
DEFAULT_MARKET_RULES: dict[str, MarketRules] = {
    "BTC/USDT": MarketRules(
        min_qty=Decimal("0.00001"),
        qty_step=Decimal("0.00001"),
        min_notional=Decimal("5"),
        price_tick=Decimal("0.01"),
    ),
    "ETH/BUSD": MarketRules(
        min_qty=Decimal("0.0001"),
        qty_step=Decimal("0.0001"),
        min_notional=Decimal("10"),
        price_tick=Decimal("0.01"),
    ),
}
GENERIC_MARKET_RULES = MarketRules(
    min_qty=Decimal("0.00000001"),
    qty_step=Decimal("0.00000001"),
    min_notional=Decimal("10"),
    price_tick=Decimal("0.00000001"),
)
"""Rules for a symbol with none configured: fine steps, a 10-quote minimum order."""


def rules_for(symbol: str, overrides: Mapping[str, MarketRules] | None = None) -> MarketRules:
    """The trading rules of ``symbol``: an override, a bundled default, else the generic."""
    if overrides and symbol in overrides:
        return overrides[symbol]
    return DEFAULT_MARKET_RULES.get(symbol, GENERIC_MARKET_RULES)


class CostModel(DomainModel):
    """Paper trading costs: a fee and a slippage that grows with the order's size."""

    fee_bps: Decimal = Field(default=Decimal("10"), ge=0, le=1000, allow_inf_nan=False)
    slippage_bps: Decimal = Field(default=Decimal("2"), ge=0, le=1000, allow_inf_nan=False)
    impact_bps_per_1k: Decimal = Field(default=Decimal("0.5"), ge=0, allow_inf_nan=False)

    @classmethod
    def from_config(cls, config: BrokerConfig) -> CostModel:
        """The cost model of the broker settings."""
        return cls(
            fee_bps=config.fee_bps,
            slippage_bps=config.slippage_bps,
            impact_bps_per_1k=config.slippage_impact_bps_per_1k,
        )

    def slippage_for(self, notional: Decimal) -> Decimal:
        """Slippage in bps for an order of ``notional`` quote value."""
        return self.slippage_bps + self.impact_bps_per_1k * notional / _THOUSAND

    def taker_price(
        self, side: Side, quantity: Decimal, reference: Decimal, rules: MarketRules
    ) -> Decimal:
        """The price a market order fills at: the reference moved against us, on the tick."""
        bps = self.slippage_for(quantity * reference)
        if side is Side.BUY:
            return rules.round_price(reference * (1 + bps / BPS), up=True)
        slipped = rules.round_price(reference * (1 - bps / BPS), up=False)
        # A huge order's slippage never drives a sell price to zero or below.
        return max(slipped, rules.price_tick)

    def fee(self, notional: Decimal) -> Decimal:
        """The fee on a fill of ``notional`` (rounded half-even to the money quantum)."""
        return money(notional * self.fee_bps / BPS)


def money(amount: Decimal) -> Decimal:
    """``amount`` on the money quantum (8 decimals, half-even)."""
    return amount.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN)


def money_up(amount: Decimal) -> Decimal:
    """``amount`` on the money quantum, rounded up (for conservative reservations)."""
    return amount.quantize(MONEY_QUANTUM, rounding=ROUND_CEILING)


def tidy(number: Decimal) -> Decimal:
    """``number`` without trailing zeros and never in exponent form (0.02000 -> 0.02)."""
    if number == number.to_integral_value():
        return number.quantize(Decimal(1))
    return number.normalize()

"""How much a BUY should hold: volatility targeting, fractional Kelly, or a fixed share.

Plain code, like the gate: a method proposes a target weight (position value over equity),
and the result is always capped by ``max_position_pct`` (the gate checks every order again).

- ``volatility``: the weight whose expected daily volatility is the book's target:
  ``target_daily_vol / daily volatility of the asset``.
- ``kelly``: fractional Kelly from the desk's own closed trades, ``p - (1 - p) / b`` (win rate
  ``p``, average win over average loss ``b``), times ``kelly_fraction`` and shrunk toward zero
  by ``n / (n + kelly_prior_trades)``; before the record says anything the desk bets a small
  probe (``probe_fraction`` of the cap), so that it can build one.
- ``fixed``: the whole cap (the consensus scales it by confidence, as it always has).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from tradecast.domain import Fill, Side
from tradecast.settings import StrategyConfig


@dataclass(frozen=True)
class TradeRecord:
    """Closed trades (sells against the average cost) of one symbol, net of fees."""

    returns: tuple[float, ...] = ()

    @property
    def trades(self) -> int:
        """How many closed trades."""
        return len(self.returns)

    def kelly(self) -> float | None:
        """Full Kelly fraction ``p - (1 - p) / b``; None without both a win and a loss."""
        wins = [r for r in self.returns if r > 0]
        losses = [-r for r in self.returns if r < 0]  # a trade that broke even says nothing
        if not wins or not losses:
            return None
        p = len(wins) / (len(wins) + len(losses))
        payoff = (sum(wins) / len(wins)) / (sum(losses) / len(losses))
        return p - (1 - p) / payoff


def trade_record(fills: Iterable[Fill], symbol: str) -> TradeRecord:
    """The closed trades of ``symbol`` from its fills in time order: each sell's return on
    the average cost of what it sold, buy and sell fees included."""
    quantity = cost = Decimal(0)
    returns: list[float] = []
    for fill in fills:
        if fill.symbol != symbol:
            continue
        if fill.side is Side.BUY:
            quantity += fill.quantity
            cost += fill.quantity * fill.price + fill.fee
            continue
        if quantity <= 0:
            continue
        sold = min(fill.quantity, quantity)
        basis = cost * sold / quantity
        proceeds = sold * fill.price - fill.fee
        if basis > 0:
            returns.append(float(proceeds / basis - 1))
        cost -= basis
        quantity -= sold
    return TradeRecord(tuple(returns))


@dataclass(frozen=True)
class TargetWeight:
    """A sizing method's answer: the weight to hold, and how it was reached."""

    weight: float
    note: str
    firm: bool = True
    """False for a probe (the method could not size yet): a position above it is not
    trimmed down to it."""


def target_weight(
    config: StrategyConfig,
    *,
    cap: float,
    daily_volatility: float | None,
    record: TradeRecord,
) -> TargetWeight:
    """The weight a BUY should bring the position to, never above ``cap``.

    Args:
        config: the sizing method and its parameters.
        cap: the risk limits' maximum position, as a share of equity.
        daily_volatility: the asset's recent daily volatility (None: unknown).
        record: the desk's closed trades in this symbol.

    Returns:
        A weight in [0, cap] with a note saying how it was reached.
    """
    cap = max(0.0, cap)
    if config.sizing == "volatility":
        if daily_volatility is None or not math.isfinite(daily_volatility) or daily_volatility <= 0:
            return TargetWeight(
                cap * config.probe_fraction, "volatility unknown: probe size", firm=False
            )
        raw = config.target_daily_vol / daily_volatility
        note = f"vol target {config.target_daily_vol:.2%}/day at {daily_volatility:.2%}/day"
        return _capped(raw, cap, note)
    if config.sizing == "kelly":
        return _kelly(config, cap, record)
    return TargetWeight(cap, "fixed share of the cap")


def _kelly(config: StrategyConfig, cap: float, record: TradeRecord) -> TargetWeight:
    probe = cap * config.probe_fraction
    full = record.kelly()
    if full is None:
        return TargetWeight(probe, f"kelly: {record.trades} closed trades, probe size", firm=False)
    shrink = record.trades / (record.trades + config.kelly_prior_trades)
    raw = max(0.0, full) * config.kelly_fraction * shrink
    note = f"kelly {full:.2f} x {config.kelly_fraction:g} x shrink {shrink:.2f} ({record.trades})"
    capped = _capped(raw, cap, note)
    if capped.weight < probe:
        return TargetWeight(probe, note + ": probe size", firm=False)
    return capped


def _capped(raw: float, cap: float, note: str) -> TargetWeight:
    if raw >= cap:
        return TargetWeight(cap, f"{note}: capped at {cap:.1%}")
    return TargetWeight(max(0.0, raw), f"{note}: {raw:.1%}")

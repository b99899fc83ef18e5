"""After-the-fact checks of a portfolio tick: did an order that added exposure leave the
book past a portfolio limit?

The book is measured again from the broker's portfolio after the tick (signed position values
at the tick's marks, the broker's equity) with returns read again from the closed bars, not
from what the portfolio node computed. A tick whose executed orders only reduced exposure is
never a violation: the limits rule on what orders add, and a book pushed past a limit by
prices is reported by :func:`over_limits` instead, as information.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from decimal import Decimal
from typing import Any

from tradecast.risk.exposure import Exposure
from tradecast.settings import RiskLimits


def over_limits(
    exposure: Exposure, limits: RiskLimits, symbols: Collection[str] | None = None
) -> list[str]:
    """Every portfolio limit the book is past (empty: within all of them); the per-symbol cap
    only for ``symbols`` when given."""
    found = []
    if exposure.gross > limits.max_gross_exposure_pct:
        found.append(f"gross exposure {exposure.gross:.4f} > {limits.max_gross_exposure_pct}")
    if exposure.net > limits.max_net_exposure_pct:
        found.append(f"net exposure {exposure.net:.4f} > {limits.max_net_exposure_pct}")
    cap = limits.max_correlated_exposure_pct
    for group, net in exposure.group_net.items():
        if "+" in group and net > cap:
            found.append(f"correlated group {group} {net:.4f} > {cap}")
    if exposure.var is not None and exposure.var > limits.max_var_pct:
        found.append(f"VaR {exposure.var:.4f} > {limits.max_var_pct}")
    if exposure.cvar is not None and exposure.cvar > limits.max_cvar_pct:
        found.append(f"CVaR {exposure.cvar:.4f} > {limits.max_cvar_pct}")
    for symbol, value in exposure.values.items():
        if symbols is not None and symbol not in symbols:
            continue
        share = abs(value) / exposure.equity if exposure.equity > 0 else Decimal(0)
        if share > limits.max_position_pct:
            found.append(f"{symbol} position {share:.4f} > {limits.max_position_pct}")
    return found


def portfolio_violations(
    state: Mapping[str, Any], exposure: Exposure, limits: RiskLimits
) -> list[str]:
    """The limits a tick's executed orders broke (empty: none): any fill under the kill
    switch, or the book past a limit after an order that added exposure."""
    review = state.get("review")
    outcomes = state.get("outcomes") or []
    filled = [o for o in outcomes if o.execution is not None and o.execution.fills]
    if not filled:
        return []
    if limits.kill_switch:
        return [f"{o.symbol} traded with the kill switch on" for o in filled]
    exits = {o.intent.client_order_id for o in review.orders if o.exit} if review else set()
    adding = [o for o in filled if o.execution.order.client_order_id not in exits]
    if not adding:
        return []
    added = sorted({o.symbol for o in adding})
    return [
        f"after adding {', '.join(added)}: {problem}"
        for problem in over_limits(exposure, limits, added)
    ]

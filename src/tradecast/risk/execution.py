"""The one path from the desk (agents, chat, API) to the broker: price, risk gate, submit.

:class:`GatedExecutor` marks the symbol to the market's current price, asks the pure risk gate
(:func:`tradecast.risk.gate.check_order`) and submits only the approved (possibly shrunk)
intent. Nothing that calls it can skip the gate.

On a margin account the gate also learns the margin terms, so a SELL with nothing held may
open a short: the executor takes them from the broker when it journals them
(:attr:`tradecast.broker.paper.PaperBroker.margin_terms`, the account's own terms), else from
its ``margin`` argument (a broker that does not say, e.g. a wrapper).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from tradecast.broker.paper import Broker, Execution, derive_client_order_id
from tradecast.domain import (
    DomainModel,
    Fill,
    OrderIntent,
    OrderStatus,
    Portfolio,
    Price,
    RiskVerdict,
    utc_now,
)
from tradecast.errors import BrokerError, MarketDataError
from tradecast.logs import get_logger
from tradecast.market.base import MarketData
from tradecast.risk.gate import MarketContext, check_order, updated_limits
from tradecast.settings import MarginConfig, RiskLimits

log = get_logger(__name__)

_UNSET = object()

Clock = Callable[[], datetime]


class ExecutionReport(DomainModel):
    """What happened to one request: the gate's verdict and, when approved, the execution."""

    requested: OrderIntent
    verdict: RiskVerdict
    price: Price | None = None
    """The price the gate judged the order at."""
    execution: Execution | None = None
    error: str | None = None
    """Why nothing was executed although the gate approved (market data or broker refusal)."""

    @property
    def executed(self) -> bool:
        """Whether an order reached the broker (new or a repeat)."""
        return self.execution is not None


class GatedExecutor:
    """Submits order intents through the risk gate; the limits can change at run time."""

    def __init__(
        self,
        broker: Broker,
        market: MarketData,
        limits: RiskLimits,
        clock: Clock = utc_now,
        margin: MarginConfig | None = None,
    ) -> None:
        self.broker = broker
        self.market = market
        self._limits = limits
        self._clock = clock
        self._margin = margin

    @property
    def margin(self) -> MarginConfig | None:
        """The margin terms the gate judges shorts by (None or disabled: spot)."""
        journaled = getattr(self.broker, "margin_terms", _UNSET)
        if journaled is not _UNSET:
            return journaled if isinstance(journaled, MarginConfig) else None
        return self._margin

    @property
    def limits(self) -> RiskLimits:
        """The limits the next order is checked against."""
        return self._limits

    def update_limits(self, **changes: Any) -> RiskLimits:
        """Change some limits (validated; RiskLimitsError and no change on a bad value)."""
        before = self._limits
        self._limits = updated_limits(before, **changes)
        changed = {
            name: str(getattr(self._limits, name))
            for name in changes
            if getattr(self._limits, name) != getattr(before, name)
        }
        if changed:  # replicas re-apply the stored overrides on every catch-up
            log.info("risk.limits_updated", **changed)
        return self._limits

    def now(self) -> datetime:
        """The desk's clock."""
        return self._clock()

    async def mark(self, symbol: str, now: datetime | None = None) -> Decimal:
        """Mark ``symbol`` at the market's price now (runs stops and resting limits)."""
        price, _ = await self.mark_with_exits(symbol, now)
        return price

    async def mark_with_exits(
        self, symbol: str, now: datetime | None = None
    ) -> tuple[Decimal, tuple[tuple[Fill, str], ...]]:
        """:meth:`mark`, with the fills the price triggered and what triggered each
        (``stop_loss``, ``take_profit``, ``time_stop``, ``liquidation`` or ``limit``)."""
        moment = now or self._clock()
        ticker = await self.market.ticker(symbol, at=moment)
        fills = await self.broker.on_price(ticker.symbol, ticker.last, moment)
        return ticker.last, tuple((fill, self._trigger_of(fill)) for fill in fills)

    def _trigger_of(self, fill: Fill) -> str:
        order = self.broker.order(fill.order_id)
        prefix = order.client_order_id.partition("-")[0] if order else ""
        exits = ("stop_loss", "take_profit", "time_stop", "liquidation")
        return prefix if prefix in exits else "limit"

    async def review(
        self, intent: OrderIntent, now: datetime | None = None
    ) -> tuple[RiskVerdict, Decimal]:
        """The gate's verdict on ``intent`` at the current price, without submitting."""
        moment = now or self._clock()
        price = await self.mark(intent.symbol, moment)
        context = MarketContext(
            symbol=intent.symbol,
            price=price,
            rules=self.broker.market_rules(intent.symbol),
            costs=self.broker.cost_model,
            open_orders=tuple(self.broker.orders(status=OrderStatus.OPEN)),
            margin=self.margin,
        )
        verdict = check_order(intent, self.broker.portfolio(), self._limits, context, moment)
        return verdict, price

    async def submit(self, intent: OrderIntent, now: datetime | None = None) -> ExecutionReport:
        """Gate ``intent`` and submit what the gate approves.

        A repeated ``client_order_id`` returns the first order without a new fill (and without
        a second gate check, which would judge it against the position it already opened).
        """
        moment = now or self._clock()
        client_id = intent.client_order_id or derive_client_order_id(intent, moment)
        intent = intent.model_copy(update={"client_order_id": client_id})
        repeat = self._repeat(intent)
        if repeat is not None:
            return repeat
        try:
            verdict, price = await self.review(intent, moment)
        except (MarketDataError, BrokerError) as exc:
            return ExecutionReport(
                requested=intent,
                verdict=RiskVerdict(approved=False, reasons=(f"no price to judge it at: {exc}",)),
                error=str(exc),
            )
        if not verdict.approved or verdict.intent is None:
            log.info(
                "risk.rejected",
                symbol=intent.symbol,
                side=intent.side.value,
                quantity=str(intent.quantity),
                reasons=list(verdict.reasons),
            )
            return ExecutionReport(requested=intent, verdict=verdict, price=price)
        try:
            execution = await self.broker.submit(verdict.intent, at=moment)
        except BrokerError as exc:
            log.warning("broker.refused", client_order_id=client_id, error=str(exc))
            return ExecutionReport(requested=intent, verdict=verdict, price=price, error=str(exc))
        return ExecutionReport(requested=intent, verdict=verdict, price=price, execution=execution)

    def portfolio(self) -> Portfolio:
        """The broker's portfolio at its latest marks."""
        return self.broker.portfolio()

    def submitted(self, intent: OrderIntent) -> ExecutionReport | None:
        """The order already placed under ``intent``'s client order id, with its fills (None:
        none was). A tick resumed after a crash between the fill and its checkpoint finds its
        order here: the gate is not asked again about an order that exists, since it would
        judge it against the position that order opened."""
        return self._repeat(intent) if intent.client_order_id else None

    def _repeat(self, intent: OrderIntent) -> ExecutionReport | None:
        original = self.broker.order(intent.client_order_id or "")
        if original is None or original.client_order_id != intent.client_order_id:
            return None
        note = f"repeat of order {original.id} (client_order_id {original.client_order_id})"
        verdict = RiskVerdict(approved=True, intent=original.intent, reasons=(note,))
        execution = Execution(
            order=original, fills=tuple(self.broker.fills(original.id)), duplicate=True
        )
        return ExecutionReport(requested=intent, verdict=verdict, execution=execution)

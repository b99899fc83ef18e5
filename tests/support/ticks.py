"""Tick reports for tests at the edge of the desk (stores, chat controls): valid
:class:`~tradecast.graphs.runner.TickResult` values with only what a test cares about."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from tradecast.domain import Action, Decision
from tradecast.graphs.report import LLMUsage, PersonaReport, RiskReport, TickStatus
from tradecast.graphs.runner import TickResult

DESK_VOTERS = {"rules", "trend", "mean_reversion", "breakout", "dca", "analyst", "trader", "risk"}
"""Who has a row in a default desk's attribution: the rules, the four strategy agents and the
three LLM agents."""


def tick_report(
    decision_id: str,
    decided_at: datetime,
    *,
    action: str = "HOLD",
    quantity: str = "0.01",
    price: str = "30000",
    confidence: float = 0.5,
    status: TickStatus = "completed",
    approved: bool = False,
) -> TickResult:
    """A tick on BTC/USDT that decided ``action`` (a HOLD has quantity 0) and placed no order."""
    decision = Decision(
        id=decision_id,
        symbol="BTC/USDT",
        action=Action(action),
        quantity=Decimal(0) if action == "HOLD" else Decimal(quantity),
        price=Decimal(price),
        confidence=confidence,
        decided_at=decided_at,
    )
    return TickResult(
        thread_id=f"tick:{decision_id}",
        status=status,
        decision=decision,
        risk=RiskReport(approved=approved, reasons=[], shrunk=False, approval="not_required"),
        order=None,
        fills=[],
        persona=PersonaReport(text="", emotion=None, lines=[]),
        llm=LLMUsage(calls=0, failed=0, prompt_tokens=0, completion_tokens=0, by_agent=[]),
        latency_ms={"total": 1.0},
    )

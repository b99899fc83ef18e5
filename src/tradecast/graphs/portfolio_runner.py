"""Runs portfolio desk ticks: one checkpointed thread per instant for every symbol, and one
report per symbol.

:class:`PortfolioRunner` is a :class:`~tradecast.graphs.runner.DeskRunner` whose thread is the
instant's (``tick:portfolio-<instant>``) and whose graph starts from every symbol. Running the
same instant again resumes the thread, and the broker's client order ids (``tc-<decision
id>``) keep a tick cut short from filling twice, as for the one-symbol desk.

Its :class:`~tradecast.graphs.report.TickResult` is the headline symbol's report (the one the
persona talked about) with the other symbols' reports as ``companions``; each carries the
portfolio check's summary, so the desk store, the API and the console read a portfolio tick as
one decision per symbol.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from tradecast.domain import Action, Fill, RiskVerdict
from tradecast.graphs.portfolio_plan import per_symbol_calls
from tradecast.graphs.portfolio_state import PortfolioReview, SymbolOutcome, SymbolProposal
from tradecast.graphs.report import PortfolioSummary, TickResult
from tradecast.graphs.runner import TICK_PREFIX, DeskRunner, tick_result


class PortfolioRunner(DeskRunner):
    """Ticks the portfolio graph over ``symbols`` (see the module docstring)."""

    def __init__(self, graph: CompiledStateGraph, symbols: Sequence[str], **options: Any) -> None:
        super().__init__(graph, **options)
        self.symbols = tuple(symbols)

    @staticmethod
    def thread_id(symbol: str, at: datetime) -> str:
        """The checkpoint thread of the portfolio tick at ``at`` (every symbol's)."""
        return f"{TICK_PREFIX}portfolio-{at:%Y%m%dT%H%M}"

    def first_input(self, symbol: str, at: datetime) -> dict[str, Any]:
        """Every symbol, at one instant."""
        return {"at": at, "symbols": list(self.symbols)}

    @staticmethod
    def _result(
        thread: str,
        values: dict[str, Any],
        total_ms: float,
        *,
        resumed: bool,
        waiting: bool = False,
    ) -> TickResult:
        return portfolio_tick_result(thread, values, total_ms, resumed=resumed)


def portfolio_tick_result(
    thread: str, values: dict[str, Any], total_ms: float, *, resumed: bool
) -> TickResult:
    """The headline symbol's report with the other symbols' reports as companions."""
    proposals: list[SymbolProposal] = values.get("proposals") or []
    review: PortfolioReview | None = values.get("review")
    if not proposals or review is None:  # cut short before the portfolio node
        return tick_result(thread, {}, total_ms, resumed=resumed, waiting=False)
    summary = PortfolioSummary(
        symbols=list(values.get("symbols") or []),
        headline=values.get("headline"),
        held=review.current,
        asked=review.asked,
        approved=review.approved,
        reasons={s: list(r) for s, r in review.reasons.items()},
        notes=list(review.notes),
        scale=review.scale,
        before=review.before,
        after=review.after,
        book=values.get("book"),
        llm_calls=per_symbol_calls(values),
    )
    reports = [
        _symbol_report(thread, values, proposal, review, summary, total_ms, resumed)
        for proposal in proposals
    ]
    headline = next(
        (r for r in reports if r.decision and r.decision.symbol == summary.headline), reports[0]
    )
    others = [r for r in reports if r is not headline]
    return headline.model_copy(update={"companions": others})


def _symbol_report(
    thread: str,
    values: dict[str, Any],
    proposal: SymbolProposal,
    review: PortfolioReview,
    summary: PortfolioSummary,
    total_ms: float,
    resumed: bool,
) -> TickResult:
    symbol = proposal.symbol
    outcomes = [o for o in values.get("outcomes") or [] if o.symbol == symbol]
    spoke = values.get("headline") == symbol
    fills: list[Fill] = [f for o in outcomes if o.execution for f in o.execution.fills]
    executed = [o for o in outcomes if o.execution is not None]
    latency = {**proposal.latency_ms, **(values.get("latency_ms") or {})}
    symbol_values = {
        "decision": proposal.decision,
        "verdict": _verdict(proposal, review, outcomes),
        "execution": executed[-1].execution.model_copy(update={"fills": tuple(fills)})
        if executed and executed[-1].execution
        else None,
        "persona": values.get("persona") if spoke else [],
        "llm_calls": [*proposal.llm_calls, *(values.get("llm_calls") or [] if spoke else [])],
        "latency_ms": latency,
        "approval": "not_required",
    }
    report = tick_result(thread, symbol_values, total_ms, resumed=resumed, waiting=False)
    return report.model_copy(update={"portfolio": summary})


def _verdict(
    proposal: SymbolProposal, review: PortfolioReview, outcomes: list[SymbolOutcome]
) -> RiskVerdict:
    """The symbol's ruling: the portfolio check's reasons, then the gate's on each order."""
    reasons = list(review.reasons.get(proposal.symbol, ()))
    for outcome in outcomes:
        reasons.extend(outcome.verdict.reasons)
        if outcome.execution is None and outcome.error and outcome.error not in reasons:
            reasons.append(outcome.error)
    if proposal.decision.action is Action.HOLD and not outcomes:
        return RiskVerdict(approved=False, reasons=("nothing to trade (HOLD)", *reasons))
    approved = any(o.execution is not None for o in outcomes)
    asked = review.asked.get(proposal.symbol, Decimal(0))
    allowed = review.approved.get(proposal.symbol, Decimal(0))
    if not outcomes and not reasons:
        reasons.append("the book already holds what the decision asked for")
    shrunk = approved and (allowed != asked or any(o.verdict.shrunk for o in outcomes))
    intent = outcomes[-1].verdict.intent if outcomes else None
    return RiskVerdict(approved=approved, intent=intent, reasons=tuple(reasons), shrunk=shrunk)

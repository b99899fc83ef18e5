"""Compact text forms of memory hits, short enough for a small model's prompt."""

from __future__ import annotations

from collections.abc import Sequence

from tradecast.domain import Action, MemoryHit
from tradecast.memory.base import horizon_delta

NO_HITS = "No similar past situations in memory."
HEADER = "Similar past situations (most similar first):"


def verdict(action: Action, ret: float) -> str | None:
    """'right' or 'wrong' for a trade given the price return after it; None for a HOLD."""
    if action is Action.HOLD or ret == 0:
        return None
    went_up = ret > 0
    return "right" if went_up == (action is Action.BUY) else "wrong"


def format_outcome(hit: MemoryHit) -> str:
    """The known outcome of a hit, e.g. '1h +0.40%, 24h -2.10% (wrong), stop hit'."""
    if not hit.outcome_returns:
        return "outcome not known yet"
    horizons = sorted(hit.outcome_returns, key=horizon_delta)
    parts = [f"{h} {hit.outcome_returns[h]:+.2%}" for h in horizons]
    longest = hit.outcome_returns[horizons[-1]]
    call = verdict(hit.action, longest)
    text = ", ".join(parts) + (f" ({call})" if call else "")
    if hit.stop_hit is not None:
        text += ", stop hit" if hit.stop_hit else ", stop not hit"
    return text


def _shorten(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: max(0, limit - 3)].rstrip() + "..."


def format_hit(hit: MemoryHit, max_situation_chars: int = 160) -> str:
    """One line: similarity, when, what was done, what came of it, and the situation."""
    when = hit.decided_at.strftime("%Y-%m-%d %H:%MZ")
    line = (
        f"sim {hit.similarity:.2f} | {when} {hit.symbol} {hit.action.value} -> "
        f"{format_outcome(hit)}"
    )
    if max_situation_chars > 0:
        line += f" | was: {_shorten(hit.situation, max_situation_chars)}"
    return line


def format_hits(hits: Sequence[MemoryHit], max_situation_chars: int = 160) -> str:
    """A prompt block listing ``hits`` one per line, or a line saying there are none."""
    if not hits:
        return NO_HITS
    lines = [f"- {format_hit(h, max_situation_chars)}" for h in hits]
    return "\n".join([HEADER, *lines])

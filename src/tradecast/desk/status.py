"""The desk's status as ``GET /v1/desk/status`` (and ``start``, ``stop`` and the snapshot)
report it: the keys and JSON types of ``DeskService.status()``.

Instants are ISO 8601 strings as the desk writes them (``datetime.isoformat()``) and money a
decimal string, so the model passes them through unchanged.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tradecast.graphs.runner import TickStatus

DeskState = Literal[
    "running", "paused", "awaiting_approval", "finished", "stopped", "standby", "degraded"
]
"""What the loop is doing."""


class _Frozen(BaseModel):
    # extra="forbid": a key added to the status without its field here fails at once
    model_config = ConfigDict(
        frozen=True, validate_by_name=True, validate_by_alias=True, extra="forbid"
    )


class ReplayWindow(_Frozen):
    """The instants a replay ticks through."""

    from_: str = Field(alias="from", description="the first instant (ISO 8601)")
    until: str = Field(description="the last instant with a bar (ISO 8601)")


class LastTick(_Frozen):
    """The latest tick this replica ran."""

    at: str = Field(description="the instant it decided on (ISO 8601)")
    decision_id: str = Field(description="its decision id (the thread id when it decided none)")
    status: TickStatus
    action: str | None = Field(description="BUY, SELL or HOLD; null when it decided nothing")
    thread_id: str = Field(description="its checkpoint thread (``tick:<decision id>``)")


class DeskStatus(_Frozen):
    """Running or paused, symbol, cadence, last tick, pending approvals, equity."""

    state: DeskState = Field(description="what the loop is doing")
    ticking: bool = Field(description="a tick is running now")
    mode: Literal["replay", "live"] = Field(description="replayed candles or the live market")
    symbol: str
    symbols: list[str] = Field(
        default_factory=list, description="every symbol a tick decides (the portfolio desk)"
    )
    every: str = Field(description="the tick cadence, e.g. 1h")
    seconds_per_tick: float = Field(description="wall time between replayed ticks")
    next_tick_at: str | None = Field(
        description="the next instant to tick (ISO 8601); null when the replay has ended"
    )
    replay: ReplayWindow | None = Field(description="the replay's window; null when live")
    ticks: int = Field(
        description="ticks with a stored report: those in the store when this replica started, "
        "plus those it ran since"
    )
    last_tick: LastTick | None = Field(description="null until this replica has ticked")
    pending_approvals: list[str] = Field(description="decision ids of orders waiting for a human")
    equity: str = Field(description="cash plus positions at market (decimal string)")
    kill_switch: bool = Field(description="on: the risk gate rejects every new order")
    persona: str = Field(description="the persona's name")
    error: str | None = Field(description="why the last tick failed or was skipped, if it did")
    replica: str = Field(description="this replica's id")
    leader: bool = Field(description="this replica holds the loop lease (runs the loop)")
    dependencies: dict[str, str] = Field(
        description="shared services that are down, each with what is wrong"
    )

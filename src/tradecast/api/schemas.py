"""Request bodies and JSON views of domain objects for the HTTP API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from tradecast.domain import Portfolio, Position
from tradecast.settings import RiskLimits

THREAD_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_:.\-]{0,99}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApprovalBody(_Body):
    """Approve or reject the order waiting under a decision id."""

    approved: bool = Field(description="true: submit the order; false: drop it")


class KillSwitchBody(_Body):
    """Turn the kill switch on (no new orders at all) or off."""

    on: bool


class ChatBody(_Body):
    """One operator message."""

    message: str = Field(
        min_length=1,
        max_length=2000,
        description="a command ('pause', 'max position 5%', ...) or a question",
    )
    thread_id: str = Field(pattern=THREAD_ID_PATTERN, description="the conversation's id")


LimitsUpdate: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "LimitsUpdate",
    __config__=ConfigDict(extra="forbid"),
    __doc__="Risk limits to change; the ones left out stay as they are.",
    **{
        name: (field.annotation | None, Field(default=None, description=field.description))
        for name, field in RiskLimits.model_fields.items()
    },
)


class ThreadCreate(BaseModel):
    """LangGraph's thread creation body (fields the desk does not use are ignored)."""

    model_config = ConfigDict(extra="ignore")

    thread_id: str | None = Field(default=None, pattern=THREAD_ID_PATTERN)
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"


class RunCommand(BaseModel):
    """LangGraph's command: ``resume`` answers a pending approval."""

    model_config = ConfigDict(extra="ignore")

    resume: dict[str, Any] | bool | None = Field(
        default=None, description="{'approved': true|false, 'decision_id': optional} or a bool"
    )


class RunCreate(BaseModel):
    """LangGraph's run body: assistant ``desk`` (a tick, or an approval with ``command``) or
    ``chat`` (``input: {"message": ...}``). Other LangGraph fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    assistant_id: Literal["desk", "chat"]
    input: dict[str, Any] | None = None
    command: RunCommand | None = None
    stream_mode: str | list[str] = "values"
    metadata: dict[str, Any] | None = None
    if_not_exists: Literal["reject", "create"] | None = None

    def modes(self) -> list[str]:
        """The stream modes asked for, as a list."""
        return [self.stream_mode] if isinstance(self.stream_mode, str) else list(self.stream_mode)


def portfolio_json(portfolio: Portfolio) -> dict[str, Any]:
    """The portfolio with its derived values (equity, unrealised P&L, ...)."""
    return {
        **portfolio.model_dump(mode="json"),
        "positions": positions_json(portfolio),
        "equity": str(portfolio.equity),
        "positions_value": str(portfolio.positions_value),
        "unrealized_pnl": str(portfolio.unrealized_pnl),
        "open_positions": portfolio.open_positions,
    }


def positions_json(portfolio: Portfolio) -> list[dict[str, Any]]:
    """Open positions with their mark, market value and unrealised P&L."""
    return [
        _position(p, portfolio.prices.get(p.symbol, p.avg_price))
        for p in portfolio.positions
        if p.quantity > 0
    ]


def _position(position: Position, price: Any) -> dict[str, Any]:
    return {
        **position.model_dump(mode="json"),
        "price": str(price),
        "market_value": str(position.market_value(price)),
        "unrealized_pnl": str(position.unrealized_pnl(price)),
    }

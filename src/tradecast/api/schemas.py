"""Request bodies, response bodies and JSON views of domain objects for the HTTP API.

Response models describe the JSON the routes build (they validate it, then FastAPI writes it
out): decimals and the instants the desk writes itself are strings there, passed through as
they are, and every key keeps its place and its nulls.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, create_model

from tradecast.api.runs import RunStatus
from tradecast.desk.status import DeskStatus
from tradecast.domain import Decision, Fill, Order, Portfolio, Position, StreamEvent
from tradecast.domain.viewers import MAX_ID_CHARS, MAX_NAME_CHARS, MAX_TEXT_CHARS
from tradecast.graphs.runner import TickResult
from tradecast.risk.exposure import Exposure
from tradecast.settings import RiskLimits

THREAD_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_:.\-]{0,99}$"


SQL_INT_MAX = 2**63 - 1
"""The largest integer SQLite and PostgreSQL's BIGINT hold: integer parameters stop here."""
MAX_METADATA_BYTES = 4096
"""The most JSON a thread's or a run's metadata may hold (it is stored with the thread)."""


def _small_metadata(value: dict[str, Any]) -> dict[str, Any]:
    try:
        text = json.dumps(value, default=str, allow_nan=False)
    except ValueError:
        raise ValueError("metadata holds a number JSON cannot (NaN or infinity)") from None
    size = len(text.encode())
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"metadata is {size} bytes of JSON; at most {MAX_METADATA_BYTES}")
    return value


Metadata = Annotated[dict[str, Any], AfterValidator(_small_metadata)]
"""Caller-supplied metadata, capped in size."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApprovalBody(_Body):
    """Approve or reject the order waiting under a decision id."""

    approved: StrictBool = Field(description="true: submit the order; false: drop it")


class KillSwitchBody(_Body):
    """Turn the kill switch on (no new orders at all) or off."""

    on: StrictBool


class ViewerChatBody(_Body):
    """A viewer's chat message handed in by hand (the local chat source)."""

    display_name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    viewer_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_CHARS)
    is_mod: StrictBool = False
    is_subscriber: StrictBool = False
    is_broadcaster: StrictBool = False


class ViewerChatVerdict(BaseModel):
    """What became of the message: ``queued`` (to be answered), ``command`` (a mod's, done)
    or ``rejected`` (neither answered nor shown; ``reason`` says why)."""

    id: str
    verdict: Literal["queued", "command", "rejected"]
    reason: str | None


class AudienceView(BaseModel):
    """The audience's counters since start, the questions waiting and the mods' settings."""

    received: int
    rejected: dict[str, int]
    commands: int
    queued: int
    skipped: dict[str, int]
    answered: int
    refused: int
    waiting: int
    muted: list[str]
    paused: bool
    sources: list[str]


class ChatBody(_Body):
    """One operator message."""

    message: str = Field(
        min_length=1,
        max_length=2000,
        description="a command ('pause', 'max position 5%', ...) or a question",
    )
    thread_id: str = Field(pattern=THREAD_ID_PATTERN, description="the conversation's id")


def _strict(annotation: Any) -> Any:
    """JSON booleans only: "yes", "off" or 0 must not turn a limit or the kill switch on or
    off (the limits' own bounds still apply, from the settings' field constraints)."""
    return StrictBool if annotation is bool else annotation


LimitsUpdate: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "LimitsUpdate",
    __config__=ConfigDict(extra="forbid"),
    __doc__="Risk limits to change; the ones left out stay as they are.",
    **{
        name: (_strict(field.annotation) | None, Field(default=None, description=field.description))
        for name, field in RiskLimits.model_fields.items()
    },
)


class ThreadCreate(BaseModel):
    """LangGraph's thread creation body (fields the desk does not use are ignored)."""

    model_config = ConfigDict(extra="ignore")

    thread_id: str | None = Field(default=None, pattern=THREAD_ID_PATTERN)
    metadata: Metadata = Field(default_factory=dict)
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
    metadata: Metadata | None = None
    if_not_exists: Literal["reject", "create"] | None = None

    def modes(self) -> list[str]:
        """The stream modes asked for, as a list."""
        return [self.stream_mode] if isinstance(self.stream_mode, str) else list(self.stream_mode)


# --- responses --------------------------------------------------------------------------


class ApiIndex(BaseModel):
    """Where things are (``GET /``)."""

    name: str
    version: str
    docs: str = Field(description="the interactive API docs")
    openapi: str = Field(description="this API's OpenAPI schema")
    overlay: str = Field(description="the stream overlay (pass a viewer key)")
    console: str = Field(description="the operator console (sign in with a key)")


class VoiceInfo(BaseModel):
    """Whether the persona speaks, and with what."""

    enabled: bool
    backend: Literal["piper", "http", "off"]
    name: str


class AvatarInfo(BaseModel):
    """The card's own sprites (file names), or None for the built-in drawn avatar."""

    sprites: list[str] | None


class PersonaInfo(BaseModel):
    """The persona as the overlay needs it."""

    name: str
    emotions: list[str]
    voice: VoiceInfo
    avatar: AvatarInfo


class Liveness(BaseModel):
    """The process answers; ``failed`` (503) when the desk could not open."""

    status: Literal["ok", "failed"]
    error: str | None = None


class TickAccepted(BaseModel):
    """A tick scheduled in the background (``POST /v1/desk/tick?wait=false``)."""

    accepted: Literal[True]
    status: DeskStatus = Field(description="the desk's status when the tick was scheduled")


class JournalEntry(BaseModel):
    """One control action."""

    seq: int = Field(description="its place in the journal (pass it as ``before`` to page on)")
    at: str = Field(description="when (ISO 8601)")
    actor: str = Field(description="who: the key's role and id, or the desk itself")
    action: str = Field(description="pause, resume, tick, approve, reject, set_limits, ...")
    detail: dict[str, Any] = Field(description="the action's arguments")
    outcome: str = Field(description="``ok``, a tick's status, or why it was refused or failed")


class JournalPage(BaseModel):
    """Control actions, newest first."""

    items: list[JournalEntry]
    next: int | None = Field(description="``before`` for the next page; null: no more")


class ApprovalItem(BaseModel):
    """An order waiting for a human."""

    decision_id: str
    thread_id: str | None = Field(description="the tick's thread; null if its report is gone")
    decision: Decision | None = Field(description="the decision the order carries out")
    request: dict[str, Any] | None = Field(
        description="what the approval asks: decision_id, intent (the order) and the gate's "
        "reasons; null when the tick's checkpoint no longer waits"
    )


class ApprovalList(BaseModel):
    """The orders waiting for a human."""

    items: list[ApprovalItem]


class PositionView(BaseModel):
    """An open position at its mark (decimals as strings)."""

    symbol: str
    quantity: str
    avg_price: str
    realized_pnl: str
    stop_loss: str | None
    take_profit: str | None
    time_stop_at: str | None = Field(
        default=None, description="when the broker closes it at the market (ISO 8601)"
    )
    opened_at: str | None = Field(description="when it was opened (ISO 8601)")
    price: str = Field(description="the mark: the latest price, or the average price")
    market_value: str = Field(description="quantity at the mark (negative for a short)")
    unrealized_pnl: str = Field(description="gain or loss at the mark, before fees")
    side: Literal["long", "short"] = Field(
        default="long", description="short only in a margin account"
    )
    liquidation_price: str | None = Field(
        default=None, description="a short's price at which the broker liquidates the shorts"
    )


class PositionList(BaseModel):
    """Open positions."""

    items: list[PositionView]


class ExposureOut(BaseModel):
    """The book's exposure against the portfolio limits (shares of equity, as strings)."""

    gross: str = Field(description="sum of |position value| / equity")
    net: str = Field(description="|longs - shorts| / equity")
    values: dict[str, str] = Field(description="signed position value per symbol")
    groups: list[list[str]] = Field(description="symbols whose daily returns move together")
    group_net: dict[str, str] = Field(description="|net value| of each group / equity")
    var: str | None = Field(
        description="95% one-day historical VaR / equity (None: too little history)"
    )
    cvar: str | None = Field(description="95% one-day historical CVaR / equity")
    days: int = Field(description="daily scenarios the VaR was computed from")
    limits: dict[str, str] = Field(description="the portfolio limits these are held to")


class PortfolioView(BaseModel):
    """The paper account at the latest marks (decimals as strings)."""

    cash: str
    quote_currency: str
    positions: list[PositionView] = Field(description="open positions")
    prices: dict[str, str] = Field(description="the latest mark of each symbol")
    realized_pnl: str
    fees_paid: str
    borrow_paid: str = Field(default="0", description="borrow fees paid on shorts (margin)")
    peak_equity: str | None
    day_start_equity: str | None
    timestamp: str | None = Field(description="when it was last marked (ISO 8601)")
    stop_outs: dict[str, str] = Field(
        description="when each symbol last hit its stop-loss (ISO 8601; cooldown)"
    )
    equity: str = Field(description="cash plus positions at market")
    positions_value: str = Field(description="positions at market")
    unrealized_pnl: str = Field(description="gain or loss of the open positions at market")
    open_positions: int
    symbols: list[str] = Field(default_factory=list, description="the symbols the desk decides")
    exposure: ExposureOut | None = Field(
        default=None, description="exposure and VaR (None when the bars cannot be read)"
    )


class OrderList(BaseModel):
    """Orders at the broker, newest first."""

    items: list[Order]


class FillList(BaseModel):
    """Fills, newest first."""

    items: list[Fill]


DecisionReport: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "DecisionReport",
    __doc__="One tick's report (the tick's ``TickResult``) under its decision id.",
    id=(str, Field(description="the decision id")),
    **{
        name: (field.annotation, Field(default=field.default, description=field.description))
        for name, field in TickResult.model_fields.items()
        if not field.exclude  # a portfolio tick's companions are reports of their own
    },
)


class DecisionRecord(DecisionReport):
    """One tick's report as the store keeps it."""

    recorded_at: str = Field(description="when the report was last recorded (ISO 8601)")


class DecisionPage(BaseModel):
    """Tick reports, newest first."""

    items: list[DecisionRecord]
    next: str | None = Field(description="``before`` for the next page; null: no more")


class ChannelEvents(BaseModel):
    """A channel's latest events, oldest first."""

    items: list[StreamEvent]
    last_id: str | None = Field(description="the id to stream on from (null: none yet)")


class PersonaSnapshot(BaseModel):
    """What the persona said last."""

    sentences: list[dict[str, Any]] = Field(description="its last sentence events' data")
    emotion: str | None = Field(description="the emotion of the last sentence")


class Snapshot(BaseModel):
    """Everything a screen needs to redraw."""

    status: DeskStatus
    portfolio: PortfolioView
    decision: DecisionRecord | None = Field(description="the latest tick report")
    persona: PersonaSnapshot
    last_ids: dict[str, str | None] = Field(
        description="each channel's last event id, to stream on from"
    )


class ThreadInterrupt(BaseModel):
    """A question a run waits on (LangGraph's ``Interrupt``)."""

    id: str
    value: Any = Field(description="for an approval: decision_id, intent and reasons")


class ThreadView(BaseModel):
    """A thread (LangGraph's ``Thread``)."""

    thread_id: str
    created_at: str | None = Field(description="ISO 8601; null for the desk thread")
    updated_at: str | None
    metadata: dict[str, Any]
    status: Literal["idle", "busy", "interrupted"]
    values: dict[str, Any] = Field(
        description="the latest state: a tick report (desk and tick threads) or a chat reply"
    )
    interrupts: dict[str, list[ThreadInterrupt]] = Field(
        description="what it waits on, by decision id (desk) or thread id (tick threads)"
    )


class RunView(BaseModel):
    """A run (LangGraph's ``Run``)."""

    run_id: str
    thread_id: str
    assistant_id: str
    created_at: str = Field(description="ISO 8601")
    updated_at: str = Field(description="ISO 8601")
    status: RunStatus
    metadata: dict[str, Any]
    multitask_strategy: Literal["enqueue"]


# --- JSON views -------------------------------------------------------------------------


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


PORTFOLIO_LIMITS = (
    "max_position_pct",
    "max_gross_exposure_pct",
    "max_net_exposure_pct",
    "max_correlated_exposure_pct",
    "correlation_threshold",
    "max_var_pct",
    "max_cvar_pct",
    "risk_window_days",
)


def exposure_json(exposure: Exposure, limits: RiskLimits) -> dict[str, Any]:
    """The book's exposure with the limits it is held to."""
    return {
        "gross": str(exposure.gross),
        "net": str(exposure.net),
        "values": {s: str(v) for s, v in exposure.values.items()},
        "groups": [list(g) for g in exposure.groups],
        "group_net": {g: str(v) for g, v in exposure.group_net.items()},
        "var": None if exposure.var is None else str(exposure.var),
        "cvar": None if exposure.cvar is None else str(exposure.cvar),
        "days": exposure.days,
        "limits": {name: str(getattr(limits, name)) for name in PORTFOLIO_LIMITS},
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

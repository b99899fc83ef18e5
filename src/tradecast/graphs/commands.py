"""Operator commands recognised in chat messages, by a fixed grammar.

Recognition is deliberately not left to the LLM: a message is a command only when the whole
message is one (``pause``, ``approve BTCUSDT-20210105T1200``, ``max position 5%``...), so no
phrasing, role play or injected instruction can turn a question into an action. Everything
else is a question, answered in the persona's voice, which can change nothing.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from tradecast.graphs.controls import Role

CommandName = Literal[
    "pause",
    "resume",
    "status",
    "tick",
    "approve",
    "reject",
    "set_limit",
    "confirm",
    "kill_switch",
    "ask",
]

NEEDED_ROLE: dict[CommandName, Role] = {
    "ask": "viewer",
    "status": "viewer",
    "pause": "operator",
    "resume": "operator",
    "tick": "operator",
    "approve": "operator",
    "reject": "operator",
    "set_limit": "operator",
    "confirm": "operator",
    "kill_switch": "admin",
}

_POLITE = r"(?:please\s+)?"
_END = r"\s*(?:please)?\s*[.!]*\s*"
_ID = r"(?P<id>[A-Za-z0-9][\w:./-]{0,80})"

_SIMPLE_PATTERNS: tuple[tuple[CommandName, str], ...] = (
    ("pause", r"(?:pause|stop trading|halt(?: trading)?)(?: the desk)?"),
    ("resume", r"(?:resume|unpause|continue|start trading)(?: the desk| trading)?"),
    ("status", r"(?:status|how are (?:we|you) doing\??)"),
    ("tick", r"(?:force a tick|tick now|tick|run a tick(?: now)?|decide now)"),
    ("approve", r"(?:approve|accept)(?: order| decision)?\s+" + _ID),
    ("reject", r"(?:reject|deny|decline)(?: order| decision)?\s+" + _ID),
    ("kill_switch", r"kill[- ]?switch\s+(?P<state>on|off)"),
    ("confirm", r"confirm\s+(?P<token>[0-9a-f]{8})"),
)
SIMPLE: tuple[tuple[CommandName, re.Pattern[str]], ...] = tuple(
    (name, re.compile(_POLITE + pattern + _END, re.IGNORECASE))
    for name, pattern in _SIMPLE_PATTERNS
)

LIMIT_NAMES: dict[str, str] = {
    "max position": "max_position_pct",
    "position limit": "max_position_pct",
    "max order": "max_order_notional",
    "max order notional": "max_order_notional",
    "max notional": "max_order_notional",
    "max open positions": "max_open_positions",
    "daily loss": "daily_loss_limit_pct",
    "daily loss limit": "daily_loss_limit_pct",
    "max drawdown": "max_drawdown_pct",
    "drawdown": "max_drawdown_pct",
    "cooldown": "cooldown_minutes",
    "gross exposure": "max_gross_exposure_pct",
    "max gross exposure": "max_gross_exposure_pct",
    "net exposure": "max_net_exposure_pct",
    "max net exposure": "max_net_exposure_pct",
    "correlated exposure": "max_correlated_exposure_pct",
    "max var": "max_var_pct",
    "var limit": "max_var_pct",
    "max cvar": "max_cvar_pct",
    "cvar limit": "max_cvar_pct",
}
PERCENT_LIMITS = {
    "max_position_pct",
    "daily_loss_limit_pct",
    "max_drawdown_pct",
    "max_gross_exposure_pct",
    "max_net_exposure_pct",
    "max_correlated_exposure_pct",
    "max_var_pct",
    "max_cvar_pct",
}
PERCENT_UNITS = {"%", "percent", "pct"}
SET_LIMIT = re.compile(
    _POLITE
    + r"(?:set\s+)?(?:the\s+)?(?P<name>"
    + "|".join(sorted(LIMIT_NAMES, key=len, reverse=True))
    + r")\s*(?:to|=|:|at)?\s*(?P<value>-?[\d.,]+)\s*(?P<unit>%|percent|pct|usdt|minutes|mins?)?"
    + _END,
    re.IGNORECASE,
)


class Command(BaseModel):
    """A recognised operator command, or ``ask`` for anything else."""

    model_config = ConfigDict(frozen=True)

    name: CommandName
    args: dict[str, Any] = {}
    error: str | None = None

    @property
    def needed_role(self) -> Role:
        """The least role that may run it."""
        return NEEDED_ROLE[self.name]


def parse_command(message: str) -> Command:
    """The command the whole message is, or ``ask``."""
    text = " ".join(message.split())
    for name, pattern in SIMPLE:
        match = pattern.fullmatch(text)
        if match:
            return Command(name=name, args=_simple_args(name, match))
    match = SET_LIMIT.fullmatch(text)
    if match:
        return _limit_command(match)
    return Command(name="ask", args={"question": message.strip()})


def _simple_args(name: CommandName, match: re.Match[str]) -> dict[str, Any]:
    if name in ("approve", "reject"):
        return {"decision_id": match.group("id")}
    if name == "kill_switch":
        return {"on": match.group("state").lower() == "on"}
    if name == "confirm":
        return {"token": match.group("token")}
    return {}


def _limit_command(match: re.Match[str]) -> Command:
    field = LIMIT_NAMES[match.group("name").lower()]
    raw = match.group("value").replace(",", "")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return Command(name="set_limit", args={"field": field}, error=f"{raw!r} is not a number")
    if field in PERCENT_LIMITS:
        # A bare number is ambiguous ("max position 1": 1% or 100%?), so it is refused.
        if (match.group("unit") or "").lower() not in PERCENT_UNITS:
            return Command(
                name="set_limit",
                args={"field": field},
                error=f"write {field} as a percentage, e.g. '{match.group('name')} {raw}%'",
            )
        value = value / 100
    if field in ("max_open_positions", "cooldown_minutes"):
        if value != value.to_integral_value():
            return Command(
                name="set_limit", args={"field": field}, error=f"{field} must be a whole number"
            )
        return Command(name="set_limit", args={"field": field, "value": int(value)})
    return Command(name="set_limit", args={"field": field, "value": value})


def loosens(field: str, current: Any, proposed: Any) -> bool:
    """Whether changing ``field`` from ``current`` to ``proposed`` takes more risk."""
    if field == "cooldown_minutes":
        return proposed < current
    return proposed > current

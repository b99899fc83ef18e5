"""Shared base for domain types: frozen, strict about unknown fields, Decimal-friendly."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


class DomainModel(BaseModel):
    """A frozen value object; unknown fields are errors, not silently dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="strings")


def _finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite number (not NaN or infinity)")
    return value


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must be timezone-aware (UTC)")
    return value.astimezone(UTC)


Money = Annotated[Decimal, AfterValidator(_finite)]
"""Any finite amount of money (P&L may be negative)."""
Price = Annotated[Decimal, AfterValidator(_finite), AfterValidator(_positive)]
"""A strictly positive, finite price."""
Quantity = Annotated[Decimal, AfterValidator(_finite), AfterValidator(_non_negative)]
"""A finite, non-negative quantity of the base asset."""
PositiveQuantity = Annotated[Decimal, AfterValidator(_finite), AfterValidator(_positive)]
"""A finite quantity strictly above zero (what an order may ask for)."""
UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
"""A timezone-aware instant, normalised to UTC."""


def utc_now() -> datetime:
    """The current instant in UTC (wall clock; the desk injects its own clock)."""
    return datetime.now(UTC)


def parse_symbol(symbol: str) -> tuple[str, str]:
    """Split 'BASE/QUOTE' into its parts, raising ValueError on anything else."""
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote or "/" in quote or not symbol.isascii():
        raise ValueError(f"symbol {symbol!r} must look like BASE/QUOTE, e.g. BTC/USDT")
    return base.upper(), quote.upper()


def canonical_symbol(value: str) -> str:
    """'btc/usdt ' -> 'BTC/USDT'; ValueError (from :func:`parse_symbol`) on anything else."""
    base, quote = parse_symbol(value.strip())
    return f"{base}/{quote}"


Symbol = Annotated[str, AfterValidator(canonical_symbol)]
"""A market symbol, normalised to upper-case 'BASE/QUOTE'."""


_DURATION = re.compile(r"^([1-9][0-9]{0,4})([mhdw])$")
_DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str, what: str = "duration") -> timedelta:
    """'15m', '1h', '24h', '7d', '2w' as a timedelta; ValueError naming ``what`` otherwise."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"{what} {text!r} must be a positive count and a unit m/h/d/w, e.g. '1h' or '7d'"
        )
    return timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})

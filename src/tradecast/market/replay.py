"""Replay market: historical OHLCV candles from CSV files, served up to an injected clock.

The embedded default market. It ships the real Binance hourly candles bundled in
``tradecast/data/ohlcv/`` (BTC/USDT, ETH/BUSD) and reads any CSV with the same columns:
``timestamp`` (ISO-8601 UTC bar open time; a time without offset is read as UTC), ``open``,
``high``, ``low``, ``close``, ``volume``.

Time semantics (no look-ahead): ``until``/``at`` are inclusive upper bounds on a bar's *open*
time; a bar that opened after them is never returned. ``None`` means "now" from the injected
``clock``; without a clock, "now" is the symbol's last bar (the end of the replay). A caller
that must not see a bar's close before the bar ends (the eval harness) asks for
``until = decision_time - bar interval``.

Missing bars (exchange maintenance windows) are reported by :meth:`ReplayMarket.gaps` and a log
line at load; they are never filled in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
from pydantic import ValidationError

from tradecast.domain import Candle, OrderBook, Ticker, canonical_symbol
from tradecast.errors import MarketDataError
from tradecast.logs import get_logger

log = get_logger(__name__)

OHLCV_COLUMNS: tuple[str, ...] = ("timestamp", "open", "high", "low", "close", "volume")
VALUE_COLUMNS: tuple[str, ...] = OHLCV_COLUMNS[1:]
_BUNDLED_NAME = re.compile(r"^(?P<base>[A-Za-z0-9]+)-(?P<quote>[A-Za-z0-9]+)-(?P<tf>\w+)\.csv$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_LINES_SHOWN = 5

Clock = Callable[[], datetime]


def normalize_symbol(symbol: str) -> str:
    """'btc/usdt' -> 'BTC/USDT'; a MarketDataError for anything not shaped BASE/QUOTE."""
    try:
        return canonical_symbol(symbol)
    except ValueError as exc:
        raise MarketDataError(str(exc)) from None


def to_epoch_ns(moment: datetime, what: str = "time") -> int:
    """Nanoseconds since the epoch of a timezone-aware datetime (exact, no float rounding)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise MarketDataError(f"{what} {moment.isoformat()} must be timezone-aware (UTC)")
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def from_epoch_ns(ns: int) -> datetime:
    """The UTC datetime of an epoch-nanosecond stamp (microsecond precision)."""
    return _EPOCH + timedelta(microseconds=int(ns) // 1000)


def _line_numbers(mask: pd.Series) -> str:
    # +2: CSV line numbers are 1-based and the header is line 1.
    lines = [str(i + 2) for i in np.flatnonzero(mask.to_numpy())[:_MAX_LINES_SHOWN]]
    more = int(mask.sum()) - len(lines)
    return ", ".join(lines) + (f" and {more} more" if more > 0 else "")


def read_ohlcv_csv(source: str | Path | IO[str] | IO[bytes], name: str) -> pd.DataFrame:
    """Read and validate one OHLCV CSV into a float frame indexed by UTC bar open time.

    Raises MarketDataError naming ``name`` and the missing columns or the bad lines.
    """
    try:
        raw = pd.read_csv(source)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise MarketDataError(f"{name}: cannot read it as CSV ({exc})") from None
    missing = [column for column in OHLCV_COLUMNS if column not in raw.columns]
    if missing:
        raise MarketDataError(
            f"{name}: missing column(s) {', '.join(missing)}; "
            f"need {', '.join(OHLCV_COLUMNS)} (found {', '.join(map(str, raw.columns))})"
        )
    if raw.empty:
        raise MarketDataError(f"{name}: has a header but no rows")
    timestamps = pd.to_datetime(raw["timestamp"], utc=True, format="ISO8601", errors="coerce")
    values = raw[list(VALUE_COLUMNS)].apply(pd.to_numeric, errors="coerce").astype("float64")
    _reject_bad_rows(name, timestamps, values)
    frame = values.set_axis(pd.DatetimeIndex(timestamps, name="timestamp"), axis=0)
    frame.index = frame.index.as_unit("ns")
    return frame.sort_index(kind="stable")


def _reject_bad_rows(name: str, timestamps: pd.Series, values: pd.DataFrame) -> None:
    bad_time = timestamps.isna()
    if bad_time.any():
        raise MarketDataError(
            f"{name}: unreadable timestamp on line(s) {_line_numbers(bad_time)}; "
            "use ISO-8601 UTC, e.g. 2021-01-01T00:00:00Z"
        )
    finite = np.isfinite(values.to_numpy()).all(axis=1)
    not_number = pd.Series(~finite, index=values.index)
    if not_number.any():
        raise MarketDataError(
            f"{name}: missing or non-numeric value on line(s) {_line_numbers(not_number)}"
        )
    o, h, lo, c, v = (values[column] for column in VALUE_COLUMNS)
    bad_price = (values[["open", "high", "low", "close"]] <= 0).any(axis=1) | (v < 0)
    if bad_price.any():
        raise MarketDataError(
            f"{name}: prices must be > 0 and volume >= 0; bad line(s) {_line_numbers(bad_price)}"
        )
    bad_range = (lo > np.minimum(o, c)) | (h < np.maximum(o, c))
    if bad_range.any():
        raise MarketDataError(
            f"{name}: low/high must bracket open and close; bad line(s) {_line_numbers(bad_range)}"
        )
    duplicated = timestamps.duplicated(keep=False)
    if duplicated.any():
        raise MarketDataError(
            f"{name}: the same bar time appears twice on line(s) {_line_numbers(duplicated)}"
        )


def bundled_csv_files() -> dict[str, Traversable]:
    """The CSVs shipped as package data, by symbol ('BTC-USDT-1h.csv' -> 'BTC/USDT')."""
    folder = resources.files("tradecast").joinpath("data", "ohlcv")
    found: dict[str, Traversable] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        match = _BUNDLED_NAME.match(entry.name)
        if match:
            found[f"{match['base'].upper()}/{match['quote'].upper()}"] = entry
    return found


def _bar_interval(index_ns: np.ndarray) -> int | None:
    """The most common spacing between bars, in ns (None with fewer than 2 bars)."""
    if len(index_ns) < 2:
        return None
    steps, counts = np.unique(np.diff(index_ns), return_counts=True)
    return int(steps[np.argmax(counts)])


def _missing_bars(index_ns: np.ndarray, step: int | None) -> np.ndarray:
    if step is None:
        return np.empty(0, dtype=np.int64)
    expected = np.arange(index_ns[0], index_ns[-1] + 1, step, dtype=np.int64)
    return np.setdiff1d(expected, index_ns, assume_unique=True)


@dataclass
class _Series:
    """One symbol's bars: the float frame plus lazily built Candle objects."""

    symbol: str
    frame: pd.DataFrame
    source: str
    index_ns: np.ndarray = field(init=False)
    values: np.ndarray = field(init=False)
    interval_ns: int | None = field(init=False)
    missing_ns: np.ndarray = field(init=False)
    candles: list[Candle | None] = field(init=False)
    built: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.index_ns = self.frame.index.as_unit("ns").asi8
        self.values = self.frame[list(VALUE_COLUMNS)].to_numpy(dtype="float64")
        self.interval_ns = _bar_interval(self.index_ns)
        self.missing_ns = _missing_bars(self.index_ns, self.interval_ns)
        self.candles = [None] * len(self.index_ns)
        self.built = np.zeros(len(self.index_ns), dtype=bool)

    def end(self, until_ns: int | None) -> int:
        """Position just past the last bar that opened at or before ``until_ns``."""
        if until_ns is None:
            return len(self.index_ns)
        return int(np.searchsorted(self.index_ns, until_ns, side="right"))

    def window(self, start: int, stop: int) -> list[Candle]:
        if not self.built[start:stop].all():
            for i in np.flatnonzero(~self.built[start:stop]) + start:
                self.candles[i] = self._candle(int(i))
            self.built[start:stop] = True
        return self.candles[start:stop]  # type: ignore[return-value]

    def _candle(self, i: int) -> Candle:
        o, h, lo, c, v = (Decimal(repr(float(x))) for x in self.values[i])
        try:
            return Candle(
                timestamp=from_epoch_ns(self.index_ns[i]),
                open=o,
                high=h,
                low=lo,
                close=c,
                volume=v,
            )
        except ValidationError as exc:  # pragma: no cover - rows were validated at load
            raise MarketDataError(f"{self.source}: bad bar {i}: {exc}") from None


class ReplayMarket:
    """Historical candles from CSV files behind the MarketData interface.

    ``csv_paths`` maps extra symbols to CSV files (they override a bundled symbol of the same
    name); ``include_bundled`` adds the package's own Binance hourly data; ``clock`` says what
    "now" is when a caller passes no time (default: each symbol's last bar).
    """

    def __init__(
        self,
        csv_paths: Mapping[str, str | Path] | None = None,
        *,
        include_bundled: bool = True,
        clock: Clock | None = None,
    ) -> None:
        sources: dict[str, tuple[str, Path | Traversable]] = {}
        if include_bundled:
            for symbol, entry in bundled_csv_files().items():
                sources[symbol] = (f"bundled {entry.name}", entry)
        for symbol, path in (csv_paths or {}).items():
            sources[normalize_symbol(symbol)] = (str(path), Path(path))
        frames = {symbol: _load(name, where) for symbol, (name, where) in sources.items()}
        self._init(frames, {symbol: name for symbol, (name, _) in sources.items()}, clock)

    @classmethod
    def from_frames(
        cls, frames: Mapping[str, pd.DataFrame], *, clock: Clock | None = None
    ) -> ReplayMarket:
        """A replay over in-memory frames (columns open..volume, UTC DatetimeIndex)."""
        market = cls.__new__(cls)
        checked = {normalize_symbol(s): _check_frame(s, f) for s, f in frames.items()}
        market._init(checked, {s: f"frame {s}" for s in checked}, clock)
        return market

    def _init(
        self, frames: Mapping[str, pd.DataFrame], names: Mapping[str, str], clock: Clock | None
    ) -> None:
        self._clock = clock
        self._series = {s: _Series(s, frames[s], names[s]) for s in sorted(frames)}
        for series in self._series.values():
            _log_loaded(series)

    # --- MarketData -------------------------------------------------------------------

    async def symbols(self) -> Sequence[str]:
        """Symbols this replay can serve, as 'BASE/QUOTE', sorted."""
        return list(self._series)

    async def candles(
        self, symbol: str, until: datetime | None = None, limit: int = 200
    ) -> Sequence[Candle]:
        """The last ``limit`` bars that opened at or before ``until`` (None: now), oldest first.

        Empty when ``until`` is before the first bar. Gaps are skipped, never filled.
        """
        if limit < 1:
            raise MarketDataError(f"limit must be at least 1 (got {limit})")
        series = self._get(symbol)
        stop = series.end(self._until_ns(until))
        return series.window(max(0, stop - limit), stop)

    async def ticker(self, symbol: str, at: datetime | None = None) -> Ticker:
        """Close of the last bar that opened at or before ``at``; bid/ask unknown (None).

        The ticker's timestamp is that bar's open time.
        """
        series = self._get(symbol)
        stop = series.end(self._until_ns(at))
        if stop == 0:
            raise MarketDataError(
                f"no {series.symbol} bar at or before {at.isoformat() if at else 'now'}; "
                f"the replay starts at {from_epoch_ns(series.index_ns[0]).isoformat()}"
            )
        (bar,) = series.window(stop - 1, stop)
        return Ticker(symbol=series.symbol, timestamp=bar.timestamp, last=bar.close)

    async def order_book(self, symbol: str, at: datetime | None = None) -> OrderBook | None:
        """Always None: candles carry no order book (the symbol is still checked)."""
        self._get(symbol)
        return None

    async def aclose(self) -> None:
        """Nothing to release; present so callers can close any MarketData alike."""

    async def __aenter__(self) -> ReplayMarket:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- replay extras (vectorised paths for evals and benches) -----------------------

    def frame(self, symbol: str, until: datetime | None = None) -> pd.DataFrame:
        """The bars as a float frame (UTC DatetimeIndex of open times), up to ``until``.

        Copy-on-write (pandas 3): editing the result never changes the replay.
        """
        series = self._get(symbol)
        return series.frame.iloc[: series.end(self._until_ns(until))]

    def gaps(self, symbol: str) -> tuple[datetime, ...]:
        """Open times of the bars missing between the first and last bar of ``symbol``."""
        return tuple(from_epoch_ns(ns) for ns in self._get(symbol).missing_ns)

    def interval(self, symbol: str) -> timedelta | None:
        """The bar interval (most common spacing), None for a single bar."""
        step = self._get(symbol).interval_ns
        return None if step is None else timedelta(microseconds=step // 1000)

    def span(self, symbol: str) -> tuple[datetime, datetime]:
        """Open times of the first and the last bar."""
        index = self._get(symbol).index_ns
        return from_epoch_ns(index[0]), from_epoch_ns(index[-1])

    # --- helpers ------------------------------------------------------------------------

    def _get(self, symbol: str) -> _Series:
        key = normalize_symbol(symbol)
        series = self._series.get(key)
        if series is None:
            known = ", ".join(self._series) or "none"
            raise MarketDataError(
                f"unknown symbol {symbol!r} for the replay market; known: {known}"
            )
        return series

    def _until_ns(self, until: datetime | None) -> int | None:
        if until is None:
            if self._clock is None:
                return None
            until = self._clock()
        return to_epoch_ns(until, "until")


def _load(name: str, where: Path | Traversable) -> pd.DataFrame:
    if isinstance(where, Path):
        if not where.is_file():
            raise MarketDataError(f"{name}: no such CSV file")
        return read_ohlcv_csv(where, name)
    with where.open("rb") as handle:
        return read_ohlcv_csv(handle, name)


def _check_frame(symbol: str, frame: pd.DataFrame) -> pd.DataFrame:
    name = f"frame {symbol}"
    missing = [column for column in VALUE_COLUMNS if column not in frame.columns]
    if missing:
        raise MarketDataError(f"{name}: missing column(s) {', '.join(missing)}")
    if not isinstance(frame.index, pd.DatetimeIndex) or frame.index.tz is None:
        raise MarketDataError(f"{name}: index must be a timezone-aware DatetimeIndex")
    if frame.empty:
        raise MarketDataError(f"{name}: has no rows")
    values = frame[list(VALUE_COLUMNS)].astype("float64").reset_index(drop=True)
    timestamps = pd.Series(frame.index.tz_convert(UTC))
    _reject_bad_rows(name, timestamps, values)
    checked = values.set_axis(pd.DatetimeIndex(timestamps, name="timestamp").as_unit("ns"))
    return checked.sort_index(kind="stable")


def _gap_runs(missing_ns: np.ndarray, step: int | None) -> Iterable[tuple[datetime, int]]:
    """Consecutive missing bars grouped as (first missing bar, how many)."""
    if step is None or len(missing_ns) == 0:
        return []
    breaks = np.flatnonzero(np.diff(missing_ns) != step) + 1
    return [(from_epoch_ns(run[0]), len(run)) for run in np.split(missing_ns, breaks)]


def _log_loaded(series: _Series) -> None:
    first, last = series.index_ns[0], series.index_ns[-1]
    runs = list(_gap_runs(series.missing_ns, series.interval_ns))
    log.info(
        "replay.loaded",
        symbol=series.symbol,
        source=series.source,
        bars=len(series.index_ns),
        first=from_epoch_ns(first).isoformat(),
        last=from_epoch_ns(last).isoformat(),
        gaps=len(runs),
        missing_bars=len(series.missing_ns),
        gap_runs=[f"{start.isoformat()} x{count}" for start, count in runs[:_MAX_LINES_SHOWN]],
    )

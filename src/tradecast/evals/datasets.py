"""What an eval replays: a bundled candle file by name, or any CSV with the same columns.

Bundled names are the package's files in lower case without ``.csv`` (``BTC-USDT-1h.csv`` is
``btc-usdt-1h``). A CSV path must have the columns ``timestamp, open, high, low, close,
volume`` (see :mod:`tradecast.market.replay`); its symbol comes from a file name shaped like
the bundled ones (``SOL-USDT-1h.csv``) or must be given.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from tradecast.errors import MarketDataError, TradecastError
from tradecast.market.replay import bundled_csv_files, normalize_symbol, read_ohlcv_csv
from tradecast.settings import MarketConfig

_PAIR_FILE = re.compile(r"^(?P<base>[A-Za-z0-9]+)-(?P<quote>[A-Za-z0-9]+)(?:-\w+)?$")
MIN_BARS_BEFORE_START = 2
"""The desk refuses to decide on fewer closed bars (``gather_context``)."""


class DatasetError(TradecastError):
    """The dataset or the window asked for cannot be evaluated; the message says why."""


@dataclass(frozen=True)
class Dataset:
    """One symbol's candles, validated, with what a manifest needs to pin them down."""

    name: str
    symbol: str
    source: str
    """'bundled:BTC-USDT-1h.csv' or the absolute path of the CSV."""
    csv_path: Path | None
    """The CSV the replay market reads (None: the bundled file of ``symbol``)."""
    sha256: str
    frame: pd.DataFrame = field(repr=False, compare=False)

    @property
    def interval(self) -> timedelta:
        """The bar length (the most common spacing of the bars)."""
        steps = self.frame.index.to_series().diff().dropna()
        if steps.empty:
            raise DatasetError(f"{self.name}: a dataset needs at least 2 bars")
        return pd.Timedelta(steps.mode().iloc[0]).to_pytimedelta()

    @property
    def timeframe(self) -> str:
        """The bar length as the settings spell it ('1h', '15m', '1d')."""
        return timeframe_of(self.interval)

    @property
    def first_bar(self) -> datetime:
        """Open time of the first bar."""
        return self.frame.index[0].to_pydatetime()

    @property
    def last_close(self) -> datetime:
        """The instant the last bar closed."""
        return self.frame.index[-1].to_pydatetime() + self.interval

    def market_config(self, base: MarketConfig) -> MarketConfig:
        """``base`` replaying this dataset: its bar length, and its CSV for its symbol."""
        paths = dict(base.csv_paths)
        if self.csv_path is not None:
            paths[self.symbol] = self.csv_path
        return MarketConfig.model_validate(
            {
                **base.model_dump(),
                "source": "replay",
                "timeframe": self.timeframe,
                "csv_paths": paths,
            }
        )

    def describe(self) -> dict[str, object]:
        """The dataset as the manifest and the report record it."""
        return {
            "name": self.name,
            "symbol": self.symbol,
            "source": self.source,
            "sha256": self.sha256,
            "bars": len(self.frame),
            "timeframe": self.timeframe,
            "first_bar": self.first_bar.isoformat(),
            "last_close": self.last_close.isoformat(),
        }


def timeframe_of(interval: timedelta) -> str:
    """'1h' for one hour; whole days, hours or minutes only."""
    minutes, rest = divmod(interval, timedelta(minutes=1))
    if rest or minutes < 1:
        raise DatasetError(f"bar length {interval} is not a whole number of minutes")
    for unit, size in (("d", 1440), ("h", 60), ("m", 1)):
        if minutes % size == 0:
            return f"{minutes // size}{unit}"
    raise AssertionError("unreachable: every minute count divides by 1")


def bundled_datasets() -> dict[str, str]:
    """Bundled dataset names and the file each one is ('btc-usdt-1h': 'BTC-USDT-1h.csv')."""
    return {
        entry.name.removesuffix(".csv").lower(): entry.name
        for entry in bundled_csv_files().values()
    }


def resolve_dataset(spec: str, symbol: str | None = None) -> Dataset:
    """The dataset a ``--dataset`` value names: a bundled name or a CSV path.

    Raises :class:`DatasetError` for an unknown name, an unreadable or malformed CSV (the
    message names the missing columns or bad lines), or a CSV whose symbol cannot be told.
    """
    key = spec.strip().lower()
    bundled = {
        entry.name.removesuffix(".csv").lower(): (sym, entry)
        for sym, entry in bundled_csv_files().items()
    }
    if key in bundled:
        bundled_symbol, entry = bundled[key]
        if symbol is not None and normalize_symbol(symbol) != bundled_symbol:
            raise DatasetError(f"dataset {key} is {bundled_symbol}, not {symbol}")
        data = entry.read_bytes()
        return _dataset(key, bundled_symbol, f"bundled:{entry.name}", None, data)
    path = Path(spec).expanduser()
    if not path.is_file():
        known = ", ".join(sorted(bundled))
        if path.suffix.lower() != ".csv" and "/" not in spec:
            raise DatasetError(f"unknown dataset {spec!r}; bundled: {known}; or give a CSV path")
        raise DatasetError(f"dataset file {spec} does not exist (bundled names: {known})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    return _dataset(path.name, _csv_symbol(path, symbol), str(path.resolve()), path.resolve(), data)


def _csv_symbol(path: Path, symbol: str | None) -> str:
    if symbol is not None:
        try:
            return normalize_symbol(symbol)
        except MarketDataError as exc:
            raise DatasetError(f"--symbol: {exc}") from None
    match = _PAIR_FILE.match(path.stem)
    if match is None:
        raise DatasetError(
            f"cannot tell the symbol of {path.name}: name the file like BASE-QUOTE-1h.csv "
            "or pass --symbol BASE/QUOTE"
        )
    return f"{match['base'].upper()}/{match['quote'].upper()}"


def _dataset(name: str, symbol: str, source: str, path: Path | None, data: bytes) -> Dataset:
    try:
        frame = read_ohlcv_csv(io.BytesIO(data), name)
    except MarketDataError as exc:
        raise DatasetError(str(exc)) from None
    if len(frame) < MIN_BARS_BEFORE_START + 1:
        raise DatasetError(f"{name}: has {len(frame)} bars; an eval needs at least 3")
    dataset = Dataset(
        name=name,
        symbol=symbol,
        source=source,
        csv_path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        frame=frame,
    )
    dataset.timeframe  # noqa: B018 - fail now on a bar length the desk cannot use
    return dataset


def decision_times(
    dataset: Dataset, start: datetime, end: datetime, every: timedelta
) -> list[datetime]:
    """The instants the desk decides at: ``start``, ``start + every``, ... up to ``end``.

    Raises :class:`DatasetError` when the window is empty, reversed or outside the data.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise DatasetError("--start and --end must be timezone-aware (UTC)")
    if every <= timedelta(0):
        raise DatasetError("--every must be a positive duration, e.g. 4h")
    if end < start:
        raise DatasetError(f"--end {end.isoformat()} is before --start {start.isoformat()}")
    earliest = dataset.first_bar + MIN_BARS_BEFORE_START * dataset.interval
    if start < earliest:
        raise DatasetError(
            f"--start {start.isoformat()} is too early: {dataset.name} begins at "
            f"{dataset.first_bar.isoformat()} and the desk needs {MIN_BARS_BEFORE_START} closed "
            f"bars, so start at {earliest.isoformat()} or later"
        )
    if end > dataset.last_close:
        raise DatasetError(
            f"--end {end.isoformat()} is after the data: the last {dataset.name} bar closes "
            f"at {dataset.last_close.isoformat()}"
        )
    count = (end - start) // every + 1
    return [start + i * every for i in range(count)]

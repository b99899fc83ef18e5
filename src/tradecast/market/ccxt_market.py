"""Live market data from any exchange ccxt supports (``ccxt.async_support``), rate limits on.

Network failures (``ccxt.NetworkError``: timeouts, rate limits, exchange unavailable) are
retried with bounded exponential backoff; every ccxt error that remains becomes a
:class:`~tradecast.errors.MarketDataError` whose message says what to do. ``until`` is honoured
by asking for the window of bars that opened before it and dropping any bar after it. The
exchange session is always closed: use ``async with CcxtMarket(...)`` or ``await aclose()``.

Live candles include the bar still forming (it opened before "now"); its close is the latest
trade price, not a final close.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import ccxt
import ccxt.async_support as ccxt_async
from pydantic import ValidationError

from tradecast.domain import Candle, OrderBook, OrderBookLevel, Ticker, utc_now
from tradecast.errors import MarketDataError
from tradecast.logs import get_logger
from tradecast.market.replay import Clock, from_epoch_ns, normalize_symbol, to_epoch_ns

log = get_logger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
_MAX_PAGES = 20
_SLACK_BARS = 24  # extra bar intervals asked for, to see past short exchange gaps


def _decimal(value: Any, what: str) -> Decimal:
    if value is None:
        raise MarketDataError(f"the exchange sent no {what}")
    # via str: ccxt hands back floats, and Decimal(float) would keep binary noise
    return Decimal(str(value))


def _price_or_none(value: Any) -> Decimal | None:
    if value is None:
        return None
    price = Decimal(str(value))
    return price if price.is_finite() and price > 0 else None


def _ms_to_datetime(ms: int | float) -> datetime:
    return from_epoch_ns(int(ms) * 1_000_000)


class CcxtMarket:
    """MarketData over a ccxt exchange (``exchange_id`` as in ``ccxt.exchanges``).

    ``config`` is merged into the ccxt constructor arguments (API keys, ``options``, ...);
    ``exchange`` injects a ready-made ccxt async exchange instead. ``clock`` is "now" when a
    caller passes no time; ``max_retries`` and ``backoff_s`` bound the retries on network
    errors (delays ``backoff_s * 2**n``); ``sleep`` is injectable for tests.
    """

    def __init__(
        self,
        exchange_id: str = "binance",
        timeframe: str = "1h",
        *,
        config: Mapping[str, Any] | None = None,
        exchange: ccxt_async.Exchange | None = None,
        clock: Clock = utc_now,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        order_book_depth: int = 20,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if max_retries < 0 or backoff_s < 0:
            raise MarketDataError("max_retries and backoff_s must be >= 0")
        self._exchange = exchange or _create_exchange(exchange_id, config or {})
        self._id: str = self._exchange.id
        self._timeframe = timeframe
        timeframes = getattr(self._exchange, "timeframes", None) or {}
        if timeframes and timeframe not in timeframes:
            raise MarketDataError(
                f"{self._id} has no {timeframe!r} candles; it offers {', '.join(timeframes)}"
            )
        self._bar_ms = int(self._exchange.parse_timeframe(timeframe)) * 1000
        self._clock = clock
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._depth = order_book_depth
        self._sleep = sleep
        self._markets_loaded = False

    @property
    def exchange_id(self) -> str:
        """The ccxt id of the exchange this market talks to."""
        return self._id

    # --- MarketData -------------------------------------------------------------------

    async def symbols(self) -> Sequence[str]:
        """Every symbol the exchange lists, as ccxt spells it ('BTC/USDT', ...)."""
        await self._load_markets()
        return sorted(self._exchange.symbols or [])

    async def candles(
        self, symbol: str, until: datetime | None = None, limit: int = 200
    ) -> Sequence[Candle]:
        """Bars that opened in the ``limit`` bar intervals up to ``until`` (None: now).

        Fewer than ``limit`` when the exchange has gaps in that window; never a bar after
        ``until``.
        """
        if limit < 1:
            raise MarketDataError(f"limit must be at least 1 (got {limit})")
        symbol = await self._market_symbol(symbol)
        until_ms = self._until_ms(until)
        rows = await self._fetch_window(symbol, until_ms, limit)
        return [self._candle(symbol, row) for row in rows]

    async def ticker(self, symbol: str, at: datetime | None = None) -> Ticker:
        """The live ticker, or for an ``at`` more than one bar in the past the close of the
        last bar that opened at or before it (an exchange has no historical ticker)."""
        symbol = await self._market_symbol(symbol)
        if self._is_past(at):
            return await self._ticker_from_candles(symbol, at)  # type: ignore[arg-type]
        raw = await self._call("fetch_ticker", symbol)
        last = raw.get("last") if raw.get("last") is not None else raw.get("close")
        if last is None:
            raise MarketDataError(f"{self._id} sent a {symbol} ticker without a last price")
        stamp = raw.get("timestamp")
        return self._build(
            Ticker,
            symbol=symbol,
            timestamp=_ms_to_datetime(stamp) if stamp else self._now(),
            last=_decimal(last, "last price"),
            bid=_price_or_none(raw.get("bid")),
            ask=_price_or_none(raw.get("ask")),
        )

    async def order_book(self, symbol: str, at: datetime | None = None) -> OrderBook | None:
        """The live order book (``order_book_depth`` levels); None for a past ``at``."""
        symbol = await self._market_symbol(symbol)
        if self._is_past(at):
            return None
        raw = await self._call("fetch_order_book", symbol, self._depth)
        stamp = raw.get("timestamp")
        return self._build(
            OrderBook,
            symbol=symbol,
            timestamp=_ms_to_datetime(stamp) if stamp else self._now(),
            bids=tuple(self._level(level) for level in raw.get("bids") or ()),
            asks=tuple(self._level(level) for level in raw.get("asks") or ()),
        )

    async def aclose(self) -> None:
        """Close the exchange's HTTP session (safe to call twice)."""
        await self._exchange.close()

    async def __aenter__(self) -> CcxtMarket:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- fetching ---------------------------------------------------------------------

    async def _fetch_window(self, symbol: str, until_ms: int, limit: int) -> list[list[Any]]:
        """The last ``limit`` OHLCV rows that opened at or before ``until_ms``.

        Asks for ``_SLACK_BARS`` more bar intervals than needed so that a short exchange gap
        still yields ``limit`` bars, and steps further back while bars are missing.
        """
        rows: dict[int, list[Any]] = {}
        hi, span = until_ms, limit + _SLACK_BARS
        for _ in range(_MAX_PAGES):
            lo = hi - span * self._bar_ms
            found = await self._fetch_range(symbol, lo, hi)
            rows.update(found)
            if len(rows) >= limit or not found:
                break
            hi, span = lo, limit - len(rows) + _SLACK_BARS
        return [rows[stamp] for stamp in sorted(rows)][-limit:]

    async def _fetch_range(self, symbol: str, lo: int, hi: int) -> dict[int, list[Any]]:
        """OHLCV rows with open time in (lo, hi], paging forward when a page is capped."""
        rows: dict[int, list[Any]] = {}
        since = lo + 1
        for _ in range(_MAX_PAGES):
            wanted = -(-(hi - since + 1) // self._bar_ms)  # bar slots left, rounded up
            page = await self._call("fetch_ohlcv", symbol, self._timeframe, since, wanted)
            inside = {int(row[0]): row for row in page or () if lo < row[0] <= hi}
            rows.update(inside)
            newest = max((int(row[0]) for row in page or ()), default=None)
            if newest is None or newest < since or newest + self._bar_ms > hi:
                break
            since = newest + 1
        return rows

    async def _ticker_from_candles(self, symbol: str, at: datetime) -> Ticker:
        bars = await self.candles(symbol, until=at, limit=1)
        if not bars:
            raise MarketDataError(f"{self._id} has no {symbol} bar at or before {at.isoformat()}")
        return Ticker(symbol=symbol, timestamp=bars[-1].timestamp, last=bars[-1].close)

    async def _load_markets(self) -> None:
        if not self._markets_loaded:
            await self._call("load_markets")
            self._markets_loaded = True

    async def _market_symbol(self, symbol: str) -> str:
        wanted = normalize_symbol(symbol)
        await self._load_markets()
        if wanted not in (self._exchange.markets or {}):
            raise MarketDataError(
                f"{self._id} does not list {wanted}; its symbols look like "
                f"{', '.join(sorted(self._exchange.symbols or [])[:5])}, ..."
            )
        return wanted

    async def _call(self, method: str, *args: Any) -> Any:
        """Call a ccxt method, retrying network errors, mapping every ccxt error."""
        for attempt in range(self._max_retries + 1):
            try:
                return await getattr(self._exchange, method)(*args)
            except ccxt.NetworkError as exc:
                if attempt == self._max_retries:
                    raise self._mapped(method, exc, attempts=attempt + 1) from exc
                delay = self._backoff_s * 2**attempt
                log.warning(
                    "ccxt.retry",
                    exchange=self._id,
                    method=method,
                    attempt=attempt + 1,
                    delay_s=delay,
                    error=f"{type(exc).__name__}: {exc}",
                )
                await self._sleep(delay)
            except ccxt.BaseError as exc:
                raise self._mapped(method, exc, attempts=attempt + 1) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _mapped(self, method: str, exc: ccxt.BaseError, attempts: int) -> MarketDataError:
        where = f"{self._id} {method}"
        detail = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, ccxt.BadSymbol):
            hint = "the exchange does not know this symbol; list them with symbols()"
        elif isinstance(exc, ccxt.AuthenticationError):
            hint = "the exchange rejected the API credentials; check the key, secret and IP"
        elif isinstance(exc, ccxt.NotSupported):
            hint = "this exchange does not offer it through ccxt"
        elif isinstance(exc, ccxt.NetworkError):
            hint = (
                f"the exchange is unreachable or unavailable after {attempts} attempt(s); "
                "check the network or try later"
            )
        else:
            hint = "the exchange refused the request"
        return MarketDataError(f"{where} failed: {hint} ({detail})")

    # --- conversions --------------------------------------------------------------------

    def _candle(self, symbol: str, row: Sequence[Any]) -> Candle:
        stamp, o, h, lo, c, v = row[:6]
        return self._build(
            Candle,
            timestamp=_ms_to_datetime(stamp),
            open=_decimal(o, f"{symbol} open"),
            high=_decimal(h, f"{symbol} high"),
            low=_decimal(lo, f"{symbol} low"),
            close=_decimal(c, f"{symbol} close"),
            # ccxt gives None where an exchange publishes no volume for a bar
            volume=Decimal(0) if v is None else _decimal(v, "volume"),
        )

    def _level(self, level: Sequence[Any]) -> OrderBookLevel:
        price, size = level[0], level[1]
        return OrderBookLevel(price=_decimal(price, "price"), quantity=_decimal(size, "size"))

    def _build(self, model: type[T], **fields: Any) -> T:
        try:
            return model(**fields)
        except ValidationError as exc:
            raise MarketDataError(
                f"{self._id} sent a {model.__name__} that does not validate: {exc}"
            ) from None

    def _now(self) -> datetime:
        return self._clock()

    def _until_ms(self, until: datetime | None) -> int:
        moment = self._now() if until is None else until
        return to_epoch_ns(moment, "until") // 1_000_000

    def _is_past(self, at: datetime | None) -> bool:
        if at is None:
            return False
        to_epoch_ns(at, "at")  # rejects naive datetimes
        return at < self._now() - timedelta(milliseconds=self._bar_ms)


def _create_exchange(exchange_id: str, config: Mapping[str, Any]) -> ccxt_async.Exchange:
    if exchange_id not in ccxt_async.exchanges:
        raise MarketDataError(
            f"unknown exchange id {exchange_id!r}; use a ccxt id such as binance, kraken, "
            "coinbase, okx (full list: python -c 'import ccxt; print(ccxt.exchanges)')"
        )
    exchange_class = getattr(ccxt_async, exchange_id)
    return exchange_class({"enableRateLimit": True, **config})

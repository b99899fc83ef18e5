"""A fake aiohttp session that answers Binance spot REST calls with recorded wire bodies.

ccxt is handed this object as its ``session``; everything above the socket (request
building, throttling, ``handle_errors``, ``parse_*``) is ccxt's real code. Importable from
any test because pytest puts this folder (it holds the root conftest.py) on ``sys.path``.
"""

from __future__ import annotations

import json
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yarl

from tradecast.market.ccxt_market import CcxtMarket

BINANCE_FIXTURES = Path(__file__).parent.parent / "fixtures" / "binance"
RECORDED_AT = datetime(2021, 4, 25, 12, 59, 59, 512000, tzinfo=UTC)
"""The moment the recorded ticker and depth were taken (the fake exchange's 'now')."""

Failure = BaseException | tuple[int, str]


class FakeResponse:
    """The slice of aiohttp.ClientResponse that ccxt reads."""

    def __init__(self, status: int, body: str, reason: str) -> None:
        self.status = status
        self.reason = reason
        self.headers = {"Content-Type": "application/json;charset=UTF-8"}
        self._body = body

    async def text(self, errors: str = "strict") -> str:
        return self._body


class _Exchange:
    def __init__(self, outcome: FakeResponse | BaseException) -> None:
        self._outcome = outcome

    async def __aenter__(self) -> FakeResponse:
        if isinstance(self._outcome, BaseException):
            raise self._outcome
        return self._outcome

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class BinanceWire:
    """Serves /api/v3/{exchangeInfo,klines,ticker/24hr,depth} from BINANCE_FIXTURES.

    ``fail(path, outcome, times)`` queues failures for a path: an exception to raise at the
    socket (e.g. aiohttp.ClientConnectionError) or an (HTTP status, body) pair.
    """

    def __init__(self, max_klines: int = 1000) -> None:
        self.max_klines = max_klines  # Binance caps a klines page at 1000 bars
        self.headers: dict[str, str] = {}  # aiohttp session default headers
        self.requests: list[yarl.URL] = []
        self.closed = False
        self._failures: dict[str, deque[Failure]] = {}
        self._info = self._load("exchangeInfo.json")
        self._symbols = {s["symbol"] for s in self._info["symbols"]}

    def fail(self, path: str, outcome: Failure, times: int = 1) -> None:
        self._failures.setdefault(path, deque()).extend([outcome] * times)

    def paths(self) -> list[str]:
        return [url.path for url in self.requests]

    # --- aiohttp.ClientSession surface ccxt uses ----------------------------------------

    def get(self, url: yarl.URL, **_: Any) -> _Exchange:
        self.requests.append(url)
        queued = self._failures.get(url.path)
        if queued:
            failure = queued.popleft()
            if isinstance(failure, BaseException):
                return _Exchange(failure)
            status, body = failure
            return _Exchange(FakeResponse(status, body, "Error"))
        return _Exchange(self._answer(url))

    async def close(self) -> None:
        self.closed = True

    # --- routes ---------------------------------------------------------------------------

    def _answer(self, url: yarl.URL) -> FakeResponse:
        path, query = url.path, url.query
        if path == "/api/v3/exchangeInfo":
            return self._ok(self._info)
        if query.get("symbol") not in self._symbols:
            return FakeResponse(400, self._text("error_invalid_symbol.json"), "Bad Request")
        if path == "/api/v3/klines":
            return self._ok(self._klines(query))
        if path == "/api/v3/ticker/24hr" and query["symbol"] == "BTCUSDT":
            return self._ok(self._load("ticker_24hr_BTCUSDT.json"))
        if path == "/api/v3/depth" and query["symbol"] == "BTCUSDT":
            book = self._load("depth_BTCUSDT.json")
            limit = int(query.get("limit", 100))
            return self._ok({**book, "bids": book["bids"][:limit], "asks": book["asks"][:limit]})
        raise AssertionError(f"no recorded Binance response for {url}")

    def _klines(self, query: Any) -> list[list[Any]]:
        # Binance semantics: bars with open time in [startTime, endTime], first `limit` of them
        if query["symbol"] != "BTCUSDT" or query.get("interval") != "1h":
            return []
        rows = self._load("klines_BTCUSDT_1h.json")
        start = int(query.get("startTime", 0))
        end = int(query.get("endTime", 2**62))
        limit = min(int(query.get("limit", 500)), self.max_klines)
        return [row for row in rows if start <= row[0] <= end][:limit]

    @staticmethod
    def _ok(payload: Any) -> FakeResponse:
        return FakeResponse(200, json.dumps(payload), "OK")

    @staticmethod
    def _text(name: str) -> str:
        return (BINANCE_FIXTURES / name).read_text()

    def _load(self, name: str) -> Any:
        return json.loads(self._text(name))


def binance_market(wire: BinanceWire, **kwargs: Any) -> CcxtMarket:
    """A CcxtMarket on ccxt's real binance class, talking to ``wire``, clock at RECORDED_AT."""
    config = {
        "session": wire,
        "options": {"fetchMarkets": {"types": ["spot"]}},
        "timeout_on_exit": 0,
    }
    kwargs.setdefault("clock", lambda: RECORDED_AT)
    return CcxtMarket("binance", "1h", config=config, **kwargs)

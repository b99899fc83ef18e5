"""Replay market throughput on the bundled Binance candles (pure replay: no broker, no graph).

Figures:
- load: building ``ReplayMarket()`` (reads and validates both bundled CSVs, finds the gaps);
- tick by tick through the MarketData interface: at every bar time t, ``candles(until=t,
  limit=200)`` plus ``ticker(at=t)``, as the desk's ``gather_context`` asks; the cold pass
  builds the Candle objects (Decimal via str), the warm pass reuses them;
- tick + indicators: the same, then ``candles_to_frame`` and ``summarize`` on the 200 bars;
- vectorised: ``frame(symbol)`` (the pandas path for evals) and ``indicator_frame`` over the
  whole history, in bars/s.

Run: .venv/bin/python bench/replay.py            (last 2,000 bars of BTC/USDT; a few seconds)
     .venv/bin/python bench/replay.py --full     (every bar of both symbols)
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from datetime import datetime

from tradecast.logs import configure_logging
from tradecast.market.indicators import candles_to_frame, indicator_frame, summarize
from tradecast.market.replay import ReplayMarket

WINDOW = 200


def bar_times(market: ReplayMarket, symbol: str, bars: int | None) -> list[datetime]:
    index = market.frame(symbol).index
    chosen = index if bars is None else index[-bars:]
    return [stamp.to_pydatetime() for stamp in chosen]


async def tick_pass(market: ReplayMarket, symbol: str, times: list[datetime]) -> float:
    """Seconds to read a window and a ticker at every bar time."""
    start = time.perf_counter()
    for moment in times:
        await market.candles(symbol, until=moment, limit=WINDOW)
        await market.ticker(symbol, at=moment)
    return time.perf_counter() - start


async def tick_with_indicators(market: ReplayMarket, symbol: str, times: list[datetime]) -> float:
    start = time.perf_counter()
    for moment in times:
        window = await market.candles(symbol, until=moment, limit=WINDOW)
        summarize(candles_to_frame(window))
    return time.perf_counter() - start


def timed(work: Callable[[], object], repeat: int = 1) -> float:
    """Best-of-5 seconds per call of ``work``, each sample averaging ``repeat`` calls."""
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            work()
        samples.append((time.perf_counter() - start) / repeat)
    return min(samples)


async def bench_symbol(symbol: str, bars: int | None) -> None:
    market = ReplayMarket()
    times = bar_times(market, symbol, bars)
    ticks = len(times)
    cold = await tick_pass(market, symbol, times)
    warm = min([await tick_pass(market, symbol, times) for _ in range(3)])
    with_ind = await tick_with_indicators(market, symbol, times)
    print(f"{symbol}: {ticks} ticks, window {WINDOW} bars")
    print(
        f"  tick (candles+ticker), cold : {ticks / cold:10,.0f} ticks/s "
        f"({cold / ticks * 1e6:6.1f} us/tick)"
    )
    print(
        f"  tick (candles+ticker), warm : {ticks / warm:10,.0f} ticks/s "
        f"({warm / ticks * 1e6:6.1f} us/tick, {ticks * WINDOW / warm:,.0f} candles/s served)"
    )
    print(
        f"  tick + candles_to_frame + summarize: {ticks / with_ind:10,.0f} ticks/s "
        f"({with_ind / ticks * 1e3:6.3f} ms/tick)"
    )
    frame = market.frame(symbol)
    frame_s = timed(lambda: market.frame(symbol), repeat=200)
    until_s = timed(lambda: market.frame(symbol, until=times[len(times) // 2]), repeat=200)
    ind_s = timed(lambda: indicator_frame(market.frame(symbol)))
    print(f"  vectorised frame(symbol)        : {frame_s * 1e6:8.1f} us/call ({len(frame):,} bars)")
    print(f"  vectorised frame(symbol, until) : {until_s * 1e6:8.1f} us/call")
    print(
        f"  vectorised indicator_frame      : {len(frame) / ind_s:12,.0f} bars/s "
        f"({ind_s * 1e3:.1f} ms for {len(frame):,} bars)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=2000, help="ticks per symbol (latest bars)")
    parser.add_argument("--full", action="store_true", help="every bar of both symbols")
    args = parser.parse_args()
    configure_logging("warning")
    load_s = timed(ReplayMarket)
    print(f"load ReplayMarket() (2 bundled CSVs, 19,182 bars): best {load_s * 1e3:.1f} ms")
    symbols = ["BTC/USDT", "ETH/BUSD"] if args.full else ["BTC/USDT"]
    for symbol in symbols:
        asyncio.run(bench_symbol(symbol, None if args.full else args.bars))


if __name__ == "__main__":
    main()

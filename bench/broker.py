"""Paper broker throughput on the replay, and the vectorised rule baseline.

Figures:
- replay + broker: walk the BTC/USDT replay bar by bar; mark the broker to each close
  (``on_price``: journal write, resting limits, stops); every N bars trade through the risk
  gate (``GatedExecutor.submit``: replay ticker, mark, gate, broker submit, journal), buying
  with a stop-loss and selling half the position in turn. Journal on: SQLite in a temp file
  (WAL, synchronous=NORMAL), and, for comparison, in memory. Reported in bars/s, with the
  cost of one mark and of one gated order;
- restart: a new PaperBroker replaying the whole journal (checked equal to the live one);
- vectorised baseline: SMA(20/50) crossover equity with costs (``evals.baselines``) over the
  BTC/USDT closes tiled to 10 million bars (log returns repeated, drift removed), in bars/s.

Run: .venv/bin/python bench/broker.py           (every BTC/USDT bar, trade every 24; ~10 s)
     .venv/bin/python bench/broker.py --every 4 --tile 50000000
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import numpy as np

from tradecast.broker.journal import SqliteJournal
from tradecast.broker.market_rules import money
from tradecast.broker.paper import PaperBroker
from tradecast.domain import OrderIntent, Side
from tradecast.evals.baselines import sma_crossover_equity
from tradecast.logs import configure_logging
from tradecast.market.replay import ReplayMarket
from tradecast.risk.execution import GatedExecutor
from tradecast.settings import RiskLimits

SYMBOL = "BTC/USDT"


class Clock:
    def __init__(self) -> None:
        self.now = None

    def __call__(self):  # type: ignore[no-untyped-def]
        return self.now


async def walk(journal_path: str, every: int) -> dict[str, float]:
    """Seconds spent walking every bar, marking and trading; counts of what happened."""
    clock = Clock()
    market = ReplayMarket(clock=clock)
    frame = market.frame(SYMBOL, until=market.span(SYMBOL)[1])
    times = [stamp.to_pydatetime() for stamp in frame.index]
    closes = [Decimal(repr(float(c))) for c in frame["close"]]
    clock.now = times[0]
    journal = SqliteJournal(journal_path)
    broker = PaperBroker(journal, clock=clock)
    executor = GatedExecutor(broker, market, RiskLimits(max_position_pct=Decimal("0.5")), clock)
    mark_s = order_s = 0.0
    orders = approved = 0
    start = time.perf_counter()
    for i, (moment, close) in enumerate(zip(times, closes, strict=True)):
        clock.now = moment
        t0 = time.perf_counter()
        await broker.on_price(SYMBOL, close, moment)
        t1 = time.perf_counter()
        mark_s += t1 - t0
        if i % every == every - 1:
            report = await executor.submit(next_intent(broker, close, i))
            order_s += time.perf_counter() - t1
            orders += 1
            approved += report.verdict.approved
    total = time.perf_counter() - start
    events = len(journal.read(broker.account))
    start = time.perf_counter()
    restored = PaperBroker(journal, clock=clock)  # a restart: replay the whole journal
    restore_s = time.perf_counter() - start
    assert restored.portfolio() == broker.portfolio()
    journal.close()
    return {
        "bars": len(times),
        "seconds": total,
        "mark_s": mark_s,
        "order_s": order_s,
        "restore_s": restore_s,
        "orders": orders,
        "approved": approved,
        "fills": len(broker.fills()),
        "events": events,
        "equity": float(broker.portfolio().equity),
    }


def next_intent(broker: PaperBroker, close: Decimal, i: int) -> OrderIntent:
    held = broker.portfolio().position(SYMBOL)
    if held is not None and (i // 24) % 2:
        return OrderIntent(
            symbol=SYMBOL, side=Side.SELL, quantity=held.quantity / 2, client_order_id=f"bench-{i}"
        )
    return OrderIntent(
        symbol=SYMBOL,
        side=Side.BUY,
        quantity=Decimal("0.05"),
        stop_loss=money(close * Decimal("0.95")),
        client_order_id=f"bench-{i}",
    )


def report_walk(label: str, r: dict[str, float]) -> None:
    bars = r["bars"]
    print(
        f"  {label}: {bars / r['seconds']:8,.0f} bars/s ({r['seconds']:.2f} s for {bars:,.0f} bars)"
    )
    print(
        f"    mark (on_price + journal): {r['mark_s'] / bars * 1e6:7.1f} us/bar;  "
        f"gated order (ticker, mark, gate, submit, journal): "
        f"{r['order_s'] / max(r['orders'], 1) * 1e3:6.3f} ms/order"
    )
    print(
        f"    {r['orders']:,.0f} orders, {r['approved']:,.0f} approved, {r['fills']:,.0f} fills "
        f"(stops included), {r['events']:,.0f} journal events, final equity "
        f"{r['equity']:,.2f}; restart (replay the journal): {r['restore_s'] * 1e3:.0f} ms"
    )


def tiled_closes(closes: np.ndarray, bars: int) -> np.ndarray:
    """A continuous synthetic series of ``bars`` closes: the real log returns repeated."""
    returns = np.diff(np.log(closes))
    returns -= returns.mean()  # no drift, so the tiled prices stay in range
    reps = -(-bars // len(returns))
    path = np.concatenate(([0.0], np.cumsum(np.tile(returns, reps)[: bars - 1])))
    return closes[0] * np.exp(path)


def bench_baseline(bars: int) -> None:
    closes = ReplayMarket().frame(SYMBOL)["close"].to_numpy()
    series = tiled_closes(closes, bars)
    sma_crossover_equity(series[:100_000])  # warm up
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        sma_crossover_equity(series, 20, 50, 10_000.0, 10.0)
        samples.append(time.perf_counter() - start)
    best = min(samples)
    real = sma_crossover_equity(closes, 20, 50, 10_000.0, 10.0)
    print(
        f"vectorised SMA(20/50) crossover with costs, {bars:,} bars: "
        f"{bars / best:,.0f} bars/s (best of 5: {best * 1e3:.0f} ms; median "
        f"{bars / np.median(samples):,.0f} bars/s)"
    )
    print(
        f"  on the real {len(closes):,} BTC/USDT bars: final equity {real[-1]:,.2f} "
        f"from 10,000 (buy-and-hold x{closes[-1] / closes[0]:.2f})"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=24, help="trade every N bars")
    parser.add_argument("--tile", type=int, default=10_000_000, help="bars for the baseline")
    args = parser.parse_args()
    configure_logging("warning", "console")
    print(f"replay + risk gate + paper broker, {SYMBOL}, a gated order every {args.every} bars")
    with tempfile.TemporaryDirectory() as folder:
        on_disk = await walk(str(Path(folder) / "journal.sqlite"), args.every)
    report_walk("journal in a SQLite file", on_disk)
    report_walk("journal in memory       ", await walk(":memory:", args.every))
    bench_baseline(args.tile)


if __name__ == "__main__":
    asyncio.run(main())

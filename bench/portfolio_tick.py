"""Portfolio desk tick: wall time and LLM calls for 1, 2, 4 and 8 symbols per tick, with a
zero-latency scripted model (the framework's own cost) and the embedded model.

Each size runs the desk ``tradecast serve`` would run: one symbol is the one-symbol desk, more
are the portfolio desk (``desk.symbols``), with its checkpoints, the paper broker's journal and
the Chroma memory.

The bundled datasets hold two symbols; the others are real bars too: the BTC and ETH series
shifted back by whole months and renamed (S3/USDT, ...), so each symbol has its own path and
correlations are neither 1 nor 0. Every tick decides all symbols at one instant (4h apart).

Run: .venv/bin/python bench/portfolio_tick.py [--ticks N] [--embedded-ticks M] [--sizes 1,2,4,8]
     [--at-once K,K2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from desk import scripted_models  # bench/desk.py (a script's folder is on sys.path)
from tradecast.bootstrap import open_desk
from tradecast.logs import configure_logging
from tradecast.settings import load_settings

START = datetime(2021, 3, 1, tzinfo=UTC)
DATA = Path(__file__).resolve().parent.parent / "src/tradecast/data/ohlcv"
BUNDLED = {"BTC/USDT": DATA / "BTC-USDT-1h.csv", "ETH/BUSD": DATA / "ETH-BUSD-1h.csv"}


def symbol_files(count: int, folder: Path) -> dict[str, Path]:
    """``count`` symbols: the two bundled ones, then shifted copies of them."""
    files = dict(list(BUNDLED.items())[:count])
    for i in range(len(files), count):
        source = pd.read_csv(list(BUNDLED.values())[i % 2])
        months = i // 2 + 1
        shifted = source.copy()
        columns = ["open", "high", "low", "close", "volume"]
        shifted[columns] = source[columns].shift(24 * 30 * months)
        shifted = shifted.dropna()
        path = folder / f"S{i + 1}-USDT-1h.csv"
        shifted.to_csv(path, index=False)
        files[f"S{i + 1}/USDT"] = path
    return files


async def run(
    size: int, ticks: int, models: dict[str, Any] | None, folder: Path, at_once: int
) -> dict[str, Any]:
    files = symbol_files(size, folder)
    extra = {s: str(p) for s, p in files.items() if s not in BUNDLED}
    settings = load_settings(
        data_dir=folder / f"data-{size}-{'scripted' if models else 'embedded'}-{at_once}",
        market={"csv_paths": extra},
        desk={"symbols": list(files), "memory_k": 0, "symbols_at_once": at_once},
    )
    walls: list[float] = []
    calls: list[int] = []
    async with open_desk(settings, models=models) as desk:
        for i in range(ticks + 1):
            at = START + timedelta(hours=4 * i)
            started = time.perf_counter()
            result = await desk.runner.tick(next(iter(files)), at)
            if i == 0:
                continue  # warm-up: model load, first prompt
            walls.append(time.perf_counter() - started)
            calls.extend(report.llm.calls for report in result.reports())
    return {"size": size, "walls": walls, "calls": calls}


def line(label: str, figures: dict[str, Any], base: float | None) -> str:
    walls = figures["walls"]
    median = statistics.median(walls)
    growth = f"{median / base:.2f}x" if base else "1.00x"
    return (
        f"| {label} | {figures['size']} | {len(walls)} | {median * 1000:.0f} | "
        f"{max(walls) * 1000:.0f} | {growth} | {statistics.mean(figures['calls']):.2f} | "
        f"{max(figures['calls'])} |"
    )


async def main(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        "| model | at once | symbols | ticks | median ms | max ms | vs 1 symbol | "
        "LLM calls/symbol/tick (mean) | (max) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, ticks, factory in (
            ("scripted", args.ticks, scripted_models),
            ("embedded", args.embedded_ticks, lambda: None),
        ):
            if ticks <= 0:
                continue
            for at_once in (int(k) for k in args.at_once.split(",")):
                base = None
                for size in sizes:
                    figures = await run(size, ticks, factory(), Path(tmp), at_once)
                    print(line(f"{label} | {at_once or 'default'}", figures, base), flush=True)
                    base = base or statistics.median(figures["walls"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=20)
    parser.add_argument("--embedded-ticks", type=int, default=3)
    parser.add_argument("--sizes", default="1,2,4,8")
    parser.add_argument(
        "--at-once",
        default="0",
        help="symbols deciding at once, comma-separated to compare in one run "
        "(TRADECAST_DESK__SYMBOLS_AT_ONCE; 0: the default)",
    )
    configure_logging("warning", "console")
    asyncio.run(main(parser.parse_args()))

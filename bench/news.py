"""What reading the news costs a tick: the news view's time per decision, and how large the
analyst's news lines get.

A synthetic year of news: the 32 items of ``tests/fixtures/news/sample-2021-01.jsonl``
re-dated over 2021 at ``--per-day`` items a day (titles varied so dedup keeps most of them),
read through the real view (MiniLM relevance, VADER tone) at every 4-hour decision of 90 days
of BTC/USDT with the desk's own situation text. The first reads embed every new item; a
decision embeds its query and the items published since the last one, as a live desk does.

Run: .venv/bin/python bench/news.py            (40 items a day; about a minute)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tradecast.logs import configure_logging
from tradecast.market.replay import ReplayMarket
from tradecast.memory.embeddings import SentenceTransformerEmbedder
from tradecast.memory.situation import describe_situation
from tradecast.news.replay import ReplayNewsSource
from tradecast.news.sentiment import VaderSentiment
from tradecast.news.view import NewsView
from tradecast.settings import NewsConfig

SAMPLE = Path(__file__).parents[1] / "tests" / "fixtures" / "news" / "sample-2021-01.jsonl"
START = datetime(2021, 2, 1, tzinfo=UTC)
DAYS = 90
ENDINGS = (
    "as traders watch the Fed minutes",
    "while Asian markets open higher today",
    "ahead of monthly options expiry Friday",
    "despite thin weekend order books",
    "after a busy week for exchanges",
    "with volumes above their monthly average",
    "amid record open interest on futures",
    "as miners send fewer coins to exchanges",
    "while stablecoin supply keeps growing fast",
    "before the quarterly futures roll over",
)


def synthetic_year(path: Path, per_day: int) -> int:
    """Write a year of items re-dated from the sample file; returns how many."""
    rows = [json.loads(line) for line in SAMPLE.read_text().splitlines()][:32]
    step = timedelta(days=1) / per_day
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        at = datetime(2021, 1, 1, tzinfo=UTC)
        while at < datetime(2022, 1, 1, tzinfo=UTC):
            row = rows[count % len(rows)]
            variant = {**row, "id": f"syn-{count}", "published_at": at.isoformat()}
            # a different ending each time round, so dedup takes them for different stories
            ending = ENDINGS[(count // len(rows)) % len(ENDINGS)]
            variant["title"] = f"{row['title']} {ending}"
            variant["url"] = f"{row['url'].split('?')[0]}-{count}"
            handle.write(json.dumps(variant) + "\n")
            at += step
            count += 1
    return count


async def measure(path: Path) -> dict[str, float]:
    view = NewsView(
        [ReplayNewsSource.from_file(path)],
        SentenceTransformerEmbedder(),
        VaderSentiment(),
        NewsConfig(file=path),
    )
    market = ReplayMarket()
    times, chars, readable, read = [], [], [], []
    at = START
    while at < START + timedelta(days=DAYS):
        situation = describe_situation(await market.candles("BTC/USDT", until=at, limit=200))
        started = time.perf_counter()
        reading = await view.read("BTC/USDT", at, situation)
        times.append((time.perf_counter() - started) * 1000)
        chars.append(len(reading.text))
        readable.append(reading.readable)
        read.append(len(reading.headlines))
        at += timedelta(hours=4)
    steady = sorted(times[6:])  # after the first day, whose reads embed the look-back
    return {
        "decisions": len(times),
        "first_read_ms": round(times[0], 1),
        "p50_ms": round(statistics.median(steady), 1),
        "p95_ms": round(steady[int(0.95 * (len(steady) - 1))], 1),
        "readable_per_decision": round(statistics.mean(readable), 1),
        "read_per_decision": round(statistics.mean(read), 2),
        "news_chars_mean": round(statistics.mean(chars)),
        "news_chars_max": max(chars),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-day", type=int, default=40, help="items a day (1 to 1000)")
    args = parser.parse_args()
    if not 1 <= args.per_day <= 1000:
        parser.error("--per-day must be 1 to 1000")
    configure_logging("warning", "console")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "year.jsonl"
        items = synthetic_year(path, args.per_day)
        figures = asyncio.run(measure(path))
    print(f"items in the year: {items:,} ({args.per_day} a day)")
    for name, value in figures.items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()

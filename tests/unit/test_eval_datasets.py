"""Dataset resolution and window checks: bundled names, CSV paths, clear errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tradecast.evals.datasets import (
    DatasetError,
    bundled_datasets,
    decision_times,
    resolve_dataset,
    timeframe_of,
)
from tradecast.memory.embedding_cache import PersistentEmbeddingCache
from tradecast.settings import MarketConfig

D = datetime(2021, 1, 1, tzinfo=UTC)


def _csv(path: Path, rows: int = 48, header: str = "timestamp,open,high,low,close,volume") -> Path:
    lines = [header]
    for i in range(rows):
        at = D + timedelta(hours=i)
        price = 100 + i
        lines.append(f"{at:%Y-%m-%dT%H:%M:%SZ},{price},{price + 2},{price - 1},{price + 1},5")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bundled_names_resolve_to_their_symbol_and_hash():
    assert set(bundled_datasets()) >= {"btc-usdt-1h", "eth-busd-1h"}
    btc = resolve_dataset("BTC-USDT-1h")
    assert (btc.name, btc.symbol, btc.timeframe, btc.csv_path) == (
        "btc-usdt-1h",
        "BTC/USDT",
        "1h",
        None,
    )
    assert len(btc.sha256) == 64 and btc.source == "bundled:BTC-USDT-1h.csv"
    assert btc.market_config(MarketConfig()).csv_paths == {}


def test_a_csv_path_resolves_with_its_symbol_from_the_name(tmp_path: Path):
    data = resolve_dataset(str(_csv(tmp_path / "SOL-USDT-1h.csv")))
    assert data.symbol == "SOL/USDT" and data.interval == timedelta(hours=1)
    config = data.market_config(MarketConfig(timeframe="4h"))
    assert config.timeframe == "1h" and config.csv_paths == {"SOL/USDT": data.csv_path}
    named = resolve_dataset(str(_csv(tmp_path / "prices.csv")), symbol="btc/usdt")
    assert named.symbol == "BTC/USDT"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: "btc-usdt-5m", "unknown dataset 'btc-usdt-5m'; bundled: "),
        (lambda p: str(p / "nope.csv"), "does not exist"),
        (
            lambda p: str(_csv(p / "BTC-USDT-1h.csv", header="timestamp,open,high,low,close")),
            "missing column(s) volume",
        ),
        (lambda p: str(_csv(p / "prices.csv")), "pass --symbol"),
        (lambda p: str(_csv(p / "X-Y-1h.csv", rows=2)), "at least 3"),
    ],
)
def test_bad_datasets_fail_with_a_clear_message(tmp_path: Path, make, message: str):
    with pytest.raises(DatasetError, match=None) as caught:
        resolve_dataset(make(tmp_path))
    assert message in str(caught.value)


def test_decision_times_cover_the_window_at_the_cadence():
    data = resolve_dataset("btc-usdt-1h")
    times = decision_times(data, D, D + timedelta(days=7), timedelta(hours=24))
    assert len(times) == 8 and times[0] == D and times[-1] == D + timedelta(days=7)
    assert decision_times(data, D, D, timedelta(hours=4)) == [D]


@pytest.mark.parametrize(
    ("start", "end", "every", "message"),
    [
        (D, D - timedelta(days=1), timedelta(hours=4), "before --start"),
        (datetime(2020, 6, 9, tzinfo=UTC), D, timedelta(hours=4), "too early"),
        (D, datetime(2022, 1, 1, tzinfo=UTC), timedelta(hours=4), "after the data"),
        (D, D + timedelta(days=1), timedelta(0), "positive"),
    ],
)
def test_bad_windows_fail_with_a_clear_message(start, end, every, message: str):
    with pytest.raises(DatasetError, match=message):
        decision_times(resolve_dataset("btc-usdt-1h"), start, end, every)


def test_timeframes_are_spelled_like_the_settings():
    assert timeframe_of(timedelta(hours=1)) == "1h"
    assert timeframe_of(timedelta(minutes=15)) == "15m"
    assert timeframe_of(timedelta(days=1)) == "1d"
    with pytest.raises(DatasetError):
        timeframe_of(timedelta(seconds=30))


class CountingEmbedder:
    """A deterministic stand-in for the sentence model that counts what it encodes."""

    name, dimension = "counting", 4

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def embed(self, texts):
        self.encoded += list(texts)
        return np.array(
            [[len(t), 1.0, 0.0, float(i)] for i, t in enumerate(texts)], dtype=np.float32
        )


def test_embedding_cache_encodes_each_text_once_and_persists(tmp_path: Path):
    inner = CountingEmbedder()
    cache = PersistentEmbeddingCache(inner, tmp_path / "e.sqlite")
    first = cache.embed(["a", "bb", "a"])
    again = cache.embed(["bb", "a"])
    assert inner.encoded == ["a", "bb"]
    np.testing.assert_array_equal(first[1], again[0])
    assert (cache.hits, cache.misses) == (3, 2)
    cache.close()
    reopened = PersistentEmbeddingCache(CountingEmbedder(), tmp_path / "e.sqlite")
    assert reopened.warm(["a", "bb", "ccc"]) == 1
    np.testing.assert_array_equal(reopened.embed(["bb"])[0], first[1])
    assert reopened.embed([]).shape == (0, 4)

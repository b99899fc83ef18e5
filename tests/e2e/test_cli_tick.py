"""`tradecast tick` on the real embedded model, the bundled replay and the paper broker."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from support.cli import run_tradecast
from support.ticks import DESK_VOTERS
from tradecast.bootstrap import build_broker, build_journal
from tradecast.settings import load_settings


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_tradecast(tmp_path, *args, timeout=600)


@pytest.mark.slow
def test_tick_json_on_the_embedded_model(tmp_path: Path):
    done = _run(tmp_path, "tick", "--symbol", "BTC/USDT", "--at", "2021-01-05T12:00:00Z", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    tick = json.loads(done.stdout)
    decision = tick["decision"]
    assert decision["action"] in ("BUY", "SELL", "HOLD")
    assert decision["symbol"] == "BTC/USDT"
    assert float(decision["price"]) > 0 and 0 <= decision["confidence"] <= 1
    agents = {row["agent"] for row in decision["attribution"]}
    assert agents == DESK_VOTERS
    assert 1 <= tick["llm"]["calls"] <= 5
    assert tick["llm"]["prompt_tokens"] > 0 and tick["llm"]["completion_tokens"] > 0
    assert tick["persona"]["text"] and tick["persona"]["emotion"]
    assert tick["latency_ms"]["total"] > 0 and "persona" in tick["latency_ms"]
    assert set(tick["risk"]) >= {"approved", "reasons"}
    if tick["risk"]["approved"]:
        assert tick["order"] is not None
        settings = load_settings(data_dir=tmp_path / "data")
        journal = build_journal(settings)
        try:
            restored = build_broker(settings, journal)
            assert restored.order(tick["order"]["client_order_id"]) is not None
        finally:
            journal.close()


def test_tick_unknown_symbol_fails_clearly(tmp_path: Path):
    done = _run(tmp_path, "tick", "--symbol", "NOPE/USDT", "--at", "2021-01-05T12:00:00Z")
    assert done.returncode != 0
    assert "unknown symbol" in done.stderr


def test_tick_bad_time_fails_clearly(tmp_path: Path):
    done = _run(tmp_path, "tick", "--symbol", "BTC/USDT", "--at", "yesterday")
    assert done.returncode != 0
    assert "ISO-8601" in done.stderr

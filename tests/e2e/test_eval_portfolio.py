"""`tradecast eval --portfolio` as a user runs it: both bundled datasets as one book on the
embedded model, and the mistakes a user can make on its command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.cli import run_tradecast

BOTH = ["--dataset", "btc-usdt-1h", "--dataset", "eth-busd-1h"]
WINDOW = ["--start", "2021-03-01", "--end", "2021-03-01T08:00", "--every", "4h"]


@pytest.mark.slow
def test_two_datasets_trade_as_one_book_on_the_embedded_model(tmp_path: Path):
    out = tmp_path / "book"
    done = run_tradecast(tmp_path, "eval", "--portfolio", *BOTH, *WINDOW, "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    summary, ticks = report["summary"], report["ticks"]
    assert summary["ticks"] == len(ticks) == 3
    assert summary["window"]["symbols"] == ["BTC/USDT", "ETH/BUSD"]
    assert summary["risk_violations"] == 0 and summary["persona_grounding_errors"] == 0
    assert 1 <= summary["llm_calls_per_symbol_per_tick"]["max"] <= 5
    assert all(set(t["llm_calls"]) == {"BTC/USDT", "ETH/BUSD"} for t in ticks)
    assert all(t["equity"] > 0 and t["gross"] >= 0 for t in ticks)
    decisions = (out / "decisions.csv").read_text().splitlines()
    assert len(decisions) == 1 + 2 * 3  # a header, then each symbol at each tick
    for name in ("report.md", "portfolio.png", "ticks.csv"):
        assert (out / name).is_file(), name
    assert "P&L by symbol" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "btc-usdt-1h", "--dataset", "btc-usdt-1h"], "one symbol twice"),
        (["--dataset", "btc-usdt-1h"], "two --dataset or more"),
        ([*BOTH, "--fill", "next-open"], "fills at the close"),
        ([*BOTH, "--token-budget", "100"], "does not take"),
    ],
)
def test_a_bad_portfolio_command_says_why_and_writes_nothing(tmp_path: Path, args, message):
    out = tmp_path / "book"
    done = run_tradecast(tmp_path, "eval", "--portfolio", *args, *WINDOW, "--out", str(out))
    assert done.returncode != 0
    assert message in done.stderr + done.stdout
    assert not (out / "report.json").exists()


def test_tick_on_a_portfolio_desk_refuses_a_symbol_it_does_not_trade(tmp_path: Path):
    env = {"TRADECAST_DESK__SYMBOLS": "BTC/USDT,ETH/BUSD"}
    done = run_tradecast(tmp_path, "tick", "--symbol", "SOL/USDT", "--json", extra_env=env)
    assert done.returncode != 0
    assert "the desk decides BTC/USDT, ETH/BUSD" in done.stderr + done.stdout


@pytest.mark.slow
def test_tick_on_a_portfolio_desk_prints_every_symbol_on_the_embedded_model(tmp_path: Path):
    env = {"TRADECAST_DESK__SYMBOLS": "BTC/USDT,ETH/BUSD"}
    args = ["tick", "--symbol", "eth/busd", "--at", "2021-03-01T00:00:00Z", "--json"]
    done = run_tradecast(tmp_path, *args, extra_env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    reports = json.loads(done.stdout)["reports"]
    assert sorted(r["decision"]["symbol"] for r in reports) == ["BTC/USDT", "ETH/BUSD"]
    assert all(r["portfolio"]["symbols"] == ["BTC/USDT", "ETH/BUSD"] for r in reports)
    assert all(1 <= r["llm"]["calls"] <= 5 for r in reports)

"""``tradecast market candles`` through typer's CliRunner and through the installed command."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from tradecast.cli import app

runner = CliRunner()
KEYS = ["timestamp", "open", "high", "low", "close", "volume"]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures logging onto CliRunner's stderr, which is closed after the run;
    later tests must not log into it."""
    saved, handlers = structlog.get_config(), logging.getLogger().handlers[:]
    yield
    structlog.configure(**saved)
    logging.getLogger().handlers = handlers


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["market", "candles", *args])
    return result.exit_code, result.stdout, result.stderr


def test_market_candles_json_until_and_limit() -> None:
    code, out, _ = run("BTC/USDT", "--until", "2021-04-25T07:30Z", "--limit", "3", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [list(row) for row in rows] == [KEYS] * 3
    # the 05:00-07:00 bars do not exist in Binance's data: nothing is invented
    assert [row["timestamp"] for row in rows] == [
        "2021-04-25T02:00:00Z",
        "2021-04-25T03:00:00Z",
        "2021-04-25T04:00:00Z",
    ]
    # CSV line: 2021-04-25T04:00:00Z,49626.76,49705.04,49600.24,49683.94,5.887034
    assert rows[-1] == {
        "timestamp": "2021-04-25T04:00:00Z",
        "open": "49626.76",
        "high": "49705.04",
        "low": "49600.24",
        "close": "49683.94",
        "volume": "5.887034",
    }


def test_market_candles_until_without_offset_is_utc() -> None:
    _, naive, _ = run("eth/busd", "--until", "2021-01-01T12:00", "--limit", "1", "--json")
    _, offset, _ = run("ETH/BUSD", "--until", "2021-01-01T14:00+02:00", "--limit", "1", "--json")
    assert json.loads(naive) == json.loads(offset)
    assert json.loads(naive)[0]["timestamp"] == "2021-01-01T12:00:00Z"


def test_market_candles_table() -> None:
    code, out, _ = run("BTC/USDT", "--until", "2021-04-25T08:00:00Z", "--limit", "2")
    assert code == 0
    assert "BTC/USDT (replay, 2 bars)" in out
    assert "2021-04-25 04:00" in out and "2021-04-25 08:00" in out
    assert "50086.13" in out  # the 08:00 close


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["DOGE/USDT"], 1, "unknown symbol 'DOGE/USDT' for the replay market; known: BTC/USDT"),
        (["BTC/USDT", "--until", "yesterday"], 2, "not an ISO-8601 time"),
        (["BTC/USDT", "--limit", "0"], 2, "--limit must be at least 1"),
        (["BTCUSDT"], 1, "must look like BASE/QUOTE"),
    ],
)
def test_market_candles_bad_input_fails_on_stderr(args: list[str], code: int, message: str) -> None:
    exit_code, out, err = run(*args)
    assert exit_code == code
    assert message in err
    assert out == ""


def test_market_candles_reads_csv_paths_from_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = tmp_path / "foo.csv"
    csv.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2022-01-01T00:00:00Z,10,11,9,10.5,2\n2022-01-01T01:00:00Z,10.5,12,10,11.75,4\n"
    )
    monkeypatch.setenv("TRADECAST_MARKET__CSV_PATHS", json.dumps({"FOO/BAR": str(csv)}))
    code, out, _ = run("FOO/BAR", "--json")
    assert code == 0
    assert [row["close"] for row in json.loads(out)] == ["10.5", "11.75"]


def test_market_candles_installed_entry_point() -> None:
    command = Path(sys.executable).with_name("tradecast")
    assert command.exists(), "the project is not installed in this environment (pip install -e .)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADECAST_")}
    done = subprocess.run(
        [
            str(command),
            "market",
            "candles",
            "ETH/BUSD",
            "--until",
            "2020-06-09T02:00:00Z",
            "--limit",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        {
            "timestamp": "2020-06-09T01:00:00Z",
            "open": "243.84",
            "high": "244.14",
            "low": "243.21",
            "close": "243.79",
            "volume": "331.2121",
        },
        {
            "timestamp": "2020-06-09T02:00:00Z",
            "open": "243.8",
            "high": "244.18",
            "low": "243.26",
            "close": "243.65",
            "volume": "191.7811",
        },
    ]

"""`tradecast eval` refuses bad input before it runs anything, with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from tradecast.cli import app
from tradecast.cli.eval import prepare_out
from tradecast.settings import EvalConfig

WINDOW = ["--start", "2021-01-01", "--end", "2021-01-08", "--every", "24h"]


def _eval(*args: str):
    return CliRunner().invoke(app, ["eval", *args])


def _message(result) -> str:
    return (result.stderr if result.stderr_bytes is not None else "") + result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "doge-usdt-1h", *WINDOW], "unknown dataset 'doge-usdt-1h'"),
        (
            ["--dataset", "btc-usdt-1h", "--start", "2021-01-08", "--end", "2021-01-01"],
            "is before --start",
        ),
        (["--dataset", "btc-usdt-1h", "--start", "2021-01-01"], "--start and --end are required"),
        (
            ["--dataset", "btc-usdt-1h", "--start", "soon", "--end", "2021-01-08"],
            "not an ISO-8601 time",
        ),
        (["--dataset", "btc-usdt-1h", *WINDOW[:4], "--every", "daily"], "--every"),
        (["--dataset", "btc-usdt-1h", "--start", "2019-01-01", "--end", "2019-02-01"], "too early"),
        (["--dataset", "btc-usdt-1h", *WINDOW, "--concurrency", "0"], "at least 1"),
        (["--dataset", "btc-usdt-1h", *WINDOW, "--token-budget", "0"], "--token-budget must be"),
        ([*WINDOW], "--dataset is required"),
        (["--dataset", "btc-usdt-1h", *WINDOW, "--news", "no-such.jsonl"], "does not exist"),
        (["--dataset", "btc-usdt-1h", *WINDOW, "--news", "news.txt"], "must be .jsonl"),
    ],
)
def test_bad_input_exits_non_zero_with_a_clear_message(tmp_path: Path, args, message):
    out = ["--out", str(tmp_path / "out")] if "--out" not in args else []
    result = _eval(*args, *out)
    assert result.exit_code != 0
    assert message in _message(result)
    assert not (tmp_path / "out").exists(), "nothing is written on bad input"


@pytest.mark.parametrize("value", ["next_open", "open", "NEXT-OPEN", ""])
def test_fill_is_close_or_next_open_only(tmp_path: Path, value: str):
    result = _eval("--dataset", "btc-usdt-1h", *WINDOW, "--fill", value, "--out", str(tmp_path))
    assert result.exit_code == 2
    assert f"--fill must be 'close' or 'next-open' (got {value!r})" in _message(result)


def test_the_fill_setting_is_strict():
    assert EvalConfig().fill == "close"
    assert EvalConfig(fill="next_open").fill == "next_open"
    with pytest.raises(ValidationError):
        EvalConfig(fill="next-open")  # type: ignore[arg-type]


def test_a_csv_with_missing_columns_is_refused(tmp_path: Path):
    csv = tmp_path / "BTC-USDT-1h.csv"
    csv.write_text("timestamp,open,close\n2021-01-01T00:00:00Z,1,2\n")
    result = _eval("--dataset", str(csv), *WINDOW, "--out", str(tmp_path / "out"))
    assert result.exit_code != 0
    assert "missing column(s) high, low, volume" in _message(result)


def test_a_non_empty_out_dir_is_never_mixed_with_a_new_run(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    refused = _eval("--dataset", "btc-usdt-1h", *WINDOW, "--out", str(out))
    assert refused.exit_code != 0 and "not empty" in _message(refused)
    forced = _eval("--dataset", "btc-usdt-1h", *WINDOW, "--out", str(out), "--force")
    assert forced.exit_code != 0 and "not an eval's" in _message(forced)
    assert (out / "notes.txt").read_text() == "mine"


def test_compare_needs_two_eval_dirs(tmp_path: Path):
    result = _eval("compare", str(tmp_path), str(tmp_path))
    assert result.exit_code != 0
    assert "has no report.json" in _message(result)


def test_eval_without_arguments_shows_help():
    result = _eval()
    assert result.exit_code == 2
    assert "compare" in result.output and "--dataset" in result.output


def test_force_replaces_an_earlier_or_aborted_eval_only(tmp_path: Path):
    import typer

    finished = tmp_path / "finished"
    (finished / "data").mkdir(parents=True)
    (finished / "report.json").write_text("{}")
    aborted = tmp_path / "aborted"
    (aborted / "data").mkdir(parents=True)
    (aborted / "data" / "journal.sqlite").write_text("")
    several = tmp_path / "several"
    for name in ("btc-usdt-1h", "eth-busd-1h"):
        (several / name).mkdir(parents=True)
        (several / name / "manifest.json").write_text("{}")
    for folder in (finished, aborted, several):
        prepare_out(folder, force=True)
        assert not folder.exists()
    lookalike = tmp_path / "mine"
    (lookalike / "data").mkdir(parents=True)
    (lookalike / "data" / "photos.db").write_text("")
    with pytest.raises(typer.Exit):
        prepare_out(lookalike, force=True)
    assert (lookalike / "data" / "photos.db").exists()
    prepare_out(tmp_path / "new", force=False)  # a fresh directory is fine


WALK = ["walk-forward", "--dataset", "btc-usdt-1h", "--start", "2021-01-04", "--end", "2021-01-20"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--every", "24h", "--train", "5d", "--test", "36h"],
            "--test must be a positive multiple",
        ),
        (["--every", "24h", "--train", "5d", "--test", "4d", "--step", "2d"], "overlapping"),
        (["--every", "24h", "--train", "30d", "--test", "5d"], "no window fits"),
        (
            ["--every", "24h", "--train", "5d", "--test", "5d", "--ablations", "no_rules"],
            "unknown ablation",
        ),
        (
            ["--every", "24h", "--train", "5d", "--test", "5d", "--ablations", "full,no_news"],
            "needs a news source",
        ),
        (
            ["--every", "24h", "--train", "5d", "--test", "5d", "--workers", "0"],
            "--workers must be",
        ),
        (
            ["--every", "24h", "--train", "5d", "--test", "5d", "--token-budget", "-1"],
            "--token-budget",
        ),
        (
            ["--every", "24h", "--train", "5d", "--test", "5d", "--price-per-mtok", "-2"],
            "--price-per-mtok",
        ),
        (
            ["--every", "24h", "--train", "5d", "--test", "5d", "--price-per-mtok", "nan"],
            "--price-per-mtok",
        ),
        (
            ["--every", "24h", "--train", "5d", "--test", "5d", "--bootstrap-draws", "10"],
            "--bootstrap-draws",
        ),
        (["--every", "24h", "--train", "5d", "--test", "5d", "--trials", "0"], "--trials"),
        (["--every", "24h", "--train", "5d", "--test", "5d", "--fill", "open"], "--fill must be"),
    ],
)
def test_walk_forward_refuses_bad_input_before_writing(tmp_path: Path, args, message):
    result = _eval(*WALK, *args, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, _message(result)
    assert message in _message(result)
    assert not (tmp_path / "out").exists(), "nothing is written on bad input"


def test_force_replaces_an_earlier_walk_forward(tmp_path: Path):
    out = tmp_path / "wf"
    for phase in ("train", "test"):
        (out / "full" / "window-000" / phase / "data").mkdir(parents=True)
    (out / "full" / "window-000" / "test" / "report.json").write_text("{}")
    (out / "full" / "window-000" / "train" / "decisions.jsonl").write_text("")
    (out / "full" / "window-000" / "train" / "data" / "journal.sqlite").write_text("")
    for name in ("report.json", "report.html", "oos.csv", "oos_equity.png"):
        (out / name).write_text("")
    prepare_out(out, force=True)
    assert not out.exists()


def test_compare_refuses_fewer_than_two_runs(tmp_path: Path):
    result = _eval("compare", str(tmp_path))
    assert result.exit_code != 0 and "2 to 100 runs" in _message(result)


def test_a_news_file_with_no_trustworthy_item_is_refused(tmp_path: Path):
    news = tmp_path / "news.jsonl"
    news.write_text('{"published_at": "2021-01-02T00:00:00", "title": "no zone"}\n')
    result = _eval(
        "--dataset", "btc-usdt-1h", *WINDOW, "--news", str(news), "--out", str(tmp_path / "out")
    )
    assert result.exit_code == 2
    assert "holds no item with a trustworthy published_at" in _message(result)
    assert not (tmp_path / "out").exists()

"""The leaderboard over eval run directories: ranking, comparability, overfitting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradecast.evals.leaderboard import leaderboard, write_leaderboard
from tradecast.evals.oos import overfitting


def _run(folder: Path, returns: np.ndarray, sha: str = "abc", timeframe: str = "1h") -> Path:
    folder.mkdir(parents=True)
    times = pd.date_range("2021-01-01", periods=len(returns) + 1, freq="h", tz="UTC")
    equity = 10_000 * np.concatenate([[1.0], np.cumprod(1 + returns)])
    pd.DataFrame({"desk": equity}, index=times).to_csv(folder / "curves.csv", index_label="time")
    report = {
        "format": "tradecast-eval/1",
        "dataset": {"name": "x", "sha256": sha, "timeframe": timeframe},
    }
    (folder / "report.json").write_text(json.dumps(report))
    return folder


def test_runs_rank_by_sharpe_and_a_run_that_never_traded_ranks_last(tmp_path: Path):
    rng = np.random.default_rng(1)
    good = _run(tmp_path / "good", rng.normal(0.002, 0.01, 300))
    bad = _run(tmp_path / "bad", rng.normal(-0.002, 0.01, 300))
    flat = _run(tmp_path / "flat", np.zeros(300))
    board = leaderboard([flat, bad, good], draws=200, seed=1)
    assert [Path(r["run"]).name for r in board["runs"]] == ["good", "bad", "flat"]
    assert board["runs"][2]["sharpe"]["estimate"] is None
    versus = board["runs"][1]["versus_leader"]
    assert versus["comparable"] and versus["annualised_mean_difference"] < 0
    assert versus["p_leader_better"] < 0.05 and versus["leader_significantly_better"]
    assert board["overfitting"] is not None
    write_leaderboard(board, tmp_path / "board")
    page = (tmp_path / "board" / "leaderboard.html").read_text()
    assert "data:image/png;base64," in page and "<script" not in page


def test_runs_on_other_data_are_ranked_but_not_tested_against_each_other(tmp_path: Path):
    rng = np.random.default_rng(2)
    a = _run(tmp_path / "a", rng.normal(0.001, 0.01, 200), sha="btc")
    b = _run(tmp_path / "b", rng.normal(0.0, 0.01, 200), sha="eth")
    board = leaderboard([a, b], draws=200, seed=1)
    assert board["runs"][1]["versus_leader"] == {"comparable": False, "reason": "another dataset"}
    assert board["overfitting"] is None
    with pytest.raises(ValueError, match="different bar lengths"):
        leaderboard([a, _run(tmp_path / "c", np.zeros(10), timeframe="4h")])


def test_identical_configurations_are_not_read_as_overfitting():
    flat = pd.DataFrame({"desk": np.zeros(200)})
    assert overfitting({"a": flat, "b": flat.copy()}) is None
    rng = np.random.default_rng(3)
    noisy = {name: pd.DataFrame({"desk": rng.normal(0, 0.01, 200)}) for name in "abcd"}
    assert 0 <= overfitting(noisy)["pbo"] <= 1

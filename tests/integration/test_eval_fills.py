"""Fill realism in evals (``evals.fill``, ``tradecast eval --fill``), end to end on the real
desk graph, replay, paper broker and memory, on a tiny synthetic dataset whose every bar
opens 120 above the previous close (so the two fill prices always differ).

- "close" fills at the last close known at the decision, "next_open" at the next bar's open,
  both with the broker's slippage and fee on top;
- the decisions (and the prompts behind them) are the same either way: only the execution
  price moves;
- at the data's end there is no next open: the order is not filled, with the reason recorded;
- the manifest and the report record the choice, and the trade log and metrics the prices.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from support.evals import AnsweringModel, prompt_text, review
from tradecast.broker.market_rules import CostModel, rules_for
from tradecast.domain import Side
from tradecast.evals.compare import compare_runs
from tradecast.evals.datasets import Dataset, resolve_dataset
from tradecast.evals.fills import NextOpens
from tradecast.evals.manifest import build_manifest
from tradecast.evals.report import write_run
from tradecast.evals.runner import EvalRun, EvalSpec, run_eval
from tradecast.evals.scoring import score
from tradecast.settings import EvalConfig, StrategyConfig, load_settings

T0 = datetime(2021, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)
BARS = 85
GAP = 120.0
START = T0 + 61 * H  # decisions at 61h, 65h, ... 85h (the last close: no next bar)


class HashEmbedder:
    """Unit vectors from a text's hash: deterministic, and no model to load."""

    name, dimension = "hash-test", 8

    def embed(self, texts):
        rows = []
        for text in texts:
            digest = hashlib.sha256(text.encode()).digest()[:8]
            vector = np.frombuffer(digest, dtype=np.uint8).astype(np.float32) + 1
            rows.append(vector / np.linalg.norm(vector))
        return np.array(rows, dtype=np.float32).reshape(len(texts), self.dimension)


def _write_dataset(path: Path) -> Dataset:
    """Hourly BTC/USDT bars around 30,000; each opens GAP above the previous close."""
    closes = [round(30_000 + 400 * math.sin(i / 4), 2) for i in range(BARS)]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "open", "high", "low", "close", "volume"])
        for i, close in enumerate(closes):
            open_ = round(closes[i - 1] + GAP, 2) if i else close - 50
            at = (T0 + i * H).strftime("%Y-%m-%dT%H:%M:%SZ")
            high, low = max(open_, close) + 30, min(open_, close) - 30
            writer.writerow([at, open_, round(high, 2), round(low, 2), close, 10])
    return resolve_dataset(str(path))


def _alternating(kind: str) -> AnsweringModel:
    """BUY at the 1st, 3rd, ... decision and SELL (everything) at the others, whatever the
    prompt says: the actions cannot differ between two runs."""
    count = {"n": 0}

    def answer(text: str, rng: Any) -> dict[str, Any]:
        action = "BUY" if count["n"] % 2 == 0 else "SELL"
        count["n"] += 1
        if kind == "analyst":
            return {"action": action, "confidence": 0.9, "rationale": "scripted"}
        return {
            "action": action,
            "size_fraction": 1.0,
            "confidence": 0.9,
            "stop_loss_pct": 0.0,
            "take_profit_pct": 0.0,
            "rationale": "scripted",
        }

    return AnsweringModel(answer=answer, seed=1)


def _models() -> dict[str, AnsweringModel]:
    return {
        "analyst": _alternating("analyst"),
        "risk": AnsweringModel(answer=review, seed=1),
        "trader": _alternating("trader"),
        "persona": AnsweringModel(answer=lambda text, rng: "Watching the tape!", seed=1),
    }


async def _run(
    dataset: Dataset, out: Path, fill: str
) -> tuple[EvalRun, dict[str, Any], dict[str, AnsweringModel]]:
    base = load_settings()
    # the scripted LLM agents alone decide here (the strategies would vote over them)
    desk = base.desk.model_copy(
        update={
            "analyst_weight": 1.0,
            "trader_weight": 1.0,
            "strategy": StrategyConfig(strategies=frozenset(), sizing="fixed", exits="trader"),
        }
    )
    settings = base.model_copy(update={"evals": EvalConfig(fill=fill), "desk": desk})  # type: ignore[arg-type]
    spec = EvalSpec(
        dataset=dataset,
        start=START,
        end=dataset.last_close,
        every=4 * H,
        horizon=4 * H,
        out_dir=out,
    )
    models = _models()
    run = await run_eval(spec, settings, models=models, embedder=HashEmbedder())  # type: ignore[arg-type]
    report = write_run(out, run, score(run), build_manifest(run, argv=["test"]))
    return run, report, models


def _bar(dataset: Dataset, opened: datetime) -> Any:
    return dataset.frame.loc[opened]


def _price(value: float) -> Decimal:
    return Decimal(repr(float(value)))


async def test_fills_at_the_next_open_move_only_the_execution_price(tmp_path: Path):
    dataset = _write_dataset(tmp_path / "BTC-USDT-1h.csv")
    close_run, close_report, close_models = await _run(dataset, tmp_path / "close", "close")
    open_run, open_report, open_models = await _run(dataset, tmp_path / "open", "next_open")
    assert len(close_run.rows) == len(open_run.rows) == 7

    # the same decisions: the same actions at the same instants, and the first one exactly
    assert [(r["at"], r["action"]) for r in close_run.rows] == [
        (r["at"], r["action"]) for r in open_run.rows
    ]
    assert [r["action"] for r in close_run.rows] == ["BUY", "SELL"] * 3 + ["BUY"]
    first = ("at", "action", "quantity", "price", "confidence", "approved", "equity_before")
    assert {k: close_run.rows[0][k] for k in first} == {k: open_run.rows[0][k] for k in first}
    for role in ("analyst", "trader"):  # what the agents saw before the first fill
        assert prompt_text(close_models[role].prompts[0]) == prompt_text(
            open_models[role].prompts[0]
        )

    # the first order: at the close known at 61h, or at the open of the bar opening at 61h
    broker = close_run.settings.broker
    last_close = _price(_bar(dataset, START - H)["close"])
    next_open = _price(_bar(dataset, START)["open"])
    assert next_open - last_close == Decimal("120.00")
    assert Decimal(close_run.rows[0]["price"]) == last_close, "the decision's price is the close"
    rules, model = rules_for("BTC/USDT", {}), CostModel.from_config(broker)
    close_fill, open_fill = close_run.fills[0], open_run.fills[0]
    bought = close_fill.quantity  # the gate's size (on the step), judged at the close in both
    assert open_fill.quantity == bought <= Decimal(close_run.rows[0]["quantity"])
    assert close_fill.price == model.taker_price(Side.BUY, bought, last_close, rules)
    assert open_fill.price == model.taker_price(Side.BUY, bought, next_open, rules)
    assert open_fill.price > next_open > close_fill.price > last_close  # slippage on top
    assert open_fill.timestamp == close_fill.timestamp == START
    assert broker.fee_bps > 0 and open_fill.fee > close_fill.fee

    # every filled desk order of the next-open run filled at its bar's open plus slippage
    for row in open_run.rows[:-1]:
        at = datetime.fromisoformat(row["at"])
        if row["executed"]:
            (fill,) = row["fills"]
            side = Side(fill["side"])
            reference = _price(_bar(dataset, at)["open"])
            quantity = Decimal(fill["quantity"])
            assert Decimal(fill["price"]) == model.taker_price(side, quantity, reference, rules)
    assert sum(r["executed"] for r in open_run.rows) >= 4

    # the last decision is at the data's end: no next bar, so no fill, with the reason
    close_last, open_last = close_run.rows[-1], open_run.rows[-1]
    assert close_last["action"] == open_last["action"] == "BUY"
    assert close_last["executed"] and close_last["approved"]
    assert not open_last["executed"] and not open_last["approved"]
    assert open_last["fills"] == []
    assert any("no BTC/USDT bar opens at or after" in r for r in open_last["risk_reasons"])

    # the choice is recorded; the trade log and the metrics carry the fill prices
    for out, report, fill in (
        (tmp_path / "close", close_report, "close"),
        (tmp_path / "open", open_report, "next_open"),
    ):
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["fill"] == report["fill"] == fill
        assert manifest["settings"]["evals"]["fill"] == fill
        assert report["metrics"]["risk_violations"] == 0
        assert report["metrics"]["persona_grounding_errors"] == 0
    assert "next bar" in (tmp_path / "open" / "report.md").read_text()
    with (tmp_path / "open" / "trades.csv").open() as handle:
        trades = list(csv.DictReader(handle))
    assert [Decimal(t["price"]) for t in trades] == [f.price for f in open_run.fills]
    assert Decimal(trades[0]["price"]) == open_fill.price
    close_m, open_m = close_report["metrics"], open_report["metrics"]
    assert open_m["trades"] == close_m["trades"] - 1  # the last buy did not fill
    assert open_m["final_equity"] != close_m["final_equity"]
    assert open_m["fees_paid"] != close_m["fees_paid"]
    compared = compare_runs(tmp_path / "close", tmp_path / "open")
    assert compared["same_dataset"] and compared["same_window"]
    assert not compared["same_fill"] and not compared["same_trades"]


def test_the_next_open_is_the_first_bar_opening_at_or_after_the_instant(tmp_path: Path):
    dataset = _write_dataset(tmp_path / "BTC-USDT-1h.csv")
    opens = NextOpens.of(dataset)
    at = T0 + 10 * H
    assert opens.at_or_after("BTC/USDT", at) == (at, _price(_bar(dataset, at)["open"]))
    later = T0 + 11 * H
    assert opens.at_or_after("BTC/USDT", at + timedelta(minutes=30)) == (
        later,
        _price(_bar(dataset, later)["open"]),
    )
    assert opens.at_or_after("BTC/USDT", T0 + (BARS - 1) * H) is not None
    assert opens.at_or_after("BTC/USDT", dataset.last_close) is None
    with pytest.raises(Exception, match="this run replays BTC/USDT"):
        opens.at_or_after("ETH/USDT", at)

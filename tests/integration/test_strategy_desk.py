"""The strategy desk end to end: the real desk graph, replay, paper broker, memory and
embeddings over the bundled BTC/USDT bars at a daily cadence, scripted chat models at the
edge. The strategy agents vote and are weighed by the regime and by track records that the
memory's outcomes build; buys carry ATR stops and a time-stop that the broker enforces; no
limit is ever broken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from support.evals import desk_models
from tradecast.evals.datasets import resolve_dataset
from tradecast.evals.runner import EvalRun, EvalSpec, run_eval
from tradecast.evals.scoring import score
from tradecast.market.regimes import REGIMES
from tradecast.settings import Settings, StrategyConfig, load_settings

# late 2020: BTC/USDT trends up, so the trend agent buys and the book fills
START = datetime(2020, 11, 1, tzinfo=UTC)
DAY = timedelta(days=1)
STRATEGIES = {"trend", "mean_reversion", "breakout", "dca"}


def _settings(**strategy: Any) -> Settings:
    settings = load_settings()
    desk = settings.desk.model_copy(update={"strategy": StrategyConfig(**strategy), "memory_k": 0})
    return settings.model_copy(update={"desk": desk})


async def _run(tmp_path: Path, embedder: Any, settings: Settings, days: int) -> EvalRun:
    spec = EvalSpec(
        dataset=resolve_dataset("btc-usdt-1h"),
        start=START,
        end=START + days * DAY,
        every=DAY,
        horizon=DAY,
        out_dir=tmp_path / "run",
    )
    return await run_eval(  # type: ignore[arg-type]
        spec, settings, models=desk_models("hashed", seed=1), embedder=embedder
    )


async def test_strategies_vote_weighed_by_regime_and_record_and_stops_come_from_atr(
    tmp_path: Path, embedder: Any
) -> None:
    run = await _run(tmp_path, embedder, _settings(), days=12)
    rows = run.rows
    assert len(rows) == 13
    for row in rows:
        voters = {a["agent"] for a in row["attribution"]}
        assert voters >= STRATEGIES and row["regime"] in REGIMES
        assert all(a["weight_note"] for a in row["attribution"] if a["agent"] != "risk")
    assert any(r["regime"] == "trend_up" for r in rows)
    # the first decisions have no record yet; later ones are weighed by it
    assert "record 50% of 0" in rows[0]["attribution"][1]["weight_note"]
    assert any("of 0 " not in a["weight_note"] for a in rows[-1]["attribution"][1:5])
    buys = [o for o in run.orders if o.intent.side.value == "BUY"]
    assert buys, "the trend agent buys an up trend"
    for order in buys:
        row = next(r for r in rows if r["order_id"] == order.id)
        assert order.intent.stop_loss is not None
        assert order.intent.stop_loss < Decimal(row["price"]) * Decimal("0.97")
        assert "vol target" in row["sizing"]
    assert score(run).metrics["risk_violations"] == 0


async def test_the_broker_closes_a_position_at_its_time_stop(tmp_path: Path, embedder: Any) -> None:
    run = await _run(tmp_path, embedder, _settings(time_stop_days=2.0), days=8)
    stops = {o.id for o in run.orders if o.client_order_id.startswith("time_stop-")}
    exits = [f for f in run.fills if f.order_id in stops]
    assert exits, "a position held two days is closed by the broker"
    first_buy = min(f.timestamp for f in run.fills if f.side.value == "BUY")
    assert min(f.timestamp for f in exits) >= first_buy + 2 * DAY
    assert score(run).metrics["risk_violations"] == 0

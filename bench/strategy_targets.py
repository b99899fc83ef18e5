"""The strategy issue's targets, read from finished walk-forwards: over the whole chained
out-of-sample series, the desk's Sharpe against the best rule baseline's and its maximum
drawdown against half of buy-and-hold's, with 95% block-bootstrap intervals (the same
statistics as the walk-forward report).

Run: .venv/bin/python bench/strategy_targets.py WALK_FORWARD_DIR [...] [--config full]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from tradecast.evals import metrics, oos
from tradecast.evals.datasets import resolve_dataset

RULES = ("sma_crossover_20_50", "rsi_mean_reversion_14")


def _cell(stat: dict[str, float | None]) -> str:
    if stat["estimate"] is None:
        return "n/a"
    return f"{stat['estimate']:.3f} [{stat['low']:.3f}, {stat['high']:.3f}]"


def targets(out: Path, config: str, draws: int, seed: int) -> dict[str, object]:
    report = json.loads((out / "report.json").read_text())
    periods = metrics.periods_per_year(resolve_dataset(report["dataset"]["name"]).interval)
    frame = pd.read_csv(out / "oos.csv", header=[0, 1], index_col=0)[config].dropna()
    desk = oos.performance_intervals(frame["desk"].to_numpy(), periods, draws=draws, seed=seed)
    baselines = oos.baseline_performance(frame, periods, draws=draws, seed=seed)

    def sharpe(name: str) -> float:
        value = baselines[name]["sharpe"]["estimate"]
        return float("-inf") if value is None else value

    best = max(RULES, key=sharpe)
    half_hold = baselines["buy_and_hold"]["max_drawdown"]["estimate"] / 2
    return {
        "run": str(out),
        "configuration": config,
        "bars": len(frame),
        "desk": desk,
        "baselines": baselines,
        "best_rule": best,
        "sharpe_target_met": desk["sharpe"]["estimate"] is not None
        and desk["sharpe"]["estimate"] >= sharpe(best),
        "drawdown_target_met": desk["max_drawdown"]["estimate"] <= half_hold,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--config", default="full")
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for out in args.runs:
        result = targets(out, args.config, args.draws, args.seed)
        baselines = result["baselines"]
        assert isinstance(baselines, dict)
        print(f"{out} ({args.config}, {result['bars']} bars)")
        print("  | series | Sharpe [95% CI] | max drawdown [95% CI] | return [95% CI] |")
        for name, stats in {"desk": result["desk"], **baselines}.items():
            print(
                f"  | {name} | {_cell(stats['sharpe'])} | {_cell(stats['max_drawdown'])} "
                f"| {_cell(stats['cumulative_return'])} |"
            )
        print(
            f"  Sharpe >= best rule ({result['best_rule']}): {result['sharpe_target_met']}; "
            f"max drawdown <= half of buy-and-hold's: {result['drawdown_target_met']}"
        )


if __name__ == "__main__":
    main()

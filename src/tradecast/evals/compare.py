"""Two eval runs side by side: every metric with its change, and whether they are the same
experiment (dataset, window, fill price) and made the same trades."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tradecast.evals.report import FILES, load_report

DECISION_FIELDS = ("at", "action", "quantity", "price", "confidence", "approved", "fills")
"""What must match for two runs to have decided the same (latency and tokens may differ)."""


def compare_runs(a_dir: Path, b_dir: Path) -> dict[str, Any]:
    """The comparison of run directories ``a_dir`` and ``b_dir`` (ValueError if either has
    no report)."""
    a, b = load_report(a_dir), load_report(b_dir)
    rows = [
        _row(f"metrics.{name}", a["metrics"].get(name), b["metrics"].get(name))
        for name in _keys(a["metrics"], b["metrics"])
    ]
    for baseline in _keys(a["baselines"], b["baselines"]):
        left, right = a["baselines"].get(baseline, {}), b["baselines"].get(baseline, {})
        rows += [
            _row(f"{baseline}.{name}", left.get(name), right.get(name))
            for name in _keys(left, right)
        ]
    return {
        "a": str(a_dir),
        "b": str(b_dir),
        "same_dataset": a["dataset"]["sha256"] == b["dataset"]["sha256"],
        "same_window": a["window"] == b["window"],
        "same_fill": a.get("fill", "close") == b.get("fill", "close"),
        "same_trades": _same_file(a_dir / FILES["trades"], b_dir / FILES["trades"]),
        "same_decisions": _same_decisions(a_dir / FILES["decisions"], b_dir / FILES["decisions"]),
        "rows": rows,
    }


def is_single_eval(run_dir: Path) -> bool:
    """Whether ``run_dir`` is one eval's (not a walk-forward's); ValueError if no report."""
    return str(load_report(run_dir).get("format", "")).startswith("tradecast-eval/")


def _keys(left: dict[str, Any], right: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys([*left, *right]))


def _row(name: str, a: Any, b: Any) -> dict[str, Any]:
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
    return {"metric": name, "a": a, "b": b, "delta": (b - a) if numeric else None}


def _same_file(a: Path, b: Path) -> bool | None:
    if not (a.is_file() and b.is_file()):
        return None
    return a.read_bytes() == b.read_bytes()


def _same_decisions(a: Path, b: Path) -> bool | None:
    if not (a.is_file() and b.is_file()):
        return None
    return _decisions(a) == _decisions(b)


def _decisions(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [{k: row.get(k) for k in DECISION_FIELDS} for row in rows]

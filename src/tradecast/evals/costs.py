"""What a configuration costs to run: tokens, LLM seconds and, at a price per million tokens,
money per decision, per window and per unit of excess return over buy-and-hold."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tradecast.errors import EvalError


@dataclass(frozen=True)
class Prices:
    """Money per million prompt and completion tokens (None: no price configured)."""

    prompt: float | None = None
    completion: float | None = None

    @classmethod
    def of(cls, prompt: float | None, completion: float | None, ceiling: float) -> Prices:
        """Prices from the command line; completion defaults to the prompt price.

        Raises:
            EvalError: a negative, non-finite or too large price, or a completion price alone.
        """
        for name, value in (
            ("--price-per-mtok", prompt),
            ("--completion-price-per-mtok", completion),
        ):
            if value is not None and not (math.isfinite(value) and 0 <= value <= ceiling):
                raise EvalError(f"{name} must be 0 to {ceiling:,.0f} (got {value})")
        if prompt is None and completion is not None:
            raise EvalError("--completion-price-per-mtok needs --price-per-mtok as well")
        return cls(prompt, completion if completion is not None else prompt)

    def money(self, prompt_tokens: float, completion_tokens: float) -> float | None:
        """The price of these tokens, None without a price."""
        if self.prompt is None or self.completion is None:
            return None
        return (prompt_tokens * self.prompt + completion_tokens * self.completion) / 1e6


def cost_summary(
    windows: Sequence[Mapping[str, float]], prices: Prices, excess_return: float | None
) -> dict[str, Any]:
    """One configuration's cost over its windows (each a WindowResult.cost).

    Training runs are counted: they are part of what the configuration takes to run.
    ``excess_return`` is the out-of-sample cumulative return minus buy-and-hold's; the cost
    per percentage point of it is None when there is none (or no price).
    """
    total = {key: sum(w.get(key, 0.0) for w in windows) for key in _keys(windows)}
    decisions = total.get("train_decisions", 0) + total.get("test_decisions", 0)
    prompt = total.get("train_prompt_tokens", 0) + total.get("test_prompt_tokens", 0)
    completion = total.get("train_completion_tokens", 0) + total.get("test_completion_tokens", 0)
    seconds = total.get("train_llm_seconds", 0) + total.get("test_llm_seconds", 0)
    wall = total.get("train_seconds", 0) + total.get("test_seconds", 0)
    money = prices.money(prompt, completion)
    per_point = None
    if money is not None and excess_return is not None and excess_return > 0:
        per_point = money / (excess_return * 100)
    return {
        "decisions": int(decisions),
        "prompt_tokens": int(prompt),
        "completion_tokens": int(completion),
        "tokens_per_decision": (prompt + completion) / decisions if decisions else None,
        "llm_seconds": round(seconds, 3),
        "llm_seconds_per_decision": seconds / decisions if decisions else None,
        "decision_seconds": wall / decisions if decisions else None,
        "money": money,
        "money_per_decision": money / decisions if money is not None and decisions else None,
        "money_per_window": money / len(windows) if money is not None and windows else None,
        "money_per_point_of_excess_return": per_point,
        "prices_per_mtok": {"prompt": prices.prompt, "completion": prices.completion},
    }


def _keys(windows: Sequence[Mapping[str, float]]) -> list[str]:
    return list(dict.fromkeys(k for w in windows for k in w))

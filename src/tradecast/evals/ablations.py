"""Ablations: the same windows with parts of the desk taken out, to see what each earns.

Each configuration is the run's settings with one change, made here and nowhere else:

- ``full``: the desk as configured;
- ``rules_only``: no LLM agent votes (analyst, risk and trader left out) and no memory:
  the deterministic rules, the consensus and the risk gate (the persona still narrates);
- ``no_memory``: nothing is recalled (``memory_k`` 0), so a window needs no training;
- ``no_<agent>``: that LLM agent is never asked and its vote is removed. Without the risk
  agent the consensus keeps ``risk_abstain_fraction`` of the size, as it does whenever the
  risk agent abstains;
- ``no_news``: the analyst reads no news (only with a news source configured, and not part of
  ``all``, which must run without one);
- ``no_<strategy>`` (trend, mean_reversion, breakout, dca): that strategy agent does not vote;
- ``fixed_weights``: the consensus weights stay the configured base weights (no regime, no
  track record);
- ``sizing_<method>`` (volatility, kelly, fixed): BUYs sized by that method instead;
- ``exits_trader``: the trader agent's stop and target percentages instead of ATR exits.

``strategies`` names ``full`` and every strategy, weight, sizing and exit ablation;
``all`` names ``full``, ``rules_only``, ``no_memory`` and the LLM agents' ablations.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Literal, get_args

from tradecast.errors import EvalError
from tradecast.settings import (
    STRATEGY_NAMES,
    NewsConfig,
    Settings,
    SizingMethod,
    StrategyConfig,
    StrategyName,
    VotingLLMAgent,
)

Ablation = Literal[
    "full",
    "rules_only",
    "no_memory",
    "no_analyst",
    "no_risk",
    "no_trader",
    "no_news",
    "no_trend",
    "no_mean_reversion",
    "no_breakout",
    "no_dca",
    "fixed_weights",
    "sizing_volatility",
    "sizing_kelly",
    "sizing_fixed",
    "exits_trader",
]
_NAMED: tuple[Ablation, ...] = get_args(Ablation)
ABLATIONS: tuple[Ablation, ...] = _NAMED[: _NAMED.index("no_news")]
"""What ``all`` runs (``no_news`` is asked for by name)."""
STRATEGY_ABLATIONS: tuple[Ablation, ...] = ("full", *_NAMED[_NAMED.index("no_news") + 1 :])
"""What ``strategies`` runs: the deterministic parts switched off one at a time."""

_AGENTS: tuple[VotingLLMAgent, ...] = get_args(VotingLLMAgent)


def parse_ablations(text: str) -> tuple[Ablation, ...]:
    """``full,no_memory`` (or ``all``) as configurations, ``full`` first and no repeats.

    Raises:
        EvalError: an unknown name.
    """
    names = [n.strip().replace("-", "_") for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return ABLATIONS
    if names == ["strategies"]:
        return STRATEGY_ABLATIONS
    unknown = [n for n in names if n not in _NAMED]
    if unknown or not names:
        raise EvalError(
            f"unknown ablation {', '.join(unknown) or '(none given)'}: use 'all', 'strategies' "
            "or any of " + ", ".join(_NAMED)
        )
    chosen = [n for n in _NAMED if n in names]  # a fixed order: full first
    return tuple(chosen)


def ablated_settings(settings: Settings, ablation: Ablation) -> Settings:
    """``settings`` with ``ablation`` applied (the desk and news sections only).

    Raises:
        EvalError: ``no_news`` without a news source.
    """
    desk = settings.desk
    if ablation == "full":
        return settings
    if ablation == "no_news":
        if not settings.news.enabled():
            raise EvalError("the no_news ablation needs a news source (--news FILE)")
        return without_news(settings)
    if ablation == "rules_only":
        changed = desk.model_copy(update={"ablate": frozenset(_AGENTS), "memory_k": 0})
        settings = without_news(settings)  # only the analyst reads it
    elif ablation == "no_memory":
        changed = desk.model_copy(update={"memory_k": 0})
    elif ablation in _STRATEGY_CHANGES:
        strategy = desk.strategy.model_copy(update=_STRATEGY_CHANGES[ablation](desk.strategy))
        changed = desk.model_copy(update={"strategy": strategy})
    else:
        agent = ablation.removeprefix("no_")
        changed = desk.model_copy(update={"ablate": desk.ablate | {agent}})
    return settings.model_copy(update={"desk": changed})


def _without_strategy(config: StrategyConfig, name: StrategyName) -> dict[str, object]:
    return {"strategies": config.strategies - {name}}


def _sized(method: SizingMethod) -> dict[str, object]:
    return {"sizing": method}


_STRATEGY_CHANGES: dict[str, Callable[[StrategyConfig], dict[str, object]]] = {
    **{f"no_{name}": partial(_without_strategy, name=name) for name in STRATEGY_NAMES},
    "fixed_weights": lambda config: {"adaptive_weights": False},
    "sizing_volatility": lambda config: _sized("volatility"),
    "sizing_kelly": lambda config: _sized("kelly"),
    "sizing_fixed": lambda config: _sized("fixed"),
    "exits_trader": lambda config: {"exits": "trader"},
}


def without_news(settings: Settings) -> Settings:
    """``settings`` with every news source off."""
    return settings.model_copy(update={"news": NewsConfig()})


def reads_memory(settings: Settings) -> bool:
    """Whether the desk recalls past decisions (if not, a training run would be wasted)."""
    return settings.desk.memory_k > 0

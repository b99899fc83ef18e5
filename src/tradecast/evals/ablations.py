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
  ``all``, which must run without one).
"""

from __future__ import annotations

from typing import Literal, get_args

from tradecast.errors import EvalError
from tradecast.settings import AblatableAgent, NewsConfig, Settings

Ablation = Literal[
    "full", "rules_only", "no_memory", "no_analyst", "no_risk", "no_trader", "no_news"
]
ABLATIONS: tuple[Ablation, ...] = tuple(a for a in get_args(Ablation) if a != "no_news")
"""What ``all`` runs (``no_news`` is asked for by name)."""
_NAMED: tuple[Ablation, ...] = get_args(Ablation)

_AGENTS: tuple[AblatableAgent, ...] = get_args(AblatableAgent)


def parse_ablations(text: str) -> tuple[Ablation, ...]:
    """``full,no_memory`` (or ``all``) as configurations, ``full`` first and no repeats.

    Raises:
        EvalError: an unknown name.
    """
    names = [n.strip().replace("-", "_") for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return ABLATIONS
    unknown = [n for n in names if n not in _NAMED]
    if unknown or not names:
        raise EvalError(
            f"unknown ablation {', '.join(unknown) or '(none given)'}: use 'all' or any of "
            + ", ".join(_NAMED)
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
    else:
        agent = ablation.removeprefix("no_")
        changed = desk.model_copy(update={"ablate": desk.ablate | {agent}})
    return settings.model_copy(update={"desk": changed})


def without_news(settings: Settings) -> Settings:
    """``settings`` with every news source off."""
    return settings.model_copy(update={"news": NewsConfig()})


def reads_memory(settings: Settings) -> bool:
    """Whether the desk recalls past decisions (if not, a training run would be wasted)."""
    return settings.desk.memory_k > 0

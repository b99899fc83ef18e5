"""Chat models for eval tests: answers that depend on the prompt (so any change in what the
desk saw changes what it decided), or on a random draw (so only a cache can repeat them)."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult

from support.scripted_model import NO_TOOL, ScriptedChatModel
from tradecast.llm.tool_schema import message_from_tool_turn

Answer = Callable[[str, random.Random], Any]


class AnsweringModel(ScriptedChatModel):
    """A scripted model whose reply is ``answer(prompt text, rng)``; tool turns decline.

    With ``seed`` None the draws differ on every run (a model that is not reproducible).
    """

    answer: Any = None
    seed: int | None = None
    rng: Any = None
    tool_turn: dict[str, Any] = NO_TOOL
    """What a tool turn answers: no lookup by default, or a call such as
    {"name": "get_candles_summary", "arguments": {"symbol": "BTC/USDT"}}."""

    def model_post_init(self, context: Any) -> None:
        self.rng = random.Random(self.seed)
        self.script = [lambda messages: self.answer(prompt_text(messages), self.rng)]

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        if "tools" in kwargs:
            self.prompts.append(list(messages))
            usage = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
            message = message_from_tool_turn(json.dumps(self.tool_turn), usage)
            from langchain_core.outputs import ChatGeneration

            return ChatResult(generations=[ChatGeneration(message=message)])
        return super()._generate(messages, stop, run_manager, **kwargs)


def prompt_text(messages: list[BaseMessage]) -> str:
    """Every message's text, joined."""
    return "\n".join(str(m.content) for m in messages)


def _digest(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def hashed_view(text: str, rng: random.Random) -> dict[str, Any]:
    """An analyst view that is a pure function of the prompt."""
    value = _digest(text)
    return {
        "action": ("BUY", "SELL", "HOLD")[value % 3],
        "confidence": (value % 97) / 100,
        "rationale": f"view {value % 1000}",
    }


def hashed_trade(text: str, rng: random.Random) -> dict[str, Any]:
    """A trader proposal that is a pure function of the prompt."""
    value = _digest(text)
    return {
        "action": ("BUY", "SELL", "HOLD")[value % 3],
        "size_fraction": 0.5 + value % 50 / 100,
        "confidence": 0.4 + (value % 60) / 100,
        "stop_loss_pct": 0.02,
        "take_profit_pct": 0.04,
        "rationale": f"trade {value % 1000}",
    }


def random_view(text: str, rng: random.Random) -> dict[str, Any]:
    """An analyst view drawn at random."""
    return {
        "action": rng.choice(["BUY", "BUY", "SELL", "HOLD"]),
        "confidence": rng.uniform(0.5, 1.0),
        "rationale": "a coin flip",
    }


def random_trade(text: str, rng: random.Random) -> dict[str, Any]:
    """A trader proposal drawn at random."""
    return {
        "action": rng.choice(["BUY", "BUY", "SELL", "HOLD"]),
        "size_fraction": rng.uniform(0.2, 1.0),
        "confidence": rng.uniform(0.5, 1.0),
        "stop_loss_pct": 0.03,
        "take_profit_pct": 0.05,
        "rationale": "a coin flip",
    }


def review(text: str, rng: random.Random) -> dict[str, Any]:
    """A risk review that approves at full size."""
    return {
        "stance": "approve",
        "size_fraction": 1.0,
        "confidence": 0.7,
        "rationale": "within limits",
    }


def desk_models(
    kind: str = "hashed", seed: int | None = None, trader_tool: dict[str, Any] | None = None
) -> dict[str, AnsweringModel]:
    """One model per role; 'hashed' answers from the prompt, 'random' from an rng.
    ``trader_tool`` is the tool call the trader makes before proposing (none by default)."""
    view, trade = (hashed_view, hashed_trade) if kind == "hashed" else (random_view, random_trade)
    return {
        "analyst": AnsweringModel(answer=view, seed=seed),
        "risk": AnsweringModel(answer=review, seed=seed),
        "trader": AnsweringModel(answer=trade, seed=seed, tool_turn=trader_tool or NO_TOOL),
        "persona": AnsweringModel(answer=lambda text, rng: "Watching the tape closely!", seed=seed),
    }


def desk_models_for(settings: Any) -> dict[str, AnsweringModel]:
    """``desk_models("hashed", seed=1)`` for a walk-forward worker process (a module-level
    function, so a process can be handed it)."""
    return desk_models("hashed", seed=1)

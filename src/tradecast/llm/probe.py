"""Health probes of the configured chat model: a structured round trip and decode speed."""

from __future__ import annotations

import time
from typing import Any, Literal, cast

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field

from tradecast.errors import LLMError
from tradecast.llm.factory import model_label


class ProbeAnswer(BaseModel):
    """What the doctor asks the model for: a tiny, checkable structured answer."""

    action: Literal["BUY", "SELL", "HOLD"]
    confidence: float = Field(ge=0.0, le=1.0)


def probe_chat_model(model: BaseChatModel) -> dict[str, Any]:
    """Round-trip a structured answer and measure decode speed; never raises for LLM faults."""
    report: dict[str, Any] = {"model": model_label(model), "ok": False}
    try:
        started = time.perf_counter()
        # A pydantic schema's answer is a pydantic object (langchain types every structured
        # output as dict | BaseModel, the dict being for dict schemas and include_raw).
        answer = cast(
            BaseModel,
            model.with_structured_output(ProbeAnswer).invoke(
                "The price of BTC/USDT just rose 2% on rising volume. Decide BUY, SELL or HOLD."
            ),
        )
        report["structured_answer"] = answer.model_dump()
        report["structured_s"] = round(time.perf_counter() - started, 3)
        report.update(measure_decode(model))
        report["ok"] = isinstance(answer, ProbeAnswer)
    except LLMError as exc:
        report["error"] = f"{exc.kind}: {exc}"
    return report


DECODE_PROMPT = "Describe in three sentences what a stop-loss order does."


def measure_decode(
    model: BaseChatModel, prompt: str = DECODE_PROMPT, max_tokens: int = 64
) -> dict[str, float]:
    """Stream one answer: time to first token and completion tokens per second."""
    started = time.perf_counter()
    first: float | None = None
    tokens = 0
    for chunk in model.stream(prompt, max_tokens=max_tokens):
        if chunk.content:
            tokens += 1
            first = first or time.perf_counter()
    elapsed = time.perf_counter() - started
    decode = elapsed - ((first or started) - started)
    return {
        "time_to_first_token_s": round((first or started) - started, 4),
        "completion_tokens": tokens,
        "tokens_per_s": round(tokens / decode, 1) if decode > 0 and tokens else 0.0,
    }

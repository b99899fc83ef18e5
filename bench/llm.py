"""Embedded LLM speed: time to first token and decode tokens/s, free and JSON-constrained.

Run: .venv/bin/python bench/llm.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Literal

from pydantic import BaseModel, Field

from tradecast.llm import LlamaCppChatModel
from tradecast.llm.probe import measure_decode

PROMPTS = [
    "Describe in three sentences what a stop-loss order does.",
    "Explain what RSI measures, briefly.",
    "Why do traders watch the 50-period moving average?",
    "What is slippage in trading? Answer in two sentences.",
]


class Signal(BaseModel):
    action: Literal["BUY", "SELL", "HOLD"]
    confidence: float = Field(ge=0, le=1)
    rationale: str = Field(max_length=160)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=12)
    args = parser.parse_args()
    model = LlamaCppChatModel(max_tokens=96)
    model.invoke("warm up")
    ttft, tps = [], []
    for i in range(args.runs):
        figures = measure_decode(model, PROMPTS[i % len(PROMPTS)], max_tokens=96)
        ttft.append(figures["time_to_first_token_s"] * 1000)
        tps.append(figures["tokens_per_s"])
    structured = model.with_structured_output(Signal, include_raw=True)
    latencies, constrained_tps = [], []
    for i in range(args.runs):
        started = time.perf_counter()
        result = structured.invoke(f"Scenario {i}: BTC/USDT moved {i - 5}% today. Decide.")
        elapsed = time.perf_counter() - started
        latencies.append(elapsed * 1000)
        constrained_tps.append(result["raw"].usage_metadata["output_tokens"] / elapsed)
    print(f"model: {model.model_name}, runs: {args.runs}")
    print(
        f"free text: ttft p50 {statistics.median(ttft):.0f} ms, "
        f"p95 {percentile(ttft, 95):.0f} ms; decode {statistics.median(tps):.1f} tokens/s (p50)"
    )
    print(
        f"JSON-schema constrained: call p50 {statistics.median(latencies):.0f} ms, "
        f"p95 {percentile(latencies, 95):.0f} ms; {statistics.median(constrained_tps):.1f} "
        "tokens/s end to end (p50)"
    )


if __name__ == "__main__":
    main()

"""Prometheus metrics of one API process (its own registry, so apps never share counters)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from tradecast.agents.calls import LLMCall
from tradecast.graphs.runner import TickResult

TICK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)


class Metrics:
    """The desk's and the API's counters, gauges and histograms."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.ticks = Counter(
            "tradecast_ticks", "Desk ticks run, by outcome", ["status"], registry=r
        )
        self.tick_seconds = Histogram(
            "tradecast_tick_seconds", "Wall time of a desk tick", buckets=TICK_BUCKETS, registry=r
        )
        self.decisions = Counter(
            "tradecast_decisions", "Decisions, by action", ["action"], registry=r
        )
        self.risk_rejections = Counter(
            "tradecast_risk_rejections", "Orders the risk gate rejected", registry=r
        )
        self.fills = Counter("tradecast_fills", "Fills at the broker", registry=r)
        self.llm_calls = Counter(
            "tradecast_llm_calls", "LLM calls, by agent and success", ["agent", "ok"], registry=r
        )
        self.llm_tokens = Counter(
            "tradecast_llm_tokens", "LLM tokens, prompt or completion", ["kind"], registry=r
        )
        self.tick_errors = Counter(
            "tradecast_tick_errors",
            "Ticks that failed and were retried or skipped",
            ["kind"],
            registry=r,
        )
        self.events_published = Counter(
            "tradecast_events_published", "Events published on the streams", ["channel"], registry=r
        )
        self.sse_clients = Gauge(
            "tradecast_sse_clients", "SSE clients connected now", ["channel"], registry=r
        )
        self.sse_dropped = Counter(
            "tradecast_sse_clients_dropped",
            "SSE clients cut off for falling behind",
            ["channel"],
            registry=r,
        )
        self.sse_resyncs = Counter(
            "tradecast_sse_resyncs",
            "Resumes that could not be served from the buffer",
            ["channel"],
            registry=r,
        )
        self.rate_limited = Counter(
            "tradecast_rate_limited", "Control requests refused by the rate limit", registry=r
        )
        self.chat_messages = Counter(
            "tradecast_chat_messages",
            "Chat messages, by command",
            ["command", "applied"],
            registry=r,
        )

    def observe_tick(
        self, result: TickResult, previous: TickResult | None, *, whole_tick: bool = True
    ) -> None:
        """Count what ``result`` adds to the ``previous`` report of the same decision (if
        any); ``whole_tick`` False for a portfolio tick's other symbols (the tick is counted
        and timed once)."""
        new_calls: Sequence[LLMCall] = result.llm.by_agent
        if previous is not None:
            new_calls = new_calls[len(previous.llm.by_agent) :]
        else:
            if whole_tick:
                self.tick_seconds.observe(result.latency_ms.get("total", 0.0) / 1000)
            if result.decision:
                self.decisions.labels(result.decision.action.value).inc()
        if whole_tick and (previous is None or previous.status != result.status):
            self.ticks.labels(result.status).inc()
        for call in new_calls:
            self.llm_calls.labels(call.agent, str(call.ok).lower()).inc()
            self.llm_tokens.labels("prompt").inc(call.prompt_tokens)
            self.llm_tokens.labels("completion").inc(call.completion_tokens)
        if previous is None or not previous.fills:
            self.fills.inc(len(result.fills))

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)

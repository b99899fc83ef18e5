"""Bounded numbers get grammar rules that only admit in-range values; every answer the
grammar admits fits its token budget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from tradecast.agents.schemas import AnalystView, RiskReview, TraderProposal
from tradecast.llm.grammar import (
    DEFAULT_MAX_STRING,
    NON_NEGATIVE_NUMBER,
    POSITIVE_NUMBER,
    TEXT_CHAR,
    UNIT_INTERVAL,
    answer_token_bound,
    bounded_number_rule,
    grammar_for_schema,
)
from tradecast.llm.llamacpp import LlamaCppChatModel
from tradecast.llm.structured import schema_shape


def test_unit_interval_gets_its_own_rule():
    assert bounded_number_rule({"type": "number", "minimum": 0, "maximum": 1}) == UNIT_INTERVAL


def test_positive_and_non_negative_numbers_exclude_the_minus_sign():
    assert bounded_number_rule({"type": "number", "exclusiveMinimum": 0}) == POSITIVE_NUMBER
    assert bounded_number_rule({"type": "number", "minimum": 0}) == NON_NEGATIVE_NUMBER
    assert '"-"' not in POSITIVE_NUMBER and '"-"' not in NON_NEGATIVE_NUMBER


def test_small_integer_range_is_enumerated():
    rule = bounded_number_rule({"type": "integer", "minimum": -2, "maximum": 2})
    assert rule == '("-2" | "-1" | "0" | "1" | "2") space'


def test_unsupported_bounds_fall_back_to_validation():
    assert bounded_number_rule({"type": "number", "minimum": -3, "maximum": 7}) is None
    assert bounded_number_rule({"type": "number"}) is None


def test_grammar_of_a_pydantic_schema_uses_the_bounded_rules():
    class Signal(BaseModel):
        action: Literal["BUY", "SELL", "HOLD"]
        confidence: float = Field(ge=0, le=1)
        score: int = Field(ge=-5, le=5)

    grammar = grammar_for_schema(Signal.model_json_schema())
    assert UNIT_INTERVAL in grammar
    assert '"-5" | "-4"' in grammar
    assert '"\\"BUY\\""' in grammar


def test_free_strings_are_bounded_printable_ascii():
    grammar = grammar_for_schema({"type": "object", "properties": {"note": {"type": "string"}}})
    assert f"{TEXT_CHAR}{{0,{DEFAULT_MAX_STRING}}}" in grammar
    short = grammar_for_schema(
        {"type": "object", "properties": {"note": {"type": "string", "maxLength": 12}}}
    )
    assert f"{TEXT_CHAR}{{0,12}}" in short
    assert "char" not in short  # no escapes: one character is one byte is at most one token


def test_arrays_without_max_items_get_a_bound():
    grammar = grammar_for_schema(
        {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 3}}
    )
    assert "*" not in grammar and "+" not in grammar


def _longest_answer(schema: type[BaseModel]) -> str:
    """The longest text the grammar admits for the agents' flat schemas: every string at
    its cap, every unit interval at 5 characters, every optional space (``space ::= " "?``
    after a key, a colon, a comma, a brace and a string or number) taken."""
    parts = []
    for key, field in schema.model_json_schema()["properties"].items():
        if "enum" in field:
            value = json.dumps(max(field["enum"], key=len))  # a literal: no space after it
        elif field.get("type") == "string":
            value = json.dumps("x" * field["maxLength"]) + " "
        else:
            value = "0.123 "
        parts.append(f"{json.dumps(key)} : {value}")
    return "{ " + ", ".join(parts) + "} "


@pytest.mark.parametrize("schema", [AnalystView, RiskReview, TraderProposal])
def test_every_agent_answer_fits_its_token_bound(schema: type[BaseModel]):
    bound = answer_token_bound(schema.model_json_schema())
    assert bound is not None
    assert len(_longest_answer(schema)) < bound  # one ASCII byte per token at worst, + EOS


def test_unbounded_schemas_have_no_bound():
    assert answer_token_bound({"type": "object"}) is None
    assert answer_token_bound({"type": "string", "pattern": "^[a-z]+$"}) is None


def test_a_constrained_request_gets_the_whole_answer_budget_whatever_max_tokens_says():
    model = LlamaCppChatModel(model_path=Path("unused.gguf"), max_tokens=8)
    schema = TraderProposal.model_json_schema()
    request = model._request([HumanMessage("decide")], None, {"json_schema": schema})
    assert request["max_tokens"] == answer_token_bound(schema)
    free = model._request([HumanMessage("chat")], None, {})
    assert free["max_tokens"] == 8


def test_the_answer_hint_comes_last_so_the_context_stays_a_shared_prefix():
    model = LlamaCppChatModel(model_path=Path("unused.gguf"))
    messages = [SystemMessage("Market context: ..."), HumanMessage("You are the analyst.")]
    request = model._request(messages, None, {"json_schema": AnalystView.model_json_schema()})
    system, user = request["messages"]
    assert system == {"role": "system", "content": "Market context: ..."}
    assert user["content"].startswith("You are the analyst.")
    assert user["content"].endswith('"rationale": "<one short sentence>"}')


def test_a_flat_schema_is_shown_as_its_shape():
    assert schema_shape(RiskReview.model_json_schema()) == (
        '{"stance": "approve|shrink|veto", "size_fraction": 0..1, "confidence": 0..1, '
        '"rationale": "<text>"}'
    )
    assert schema_shape({"type": "object", "properties": {"a": {"type": "object"}}}) is None

"""Bounded numbers get grammar rules that only admit in-range values."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from tradecast.llm.grammar import (
    NON_NEGATIVE_NUMBER,
    POSITIVE_NUMBER,
    UNIT_INTERVAL,
    bounded_number_rule,
    grammar_for_schema,
)


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

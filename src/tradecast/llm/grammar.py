"""JSON schema to llama.cpp grammar, with numeric bounds enforced while decoding.

llama.cpp's own converter ignores ``minimum``/``maximum``; a 135M model then happily writes a
confidence of 5.0. Bounded numbers here get grammar rules that only admit values in range,
for the shapes agents use: unit intervals, non-negative and positive numbers, small integer
ranges. Other bounds fall back to the plain number rule and pydantic validation.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from llama_cpp.llama_grammar import LlamaGrammar, SchemaConverter

UNIT_INTERVAL = '("0" ("." [0-9]{1,3})? | "1" (".0")?) space'
NON_NEGATIVE_NUMBER = '("0" | [1-9] [0-9]{0,12}) ("." [0-9]{1,8})? space'
POSITIVE_NUMBER = '([1-9] [0-9]{0,12} ("." [0-9]{1,8})? | "0." [0-9]{0,7} [1-9]) space'
NON_NEGATIVE_INTEGER = '("0" | [1-9] [0-9]{0,12}) space'
POSITIVE_INTEGER = "[1-9] [0-9]{0,12} space"
MAX_ENUMERATED_INTEGERS = 256


def _lower_bound(schema: dict[str, Any]) -> tuple[float | None, bool]:
    if "exclusiveMinimum" in schema:
        return float(schema["exclusiveMinimum"]), True
    if "minimum" in schema:
        return float(schema["minimum"]), False
    return None, False


def _upper_bound(schema: dict[str, Any]) -> float | None:
    if "exclusiveMaximum" in schema:
        return float(schema["exclusiveMaximum"])
    return float(schema["maximum"]) if "maximum" in schema else None


def bounded_number_rule(schema: dict[str, Any]) -> str | None:
    """A GBNF body that admits only in-range values, or None when no special rule fits."""
    kind = schema.get("type")
    low, exclusive = _lower_bound(schema)
    high = _upper_bound(schema)
    if kind == "integer" and low is not None and high is not None:
        first = int(low) + (1 if exclusive else 0)
        last = int(high) - (1 if "exclusiveMaximum" in schema else 0)
        if 0 <= last - first <= MAX_ENUMERATED_INTEGERS:
            values = " | ".join(f'"{value}"' for value in range(first, last + 1))
            return f"({values}) space"
    if low is None or low < 0:
        return None
    if kind == "number" and low == 0 and not exclusive and high == 1:
        return UNIT_INTERVAL
    if kind == "number" and high is None:
        return POSITIVE_NUMBER if exclusive or low > 0 else NON_NEGATIVE_NUMBER
    if kind == "integer" and high is None:
        return POSITIVE_INTEGER if exclusive or low > 0 else NON_NEGATIVE_INTEGER
    return None


class BoundedSchemaConverter(SchemaConverter):
    """llama.cpp's schema converter plus rules for bounded numbers."""

    def visit(self, schema: dict[str, Any], name: str) -> str:
        if schema.get("type") in ("number", "integer"):
            rule = bounded_number_rule(schema)
            if rule is not None:
                return self._add_rule(name or "root", rule)
        return super().visit(schema, name)


def grammar_for_schema(schema: dict[str, Any]) -> str:
    """The GBNF grammar text that admits exactly the JSON documents ``schema`` describes."""
    converter = BoundedSchemaConverter(
        prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False
    )
    resolved = converter.resolve_refs(json.loads(json.dumps(schema)), "schema")
    converter.visit(resolved, "")
    return converter.format_grammar()


def llama_grammar(schema: dict[str, Any]) -> LlamaGrammar:
    """A compiled llama.cpp grammar for ``schema`` (compiled once per distinct schema)."""
    return _compiled(json.dumps(schema, sort_keys=True))


@lru_cache(maxsize=128)
def _compiled(schema_json: str) -> LlamaGrammar:
    return LlamaGrammar.from_string(grammar_for_schema(json.loads(schema_json)), verbose=False)

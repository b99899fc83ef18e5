"""JSON schema to llama.cpp grammar, with numeric bounds enforced while decoding.

llama.cpp's own converter ignores ``minimum``/``maximum``; a 135M model then happily writes a
confidence of 5.0. Bounded numbers here get grammar rules that only admit values in range,
for the shapes agents use: unit intervals, non-negative and positive numbers, small integer
ranges. Other bounds fall back to the plain number rule and pydantic validation.

Every answer is also bounded in length, so it always closes within its token budget: free
strings are printable ASCII without escapes, at most ``maxLength`` characters (or
``DEFAULT_MAX_STRING``), arrays at most ``maxItems`` items (or ``DEFAULT_MAX_ITEMS``). Every
token is at least one byte, so an ASCII answer of at most N characters takes at most N
tokens: :func:`answer_token_bound` is a budget the whole object always fits in.
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
# Printable ASCII less the quote and the backslash: one character, one byte, no escapes.
TEXT_CHAR = r"[ !#-\[\]-~]"
DEFAULT_MAX_STRING = 600
DEFAULT_MAX_ITEMS = 16
# Longest text of llama.cpp's plain number and integer rules (sign, 16 digits, fraction of
# 16, exponent of 17), and of this module's bounded rules, each with its trailing space.
_NUMBER_CHARS = 52
_INTEGER_CHARS = 18
_BOUNDED_RULE_CHARS = {
    UNIT_INTERVAL: 6,
    NON_NEGATIVE_NUMBER: 23,
    POSITIVE_NUMBER: 23,
    NON_NEGATIVE_INTEGER: 14,
    POSITIVE_INTEGER: 14,
}


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


def _is_free_string(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "string" and not (
        {"enum", "const", "pattern", "format"} & schema.keys()
    )


def text_rule(schema: dict[str, Any]) -> str:
    """A bounded string of printable ASCII: ``minLength`` to ``maxLength`` characters."""
    low = int(schema.get("minLength", 0))
    high = max(low, int(schema.get("maxLength", DEFAULT_MAX_STRING)))
    return f'"\\"" {TEXT_CHAR}{{{low},{high}}} "\\"" space'


class BoundedSchemaConverter(SchemaConverter):
    """llama.cpp's schema converter plus rules for bounded numbers, strings and arrays."""

    def visit(self, schema: dict[str, Any], name: str) -> str:
        if schema.get("type") in ("number", "integer"):
            rule = bounded_number_rule(schema)
            if rule is not None:
                return self._add_rule(name or "root", rule)
        if _is_free_string(schema):
            return self._add_rule(name or "root", text_rule(schema))
        if schema.get("type") == "array" and "maxItems" not in schema:
            schema = {**schema, "maxItems": max(DEFAULT_MAX_ITEMS, schema.get("minItems", 0))}
        return super().visit(schema, name)


def answer_token_bound(schema: dict[str, Any]) -> int | None:
    """The most tokens an answer the grammar of ``schema`` admits can take (None: unbounded).

    Counts characters of the longest admitted text (``space`` is one character at most), which
    bounds tokens because every admitted character is one ASCII byte.
    """
    try:
        return _max_chars(schema, schema.get("$defs", {})) + 1  # + the end-of-text token
    except _Unbounded:
        return None


class _Unbounded(Exception):
    """The schema admits answers of any length (a free object or value)."""


def _max_chars(schema: dict[str, Any], defs: dict[str, Any]) -> int:
    if "$ref" in schema:
        return _max_chars(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "const" in schema:
        return len(json.dumps(schema["const"])) + 1
    if "enum" in schema:
        return max(len(json.dumps(value)) for value in schema["enum"]) + 1
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return max(_max_chars(option, defs) for option in schema[key])
    kind = schema.get("type")
    if kind in ("number", "integer"):
        return _number_chars(schema)
    if _is_free_string(schema):
        low = int(schema.get("minLength", 0))
        return max(low, int(schema.get("maxLength", DEFAULT_MAX_STRING))) + 3  # quotes, space
    if kind == "boolean":
        return 6
    if kind == "null":
        return 5
    if kind == "array" and isinstance(schema.get("items"), dict):
        count = int(schema.get("maxItems", max(DEFAULT_MAX_ITEMS, schema.get("minItems", 0))))
        return 3 + count * (_max_chars(schema["items"], defs) + 2)
    if (
        kind in (None, "object")
        and "properties" in schema
        and not schema.get("additionalProperties")
    ):
        fields = schema["properties"].items()
        # "{" space, then per field: key space ":" space value "," space; "}" space
        return 4 + sum(len(json.dumps(k)) + 5 + _max_chars(v, defs) for k, v in fields)
    raise _Unbounded


def _number_chars(schema: dict[str, Any]) -> int:
    rule = bounded_number_rule(schema)
    if rule is None:
        return _NUMBER_CHARS if schema.get("type") == "number" else _INTEGER_CHARS
    if rule in _BOUNDED_RULE_CHARS:
        return _BOUNDED_RULE_CHARS[rule]
    return max(len(value) for value in rule.split('"')[1::2]) + 1  # enumerated integers


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

"""Structured output shared by every backend: a JSON schema in, a validated object out.

Both backends constrain decoding with the schema (llama.cpp grammar, Ollama ``format``); this
module turns the answer into the requested type and maps any failure to one ``LLMError``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableLambda, RunnableMap
from pydantic import BaseModel, ValidationError

from tradecast.errors import LLMError

StructuredSchema = type[BaseModel] | dict[str, Any]


def json_schema_of(schema: StructuredSchema) -> dict[str, Any]:
    """The JSON schema that constrains decoding for ``schema`` (treat it as read-only)."""
    if isinstance(schema, dict):
        return schema
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return _model_schema(schema)
    raise TypeError(f"structured output needs a pydantic model or a JSON schema, got {schema!r}")


@functools.cache
def _model_schema(schema: type[BaseModel]) -> dict[str, Any]:
    # pydantic rebuilds the schema on every call (~0.3 ms); agents ask for it on every call
    return schema.model_json_schema()


def schema_name(schema: StructuredSchema) -> str:
    """A short name for ``schema`` in error messages."""
    if isinstance(schema, dict):
        return str(schema.get("title", "JSON object"))
    return schema.__name__


def parse_structured(message: BaseMessage, schema: StructuredSchema) -> Any:
    """Parse a model answer into ``schema``, raising ``LLMError('unparseable')`` when it is not."""
    text = message.content if isinstance(message.content, str) else json.dumps(message.content)
    name = schema_name(schema)
    if not text.strip():
        raise LLMError("unparseable", f"the model gave an empty answer where {name} was expected")
    try:
        # strict=False: the grammar's string rule admits raw control characters (see
        # tool_schema.message_from_tool_turn)
        data = json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        raise LLMError(
            "unparseable", f"the model's answer is not JSON ({exc.msg}): {text[:200]!r}"
        ) from None
    if isinstance(schema, dict):
        if not isinstance(data, dict):
            raise LLMError("unparseable", f"expected a JSON object for {name}, got {text[:200]!r}")
        return data
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise LLMError(
            "unparseable",
            f"the model's answer does not fit {name}: {exc.errors()[0]['msg']} "
            f"at {'.'.join(map(str, exc.errors()[0]['loc'])) or 'top level'}",
        ) from None


def structured_runnable(
    bound: Runnable[Any, BaseMessage], schema: StructuredSchema, *, include_raw: bool
) -> Runnable[Any, Any]:
    """Chain a schema-constrained model with the parser, LangChain-style (``include_raw``)."""

    def parse(message: BaseMessage) -> Any:
        return parse_structured(message, schema)

    def parse_with_raw(values: dict[str, Any]) -> dict[str, Any]:
        raw: AIMessage = values["raw"]
        try:
            return {"raw": raw, "parsed": parse_structured(raw, schema), "parsing_error": None}
        except LLMError as exc:
            return {"raw": raw, "parsed": None, "parsing_error": exc}

    if not include_raw:
        return bound | _inline_lambda(parse, "parse")
    return RunnableMap(raw=bound) | _inline_lambda(parse_with_raw, "parse_with_raw")


def _inline_lambda(func: Callable[[Any], Any], name: str) -> RunnableLambda[Any, Any]:
    # Without an async twin, RunnableLambda.ainvoke runs a sync function on a worker thread:
    # a thread hop per structured call, for microseconds of parsing.
    async def afunc(value: Any) -> Any:
        return func(value)

    return RunnableLambda(func, afunc=afunc, name=name)


def compact_schema(schema: Any) -> Any:
    """``schema`` without titles and descriptions: fewer prompt tokens, and small models
    otherwise parrot the descriptions back as values."""
    if isinstance(schema, dict):
        return {
            key: compact_schema(value)
            for key, value in schema.items()
            if not (key in ("title", "description") and isinstance(value, str))
        }
    if isinstance(schema, list):
        return [compact_schema(item) for item in schema]
    return schema


def schema_instruction(schema: dict[str, Any]) -> str:
    """A line that tells the model what JSON to write (decoding enforces it).

    A flat object is shown as its shape (``{"action": "BUY|SELL|HOLD", "confidence":
    0..1}``): a third of the prompt tokens of its JSON schema, and the grammar holds the
    exact rules anyway. Anything else is shown as its compact JSON schema.
    """
    shape = schema_shape(schema)
    if shape is not None:
        return f"Answer with one JSON object like {shape}"
    return "Answer with one JSON object that matches this JSON schema:\n" + json.dumps(
        compact_schema(schema), separators=(",", ":")
    )


def schema_shape(schema: dict[str, Any]) -> str | None:
    """``{"key": <what goes there>, ...}`` for an object of simple fields, else None."""
    properties = schema.get("properties")
    if schema.get("type") != "object" or not isinstance(properties, dict) or not properties:
        return None
    fields = []
    for key, field in properties.items():
        hint = _field_hint(field)
        if hint is None:
            return None
        fields.append(f"{json.dumps(key)}: {hint}")
    return "{" + ", ".join(fields) + "}"


def _field_hint(field: dict[str, Any]) -> str | None:
    if "enum" in field and all(isinstance(v, str) for v in field["enum"]):
        return json.dumps("|".join(field["enum"]))
    kind = field.get("type")
    if kind in ("number", "integer") and "minimum" in field and "maximum" in field:
        return f"{field['minimum']:g}..{field['maximum']:g}"
    if kind in ("number", "integer", "boolean"):
        return kind
    if kind == "string" and not ({"pattern", "format", "const"} & field.keys()):
        return json.dumps(f"<{field.get('description', 'text')}>")
    return None

"""Graph state, stream chunks and snapshots as the JSON LangGraph's server sends.

Domain models dump as their JSON (Decimal as text); LangChain messages as LangGraph's
message dicts (``type`` ``human``/``ai``, ``content``, ``id``...); an ``Interrupt`` as
``{"id", "value"}``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.types import Interrupt, StateSnapshot
from pydantic import BaseModel


def jsonable(value: Any) -> Any:
    """``value`` with every part turned into JSON types."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, BaseMessage):
        return {**jsonable(value.model_dump(exclude={"type"})), "type": value.type}
    if isinstance(value, Interrupt):
        return {"id": value.id, "value": jsonable(value.value)}
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return str(value)


def checkpoint_ref(config: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """LangGraph's ``Checkpoint`` of a snapshot's config."""
    if not config:
        return None
    conf = config.get("configurable", {})
    return {
        "thread_id": conf.get("thread_id"),
        "checkpoint_ns": conf.get("checkpoint_ns", ""),
        "checkpoint_id": conf.get("checkpoint_id"),
        "checkpoint_map": conf.get("checkpoint_map"),
    }


def thread_state(snapshot: StateSnapshot) -> dict[str, Any]:
    """LangGraph's ``ThreadState`` of a snapshot (with the top-level ``interrupts``)."""
    tasks = [
        {
            "id": task.id,
            "name": task.name,
            "path": jsonable(task.path),
            "error": str(task.error) if task.error else None,
            "interrupts": jsonable(task.interrupts),
            "checkpoint": None,
            "state": None,
            "result": jsonable(task.result),
        }
        for task in snapshot.tasks
    ]
    return {
        "values": jsonable(snapshot.values),
        "next": list(snapshot.next),
        "tasks": tasks,
        "checkpoint": checkpoint_ref(snapshot.config),
        "parent_checkpoint": checkpoint_ref(snapshot.parent_config),
        "metadata": jsonable(snapshot.metadata or {}),
        "created_at": snapshot.created_at,
        "interrupts": [i for task in tasks for i in task["interrupts"]],
    }


def interrupts_by_task(snapshot: StateSnapshot) -> dict[str, list[Any]]:
    """A thread's ``interrupts``: the pending interrupts by task id."""
    return {task.id: jsonable(task.interrupts) for task in snapshot.tasks if task.interrupts}

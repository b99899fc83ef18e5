"""Request bodies of the LangGraph Server protocol, as its SDK and Agent Chat UI send them.

Fields the desk has no use for are ignored, as LangGraph's server ignores unknown keys; the
ones that would change what a run does and that the desk cannot honour (``webhook``,
``interrupt_before``...) are refused rather than silently dropped. Every number is bounded
and every boolean strict.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
)

from tradecast.api.schemas import THREAD_ID_PATTERN, Metadata

MultitaskStrategy = Literal["reject", "interrupt", "rollback", "enqueue"]
StreamMode = Literal[
    "values", "updates", "messages-tuple", "custom", "events", "debug", "tasks", "checkpoints"
]
STREAM_MODES: tuple[str, ...] = StreamMode.__args__  # type: ignore[attr-defined]
ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
MAX_PAGE = 1000
MAX_OFFSET = 1_000_000


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CheckpointRef(_Body):
    """Where on a thread to start (LangGraph's ``Checkpoint``)."""

    checkpoint_id: str | None = Field(default=None, max_length=64)
    checkpoint_ns: str = Field(default="", max_length=200)
    thread_id: str | None = Field(default=None, max_length=100)


class RunCommand(_Body):
    """LangGraph's ``Command``: ``resume`` answers an interrupt; ``goto: "__end__"`` marks
    a chat thread's pending review resolved."""

    resume: Any = None
    goto: Literal["__end__"] | None = None
    update: Any = None

    @field_validator("update")
    @classmethod
    def _no_update(cls, value: Any) -> Any:
        if value is not None:
            raise ValueError("command.update is not supported: the desk's state is its own")
        return value


class RunCreate(_Body):
    """A run (LangGraph's ``RunCreate``): assistant ``desk`` (a tick, or the answer to an
    approval with ``command.resume``) or ``chat`` (a message)."""

    assistant_id: str = Field(min_length=1, max_length=100)
    input: Any = None
    command: RunCommand | None = None
    metadata: Metadata | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    stream_mode: str | list[str] = "values"
    stream_subgraphs: StrictBool = False
    stream_resumable: StrictBool = False
    on_disconnect: Literal["cancel", "continue"] = "continue"
    multitask_strategy: MultitaskStrategy = "reject"
    if_not_exists: Literal["create", "reject"] = "reject"
    checkpoint: CheckpointRef | None = None
    checkpoint_id: str | None = Field(default=None, max_length=64)
    on_completion: Literal["delete", "keep"] = "delete"
    after_seconds: int = Field(default=0, ge=0, le=0)
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    webhook: str | None = None

    @field_validator("stream_mode")
    @classmethod
    def _known_modes(cls, value: str | list[str]) -> str | list[str]:
        modes = [value] if isinstance(value, str) else value
        unknown = [m[:30] for m in modes if m not in STREAM_MODES]
        if unknown or len(modes) > len(STREAM_MODES):
            raise ValueError(
                f"unknown stream mode {', '.join(unknown) or '(too many)'}; available: "
                + ", ".join(STREAM_MODES)
            )
        return value

    @field_validator("interrupt_before", "interrupt_after", "webhook")
    @classmethod
    def _unsupported(cls, value: Any) -> Any:
        if value:
            raise ValueError(
                "not supported by the desk (breakpoints and webhooks would change when and "
                "where a trade is decided)"
            )
        return value

    def modes(self) -> list[str]:
        """The stream modes asked for, without repeats."""
        modes = [self.stream_mode] if isinstance(self.stream_mode, str) else self.stream_mode
        return list(dict.fromkeys(modes or ["values"]))

    def start_at(self) -> str | None:
        """The checkpoint id to run from (None: the thread's latest)."""
        if self.checkpoint is not None and self.checkpoint.checkpoint_id:
            return self.checkpoint.checkpoint_id
        return self.checkpoint_id


class ThreadCreate(_Body):
    """LangGraph's ``ThreadCreate``."""

    thread_id: str | None = Field(default=None, pattern=THREAD_ID_PATTERN)
    metadata: Metadata = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    graph_id: str | None = Field(default=None, max_length=100)


class ThreadPatch(_Body):
    """LangGraph's thread update: metadata merged into the thread's."""

    metadata: Metadata


class ThreadSearch(_Body):
    """LangGraph's ``POST /threads/search`` body."""

    metadata: Metadata | None = None
    values: dict[str, Any] | None = None
    ids: list[str] | None = Field(default=None, max_length=MAX_PAGE)
    status: ThreadStatus | None = None
    limit: int = Field(default=10, ge=1, le=MAX_PAGE)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at"] = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"
    select: list[str] | None = Field(default=None, max_length=20)


class StateAt(_Body):
    """``POST /threads/{id}/state/checkpoint``: the state at one checkpoint."""

    checkpoint: CheckpointRef
    subgraphs: StrictBool = False


class ThreadHistory(_Body):
    """LangGraph's ``POST /threads/{id}/history`` body."""

    limit: int = Field(default=10, ge=1, le=MAX_PAGE)
    before: Annotated[str, StringConstraints(max_length=64)] | CheckpointRef | None = None
    metadata: Metadata | None = None
    checkpoint: CheckpointRef | None = None

    @field_validator("metadata")
    @classmethod
    def _filter_keys(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # the checkpointers match metadata keys by name in their queries
        for key in value or {}:
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", key):
                raise ValueError(
                    f"metadata key {key[:40]!r}: letters, digits and _.- (1 to 64 of them)"
                )
        return value


class AssistantSearch(_Body):
    """LangGraph's ``POST /assistants/search`` body."""

    metadata: Metadata | None = None
    graph_id: str | None = Field(default=None, max_length=100)
    name: str | None = Field(default=None, max_length=100)
    limit: int = Field(default=10, ge=1, le=MAX_PAGE)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    sort_by: Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[str] | None = Field(default=None, max_length=20)

"""The types of the journal's events: one :class:`~typing.TypedDict` per kind.

The constructors that build them, and the description of every field, are in
:mod:`kernelflow.store.events` (which re-exports these types).
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

__all__ = [
    "ArtifactEvent",
    "ArtifactUpdateEvent",
    "CacheDeleteEvent",
    "CacheHitEvent",
    "CacheWriteEvent",
    "EmittedEvent",
    "FlowRunEvent",
    "InputsEvent",
    "JournalEvent",
    "LogEvent",
    "OutputsEvent",
    "ProcessEvent",
    "StateEvent",
    "TaskRunEvent",
]


class _ProcessRequired(TypedDict):
    ev: Literal["process"]
    host: str
    pid: int
    start_ticks: int
    boot_id: str
    argv: list[str]
    t: float


class ProcessEvent(_ProcessRequired, total=False):
    """The first line of a journal (part): the process that writes it."""

    part: int


class FlowRunEvent(TypedDict):
    """A flow run was created."""

    ev: Literal["flow_run"]
    id: str
    flow_name: str
    name: str
    version: str | None
    parent_flow_run_id: str | None
    parent_task_run_id: str | None
    deployment_id: str | None
    parameters: dict[str, Any]
    tags: list[str]
    t: float


class _TaskRunRequired(TypedDict):
    ev: Literal["task_run"]
    id: str
    flow_run_id: str | None
    task_name: str
    name: str
    tags: list[str]
    cache_key: str | None
    inputs: dict[str, dict[str, str | None]]
    t: float


class TaskRunEvent(_TaskRunRequired, total=False):
    """A task run was created (and, with ``pending``, entered its plain Pending)."""

    pending: Literal[True]


class _StateRequired(TypedDict):
    ev: Literal["state"]
    run_id: str
    kind: str
    type: str
    name: str
    t: float
    run_count: int


class StateEvent(_StateRequired, total=False):
    """A run entered a state."""

    message: str
    start_time: float
    end_time: float
    result: str


class LogEvent(TypedDict):
    """A log record of a run."""

    ev: Literal["log"]
    run_id: str | None
    kind: str
    level: int
    logger: str
    message: str
    t: float


class InputsEvent(TypedDict):
    """A task run's cache key and input hashes, once its inputs are resolved."""

    ev: Literal["inputs"]
    run_id: str
    cache_key: str | None
    inputs: dict[str, Any]


class OutputsEvent(TypedDict):
    """A ``%%task`` cell's outputs (name -> value hash)."""

    ev: Literal["outputs"]
    run_id: str
    outputs: dict[str, Any]


class CacheWriteEvent(TypedDict):
    """A cache entry was written."""

    ev: Literal["cache_write"]
    key: str
    task_name: str
    result: str
    checksum: str
    size: int
    created: float
    expires: float | None
    task_run_id: str | None
    duration: float


class CacheHitEvent(TypedDict):
    """A task run found its result in the cache."""

    ev: Literal["cache_hit"]
    key: str
    task_run_id: str | None
    t: float


class CacheDeleteEvent(TypedDict):
    """A cache entry was removed."""

    ev: Literal["cache_delete"]
    key: str
    t: float


class ArtifactEvent(TypedDict):
    """An artifact was created."""

    ev: Literal["artifact"]
    id: str
    key: str | None
    type: str | None
    description: str | None
    data: str
    flow_run_id: str | None
    task_run_id: str | None
    t: float


class ArtifactUpdateEvent(TypedDict):
    """A progress artifact moved."""

    ev: Literal["artifact_update"]
    id: str
    data: str
    description: str | None
    t: float


class EmittedEvent(TypedDict):
    """An event emitted with ``emit_event``."""

    ev: Literal["event"]
    id: str
    event: str
    occurred: float
    resource: dict[str, str]
    related: list[dict[str, str]]
    payload: dict[str, Any]
    flow_run_id: str | None
    task_run_id: str | None
    t: float


#: Any journal line.
JournalEvent = (
    ProcessEvent
    | FlowRunEvent
    | TaskRunEvent
    | StateEvent
    | LogEvent
    | InputsEvent
    | OutputsEvent
    | CacheWriteEvent
    | CacheHitEvent
    | CacheDeleteEvent
    | ArtifactEvent
    | ArtifactUpdateEvent
    | EmittedEvent
)

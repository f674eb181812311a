"""The journal's event schema: one typed constructor per event kind.

Every line a journal holds (:mod:`kernelflow.store.journal`) is built by one
of the constructors below, so the schema lives here, in code; the fold's
field table (:data:`kernelflow.store.fold_sql.EVENT_TYPE`) types the same
fields, and ``tests/store/test_events_schema.py`` checks that they agree and
that no other module builds an event by hand.

Format: one JSON object per line. Times are Unix epoch seconds (float). The
first line of a file describes the process; every other line has an ``ev``
field naming its kind, written first (the fold tells the kinds apart by a
line's first bytes):

``process``
    ``host``, ``pid``, ``start_ticks``, ``boot_id``, ``argv``, ``t``; and, in
    a rotated part of a journal, ``part`` (1, 2, ...).
``flow_run``
    a flow run was created: ``id``, ``flow_name``, ``name``, ``version``,
    ``parent_flow_run_id``, ``parent_task_run_id``, ``deployment_id``,
    ``parameters`` (name -> short repr), ``tags`` (list), ``t``.
``task_run``
    a task run was created: ``id``, ``flow_run_id`` (may be null), ``task_name``,
    ``name``, ``tags``, ``cache_key`` (may be null), ``inputs`` (name ->
    ``{"hash": str|null, "upstream": task_run_id|null}``), ``t``; and, last,
    ``"pending": true`` when the line also stands for the run's first state: a
    plain ``Pending`` (no message, ``run_count`` 0) at time ``t``. Journals
    written before that field existed have a ``state`` line for that Pending
    instead; the fold reads both.
``state``
    a run entered a state: ``run_id``, ``kind`` (``"flow"`` or ``"task"``),
    ``type`` (``StateType`` value, e.g. ``"COMPLETED"``), ``name`` (e.g.
    ``"Cached"``), ``message``, ``t``, ``run_count`` (tries so far),
    ``start_time`` (first Running, or null), ``end_time`` (set on terminal
    states), ``result`` (a result file path relative to home, or null).
    A null ``message``, ``start_time``, ``end_time`` or ``result`` is left
    out (older journals write it as ``null``; both read the same).
    The last ``state`` line of a run is its current state.
``log``
    ``run_id`` (may be null), ``kind``, ``level`` (int), ``logger``, ``message``, ``t``.
``inputs``
    the cache key and input hashes, known once inputs are resolved: ``run_id``,
    ``cache_key``, ``inputs`` (name -> value hash).
``outputs``
    a ``%%task`` cell's outputs: ``run_id``, ``outputs`` (name -> value hash).
``cache_write`` / ``cache_hit`` / ``cache_delete``
    ``key``; for writes also ``task_name``, ``result``, ``checksum``, ``size``,
    ``created``, ``expires`` (or null), ``task_run_id``, ``duration``;
    for hits ``task_run_id`` and ``t``; for deletes ``t``.
``artifact``
    an artifact was created (:mod:`kernelflow.artifacts`): ``id``, ``key`` (may
    be null), ``type`` (``"markdown"``, ``"table"``, ``"progress"``...),
    ``description`` (may be null), ``data`` (text: markdown, the table as JSON,
    the progress as a number), ``flow_run_id``, ``task_run_id`` (either may be
    null), ``t``.
``artifact_update``
    a progress artifact moved: ``id``, ``data``, ``description`` (null keeps
    the one it has), ``t``.
``event``
    ``emit_event`` (:mod:`kernelflow.events`): ``id``, ``event`` (its name),
    ``occurred`` (epoch seconds), ``resource`` (labels), ``related`` (list of
    labels), ``payload`` (object), ``flow_run_id``, ``task_run_id``, ``t``.

Variables and secrets are never journaled: variables are written straight
into the database (:mod:`kernelflow.store.variables`), secrets into private
files (:mod:`kernelflow.store.secrets`).

The constructors are on per-task paths: each is one dict literal (the keys in
the order above, which is the order the bytes are written in), with no
checks; the fields that are left out when null or false are added by a plain
``if``. Arguments are keyword-only and named as the fields, and each returns
the kind's :class:`~typing.TypedDict` (defined in
:mod:`kernelflow.store.event_types`, re-exported here and loaded on first use:
building 13 TypedDicts would cost every import of kernelflow ~2 ms). :data:`FIELDS` reads
each kind's fields off its constructor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from kernelflow.store.event_types import (
        ArtifactEvent,
        ArtifactUpdateEvent,
        CacheDeleteEvent,
        CacheHitEvent,
        CacheWriteEvent,
        EmittedEvent,
        FlowRunEvent,
        InputsEvent,
        JournalEvent,
        LogEvent,
        OutputsEvent,
        ProcessEvent,
        StateEvent,
        TaskRunEvent,
    )

__all__ = [
    "FIELDS",
    "KINDS",
    "OPTIONAL_FIELDS",
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
    "artifact_created",
    "artifact_updated",
    "cache_deleted",
    "cache_hit",
    "cache_written",
    "event_emitted",
    "flow_run_created",
    "inputs_known",
    "log_record",
    "outputs_recorded",
    "process_started",
    "state_entered",
    "task_run_created",
]


def process_started(
    *, host: str, pid: int, start_ticks: int, boot_id: str, argv: list[str], t: float, part: int = 0
) -> ProcessEvent:
    """The ``process`` line that starts a journal; ``part`` is written only when not 0."""
    event: ProcessEvent = {
        "ev": "process",
        "host": host,
        "pid": pid,
        "start_ticks": start_ticks,
        "boot_id": boot_id,
        "argv": argv,
        "t": t,
    }
    if part:
        event["part"] = part
    return event


def flow_run_created(
    *,
    id: str,
    flow_name: str,
    name: str,
    version: str | None,
    parent_flow_run_id: str | None,
    parent_task_run_id: str | None,
    deployment_id: str | None,
    parameters: dict[str, Any],
    tags: list[str],
    t: float,
) -> FlowRunEvent:
    """The ``flow_run`` event: a flow run was created."""
    return {
        "ev": "flow_run",
        "id": id,
        "flow_name": flow_name,
        "name": name,
        "version": version,
        "parent_flow_run_id": parent_flow_run_id,
        "parent_task_run_id": parent_task_run_id,
        "deployment_id": deployment_id,
        "parameters": parameters,
        "tags": tags,
        "t": t,
    }


def task_run_created(
    *,
    id: str,
    flow_run_id: str | None,
    task_name: str,
    name: str,
    tags: list[str],
    cache_key: str | None,
    inputs: dict[str, dict[str, str | None]],
    t: float,
    pending: bool = False,
) -> TaskRunEvent:
    """The ``task_run`` event; ``pending=True`` (written last) makes it stand for its Pending."""
    event: TaskRunEvent = {
        "ev": "task_run",
        "id": id,
        "flow_run_id": flow_run_id,
        "task_name": task_name,
        "name": name,
        "tags": tags,
        "cache_key": cache_key,
        "inputs": inputs,
        "t": t,
    }
    if pending:
        event["pending"] = True
    return event


def state_entered(
    *,
    run_id: str,
    kind: str,
    type: str,
    name: str,
    message: str | None,
    t: float,
    run_count: int,
    start_time: float | None,
    end_time: float | None,
    result: str | None,
) -> StateEvent:
    """The ``state`` event: a run entered a state. A null optional field is left out."""
    # Built in the order written; the fields after ``name`` follow below.
    event = cast(
        "StateEvent", {"ev": "state", "run_id": run_id, "kind": kind, "type": type, "name": name}
    )
    if message is not None:
        event["message"] = message
    event["t"] = t
    event["run_count"] = run_count
    if start_time is not None:
        event["start_time"] = start_time
    if end_time is not None:
        event["end_time"] = end_time
    if result is not None:
        event["result"] = result
    return event


def log_record(
    *, run_id: str | None, kind: str, level: int, logger: str, message: str, t: float
) -> LogEvent:
    """The ``log`` event: one log record of a run."""
    return {
        "ev": "log",
        "run_id": run_id,
        "kind": kind,
        "level": level,
        "logger": logger,
        "message": message,
        "t": t,
    }


def inputs_known(*, run_id: str, cache_key: str | None, inputs: dict[str, Any]) -> InputsEvent:
    """The ``inputs`` event: a task run's cache key and input hashes."""
    return {"ev": "inputs", "run_id": run_id, "cache_key": cache_key, "inputs": inputs}


def outputs_recorded(*, run_id: str, outputs: dict[str, Any]) -> OutputsEvent:
    """The ``outputs`` event: a ``%%task`` cell's outputs (name -> value hash)."""
    return {"ev": "outputs", "run_id": run_id, "outputs": outputs}


def cache_written(
    *,
    key: str,
    task_name: str,
    result: str,
    checksum: str,
    size: int,
    created: float,
    expires: float | None,
    task_run_id: str | None,
    duration: float,
) -> CacheWriteEvent:
    """The ``cache_write`` event: a cache entry was written."""
    return {
        "ev": "cache_write",
        "key": key,
        "task_name": task_name,
        "result": result,
        "checksum": checksum,
        "size": size,
        "created": created,
        "expires": expires,
        "task_run_id": task_run_id,
        "duration": duration,
    }


def cache_hit(*, key: str, task_run_id: str | None, t: float) -> CacheHitEvent:
    """The ``cache_hit`` event: a task run found its result under ``key``."""
    return {"ev": "cache_hit", "key": key, "task_run_id": task_run_id, "t": t}


def cache_deleted(*, key: str, t: float) -> CacheDeleteEvent:
    """The ``cache_delete`` event: the entry of ``key`` was removed."""
    return {"ev": "cache_delete", "key": key, "t": t}


def artifact_created(
    *,
    id: str,
    key: str | None,
    type: str | None,
    description: str | None,
    data: str,
    flow_run_id: str | None,
    task_run_id: str | None,
    t: float,
) -> ArtifactEvent:
    """The ``artifact`` event: an artifact was created."""
    return {
        "ev": "artifact",
        "id": id,
        "key": key,
        "type": type,
        "description": description,
        "data": data,
        "flow_run_id": flow_run_id,
        "task_run_id": task_run_id,
        "t": t,
    }


def artifact_updated(
    *, id: str, data: str, description: str | None, t: float
) -> ArtifactUpdateEvent:
    """The ``artifact_update`` event: a progress artifact moved (a null description keeps it)."""
    return {"ev": "artifact_update", "id": id, "data": data, "description": description, "t": t}


def event_emitted(
    *,
    id: str,
    event: str,
    occurred: float,
    resource: dict[str, str],
    related: list[dict[str, str]],
    payload: dict[str, Any],
    flow_run_id: str | None,
    task_run_id: str | None,
    t: float,
) -> EmittedEvent:
    """The ``event`` event: an event emitted with ``emit_event``."""
    return {
        "ev": "event",
        "id": id,
        "event": event,
        "occurred": occurred,
        "resource": resource,
        "related": related,
        "payload": payload,
        "flow_run_id": flow_run_id,
        "task_run_id": task_run_id,
        "t": t,
    }


def _fields(constructor: Callable[..., Any]) -> tuple[str, ...]:
    """A constructor's keyword-only argument names: its kind's fields, in written order."""
    code = constructor.__code__
    return code.co_varnames[code.co_argcount : code.co_argcount + code.co_kwonlyargcount]


#: Each kind's fields after ``ev``, in the order they are written (read off its constructor).
FIELDS: dict[str, tuple[str, ...]] = {
    kind: _fields(constructor)
    for kind, constructor in (
        ("process", process_started),
        ("flow_run", flow_run_created),
        ("task_run", task_run_created),
        ("state", state_entered),
        ("log", log_record),
        ("inputs", inputs_known),
        ("outputs", outputs_recorded),
        ("cache_write", cache_written),
        ("cache_hit", cache_hit),
        ("cache_delete", cache_deleted),
        ("artifact", artifact_created),
        ("artifact_update", artifact_updated),
        ("event", event_emitted),
    )
}

#: The fields a line leaves out rather than writing null (or, for ``pending``, false).
OPTIONAL_FIELDS: dict[str, frozenset[str]] = {
    "process": frozenset({"part"}),
    "task_run": frozenset({"pending"}),
    "state": frozenset({"message", "start_time", "end_time", "result"}),
}


#: The name (``ev``) of every event kind.
KINDS: frozenset[str] = frozenset(FIELDS)


def __getattr__(name: str) -> Any:
    # The TypedDicts, for type checkers and for code that inspects the schema.
    if name in _TYPED_DICTS:
        from kernelflow.store import event_types

        return getattr(event_types, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: The TypedDicts :func:`__getattr__` loads from event_types: the ``...Event`` names above.
_TYPED_DICTS = frozenset(name for name in __all__ if name.endswith("Event"))

"""What a live run view keeps of its runs, and the snapshot renderers draw from.

Plain values only: a :class:`Row` copies a few fields of a run at each
transition (an :data:`Event`, made by :func:`event_of`), a :class:`LogLine`
formats its record only when shown, and a :class:`Snapshot` is everything a
renderer (:mod:`kernelflow.widgets._render`) needs, copied from a
:class:`~kernelflow.widgets._model.RunModel` at one instant. Neither the run
nor its state (whose ``data`` may be a large result) lives on in them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kernelflow.runs import FlowRun, TaskRun
from kernelflow.states import State

__all__ = [
    "FAILED_VALUES",
    "FINAL_VALUES",
    "GOING_VALUES",
    "Event",
    "LogLine",
    "Row",
    "Snapshot",
    "error_text",
    "event_of",
    "group_row",
    "row_of",
]

# Plain strings, compared with ``state.type._value_``: hashing an Enum member runs Python
# code, and these checks run once per transition.
FINAL_VALUES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})
FAILED_VALUES = frozenset({"FAILED", "CRASHED"})
#: The types of the states a task run goes on in that a view takes from the run itself
#: (Pending, Running, Retrying): see ``RunModel.inbox``.
GOING_VALUES = frozenset({"PENDING", "RUNNING"})


class LogLine:
    """One log record of a run, as the view shows it.

    The record is formatted only when a view shows it: most lines (one
    "Finished in state" per task run) are never looked at.
    """

    __slots__ = ("_message", "_record", "level", "t")

    def __init__(
        self, t: float, level: str, message: str | None = None, record: Any = None
    ) -> None:
        self.t = t
        self.level = level
        self._message = message
        self._record = record

    @property
    def message(self) -> str:
        """The formatted message (with the exception's traceback, if one was logged)."""
        if self._message is None:
            record = self._record
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                import traceback

                text += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
            self._message = text
            self._record = None
        return self._message


@dataclass
class Snapshot:
    """Everything a renderer needs, copied from a model at one instant.

    Attributes
    ----------
    kind:
        ``"flow"`` for a flow run, ``"cell"`` for a cell's top-level task runs.
    title, subtitle:
        The flow's name and the run's name (or the cell and the session run).
    state:
        The run's state as ``{"name", "type", "message"}``; None before it has one.
    start, end, now:
        Epoch seconds; ``end`` is None while running.
    finished, total:
        Task runs in a final state, and task runs known so far.
    grouped:
        Whether ``rows`` holds one row per task name.
    rows:
        Row dicts (see :meth:`Row.as_dict`), or group rows with ``counts``.
    detail:
        What the selected row shows, or None.
    artifacts:
        The artifacts of the runs shown, oldest first: ``key``, ``type``,
        ``description`` and ``summary`` (one line saying what it holds).
    notices, log_tail, log_count:
        Log lines of the runs shown: the warnings shown at once, and the latest
        lines of all (a collapsible log).
    """

    kind: str
    title: str
    subtitle: str
    state: dict | None
    start: float | None
    end: float | None
    now: float
    finished: int
    total: int
    grouped: bool
    rows: list[dict] = field(default_factory=list)
    detail: dict | None = None
    note: str | None = None
    artifacts: list[dict] = field(default_factory=list)
    #: Warnings and errors user code logged (and the engine's warnings): ``(who, line)``.
    notices: list[tuple[str, LogLine]] = field(default_factory=list)
    #: The latest log lines of all runs shown, ``(who, line)``, and how many there were.
    log_tail: list[tuple[str, LogLine]] = field(default_factory=list)
    log_count: int = 0
    #: For a static view (no kernel to ask on a click): each listed run's error, failed
    #: tries and logs, by run id, for the runs that have any.
    row_details: dict[str, dict] = field(default_factory=dict)


#: What the listener keeps of one transition: plain values only, so neither the run nor its
#: state (whose ``data`` may be a large result) lives on, and the garbage collector soon
#: stops tracking it.
Event = tuple  # (run_id, name, group, is_flow, state_name, state_type, message, start, end,
#                tries, error)


def event_of(run: TaskRun | FlowRun, state: State) -> Event:
    """The :data:`Event` of ``run`` entering ``state``."""
    kind = state.type._value_
    error = error_text(state) if kind in FAILED_VALUES else None
    if isinstance(run, FlowRun):  # a subflow run, shown as a row of its parent's view
        return (
            run.id,
            f"{run.flow_name} / {run.name}",
            f"subflow {run.flow_name}",
            True,
            state.name,
            kind,
            state.message,
            run.start_time,
            run.end_time,
            run.run_count,
            error,
        )
    return (
        run.id,
        run.name,
        run.task_name,
        False,
        state.name,
        kind,
        state.message,
        run.start_time,
        run.end_time,
        run.run_count,
        error,
    )


class Row:
    """What a view keeps of one run it lists: fields copied at each transition."""

    __slots__ = (
        "end",
        "error",
        "final",
        "group",
        "id",
        "is_flow",
        "message",
        "name",
        "retry_errors",
        "start",
        "state_name",
        "state_type",
        "tries",
    )

    def __init__(self, event: Event) -> None:
        self.id, self.name, self.group, self.is_flow = event[0], event[1], event[2], event[3]
        self.state_name: str | None = None
        self.state_type: str | None = None
        self.message: str | None = None
        self.start: float | None = None
        self.end: float | None = None
        self.tries = 0
        self.error: str | None = None
        self.retry_errors: list[str] | None = None
        #: True once the run is in a final state.
        self.final = False

    def update(self, event: Event) -> None:
        """Copy the fields of a transition."""
        (
            _,
            _,
            _,
            _,
            self.state_name,
            kind,
            self.message,
            self.start,
            self.end,
            self.tries,
            error,
        ) = event
        self.state_type = kind
        self.final = kind in FINAL_VALUES
        if error is not None:
            self.error = error

    def as_dict(self, retry_at: float | None = None) -> dict:
        """The row as renderers take it."""
        state = None
        if self.state_name is not None:
            state = {"name": self.state_name, "type": self.state_type, "message": self.message}
        return {
            "id": self.id,
            "name": self.name,
            "kind": "flow" if self.is_flow else "task",
            "state": state,
            "start": self.start,
            "end": self.end,
            "tries": self.tries,
            "cached": self.state_name == "Cached",
            "retry_at": retry_at,
        }


def row_of(event: Event) -> Row:
    """A row made from the event of a finished run (shown in a grouped row's detail)."""
    row = Row(event)
    row.update(event)
    return row


def group_row(name: str, counts: dict[str, int]) -> dict:
    """The row of a grouped view for one task name, from its runs' counts by state."""
    retries = counts.pop("_retries", 0)
    counts = {k: v for k, v in counts.items() if v > 0}
    return {
        "id": f"group:{name}",
        "name": name,
        "kind": "group",
        "counts": dict(counts),
        "total": sum(counts.values()),
        "retries": retries,
        "cached": counts.get("Cached", 0),
    }


def error_text(state: State | None, limit: int = 30) -> str | None:
    """A failed state's message and the last lines of its exception's traceback."""
    if state is None or state.type._value_ not in FAILED_VALUES:
        return None
    import traceback

    text = state.message or state.name
    exc = state.data
    if isinstance(exc, BaseException) and exc.__traceback__ is not None:
        lines = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        tail = lines.rstrip().splitlines()[-limit:]
        text = f"{text}\n\n" + "\n".join(tail)
    return text

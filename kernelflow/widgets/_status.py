"""The one-line live status of a ``%%task`` cell.

The ``%%task`` magic runs its cell inside :func:`cell_task_scope`; the
tracker then gives the cell's own task run a :class:`StatusModel` (shown by
:class:`~kernelflow.widgets._view.TaskStatus`) instead of a run table. The
line reads, as the run moves::

    ● load_data  running 3.2 s
    ● load_data  retrying: try 2 of 4 next in 5 s
    ● load_data  completed in 3.2 s
    ● load_data  cached (saved 41 s)
    ● load_data  failed: ValueError: bad row
    ● load_data  timed out after 5 s
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from kernelflow import context
from kernelflow._format import format_duration
from kernelflow.runs import TaskRun
from kernelflow.states import State, StateType
from kernelflow.widgets._html import badge, esc
from kernelflow.widgets._model import LOG_LINES
from kernelflow.widgets._snapshot import LogLine, Row, event_of

__all__ = ["StatusModel", "cell_task_scope", "created_for_cell", "in_cell_task_scope"]

_scope: contextvars.ContextVar[bool] = contextvars.ContextVar("kernelflow_cell_task", default=False)


@contextmanager
def cell_task_scope() -> Iterator[None]:
    """Mark the task run created inside this block as a ``%%task`` cell's own run.

    The ``%%task`` magic wraps its run in it, so the live-view hook shows the
    cell a one-line status instead of a table. Task runs the cell body itself
    creates are shown as usual.

    Example
    -------
    >>> with cell_task_scope():  # doctest: +SKIP
    ...     state = run_cell_as_task(...)
    """
    token = _scope.set(True)
    try:
        yield
    finally:
        _scope.reset(token)


def in_cell_task_scope() -> bool:
    """True inside :func:`cell_task_scope`, outside any task run it started."""
    return _scope.get() and context.task_context.get() is None


#: The ``__qualname__`` the ``%%task`` magic gives the function of a cell's task.
CELL_FUNCTION = "kernelflow_cell"


def created_for_cell() -> bool:
    """True while the engine creates the task run of a ``%%task`` cell.

    Called by the listener during ``engine.create_task_run``: the run's Task
    is not passed to listeners, so this looks one frame up the engine's own
    call for it. Only for a task run created on the main thread during a cell,
    outside any task, so never on a hot path. :func:`cell_task_scope` says
    the same thing explicitly.
    """
    import sys

    frame: FrameType | None = sys._getframe(1)
    for _ in range(8):
        if frame is None:
            return False
        if frame.f_code.co_name == "create_task_run":
            task = frame.f_locals.get("task")
            fn = getattr(task, "fn", None)
            return getattr(fn, "__qualname__", None) == CELL_FUNCTION
        frame = frame.f_back
    return False


class StatusModel:
    """Live data of a ``%%task`` cell's status line: its one task run.

    Parameters
    ----------
    run:
        The cell's task run; only a :class:`~kernelflow.widgets._snapshot.Row` of
        it is kept.
    """

    flow_run_id = None
    selected = None

    def __init__(self, run: TaskRun) -> None:
        self.row = Row(
            event_of(run, run.state)
            if run.state is not None
            else (run.id, run.name, run.task_name, False)
        )
        self.task_name = run.task_name
        self.runs = {run.id: self.row}
        self.lock = threading.Lock()
        self.version = 0
        self.tries: int | None = None
        self.retry_at: float | None = None
        self.saved: float | None = None
        self.logs: list[LogLine] = []

    def push(self, run: TaskRun, state: State) -> None:
        """Take a transition of the cell's run (called on the run's own thread)."""
        if self.tries is None and state.type is StateType.RUNNING:
            ctx = context.task_context.get()
            if ctx is not None and ctx.task_run is run:
                self.tries = ctx.task.retries + 1
        if state.name == "Cached" and run.cache_key:
            self.saved = _saved_seconds(run.cache_key)
        with self.lock:
            self.row.update(event_of(run, state))
            self.version += 1

    def apply(self) -> None:
        """Nothing is queued: a status line takes its few transitions at once."""

    def on_retry_scheduled(self, run_id: str, delay: float) -> None:
        """The run waits ``delay`` seconds before its next try."""
        with self.lock:
            self.retry_at = time.time() + delay
            self.version += 1

    def add_log(self, run_id: str, record: Any) -> None:
        """Keep a log record of the run (the last few hundred)."""
        with self.lock:
            self.logs.append(LogLine(record.created, record.levelname, record=record))
            del self.logs[:-LOG_LINES]

    def is_final(self) -> bool:
        """True once the run is in a final state."""
        return self.row.final

    def describe(self, now: float | None = None) -> tuple[str, str, dict]:
        """(state name, words, ticking) for the current state.

        ``ticking`` holds ``since`` or ``until`` (epoch seconds) when the words end
        with a time that keeps changing.
        """
        now = time.time() if now is None else now
        row = self.row
        name = row.state_name
        if name is None:
            return "Pending", "pending", {}
        tries = f" of {self.tries}" if self.tries else ""
        if name in ("Running", "Retrying"):
            label = "running" if row.tries <= 1 else f"running try {row.tries}{tries}"
            return name, label, {"since": row.start or now}
        if name == "AwaitingRetry":
            if self.retry_at:
                label = f"retrying: try {row.tries + 1}{tries} next in"
                return name, label, {"until": self.retry_at}
            return name, f"retrying: try {row.tries + 1}{tries} next", {}
        if name == "Cached":
            saved = f" (saved {format_duration(self.saved)})" if self.saved else ""
            return name, f"cached{saved}", {}
        if name == "TimedOut":
            took = _took(row)
            return name, f"timed out after {took}" if took else "timed out", {}
        if row.state_type == "COMPLETED":
            if row.tries > 1:  # the time of the last try alone would mislead
                return name, f"completed on try {row.tries}", {}
            took = _took(row)
            return name, f"completed in {took}" if took else "completed", {}
        if row.state_type in ("FAILED", "CRASHED"):
            verb = "crashed" if row.state_type == "CRASHED" else "failed"
            return name, f"{verb}: {_short(row.message)}" if row.message else verb, {}
        return name, name.lower(), {}

    def html(self, live: bool = True) -> str:
        """The status line as HTML."""
        now = time.time()
        name, words, ticking = self.describe(now)
        tail = ""
        if "since" in ticking:
            tail = (
                f' <span data-kf-since="{ticking["since"]:.3f}">'
                f"{esc(format_duration(now - ticking['since']))}</span>"
            )
        elif "until" in ticking:
            tail = (
                f' <span data-kf-until="{ticking["until"]:.3f}">'
                f"{esc(format_duration(ticking['until'] - now))}</span>"
            )
        return (
            f'<div data-kf-view="status" data-kf-now="{now:.3f}" style="font-family:'
            f"var(--jp-ui-font-family,system-ui,sans-serif);font-size:13px;display:flex;"
            f'gap:8px;align-items:baseline">{badge(name, self.row.state_type)}'
            f'<span style="font-weight:600">{esc(self.task_name)}</span>'
            f"<span data-kf-words>{esc(words)}{tail}</span></div>"
        )

    def text(self) -> str:
        """The status line as text."""
        now = time.time()
        _, words, ticking = self.describe(now)
        if "since" in ticking:
            words += f" {format_duration(now - ticking['since'])}"
        elif "until" in ticking:
            words += f" {format_duration(ticking['until'] - now)}"
        return f"{self.task_name}: {words}"


def _took(row: Row) -> str:
    if row.start is None or row.end is None:
        return ""
    return format_duration(row.end - row.start)


_PREFIXES = (
    "Task run encountered an exception ",
    "Flow run encountered an exception: ",
    "Flow run encountered an exception. ",  # the former wording, in stores written before
)


def _short(message: str, limit: int = 160) -> str:
    line = message.strip().splitlines()[-1] if message.strip() else message
    for prefix in _PREFIXES:
        if line.startswith(prefix):
            line = line[len(prefix) :]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _saved_seconds(key: str) -> float | None:
    """How long the run that stored the cache entry ``key`` took (what the hit saved)."""
    try:
        from kernelflow.store import cache_index

        index_file = getattr(cache_index, "_index_file", None)
        if index_file is not None:
            import json

            with open(index_file(key), "rb") as fh:
                return float(json.loads(fh.read())["duration"])
        for entry in cache_index.entries():
            if entry.key == key:
                return float(entry.duration)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None

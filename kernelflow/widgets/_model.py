"""The in-memory model behind one live run view.

The engine calls the listener on every transition, on whichever thread moved
the run, so that path copies a few fields into a tuple and does one
dictionary store: :meth:`RunModel.push` keeps the run's latest
:data:`Event`. A few times a second the ticker thread
calls :meth:`RunModel.apply`, which folds those into per-task-name counters
(how many runs of each task are in each state) and, for the few runs a view
lists, a :class:`Row` of fields copied from the run. Transitions that came and
went between two looks (a trivial task's Pending and Running) cost nothing
more, so a 10,000-task flow costs a few microseconds per task.

A view lists every run while it has at most :data:`GROUP_THRESHOLD`; above
that it shows one row per task name, and keeps rows only for runs worth
opening: failures, retries and the latest finished runs of each task name.
Views outlive runs (a widget lives as long as the kernel), so they keep
copies of a few fields, never the run or its state, whose ``data`` may be a
large result.

A model shows either one flow run (and its task runs and subflows) or the
task runs a notebook cell submitted at the top level, which the kernel
records under the notebook's session flow run. It also lists the artifacts
those runs create (:mod:`kernelflow.artifacts` tells the tracker, which
hands each to the model of the view showing its run).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from kernelflow.runs import FlowRun, TaskRun
from kernelflow.states import State

__all__ = [
    "ARTIFACTS",
    "GROUP_THRESHOLD",
    "LOG_LINES",
    "Event",
    "LogLine",
    "Row",
    "RunModel",
    "Snapshot",
    "event_of",
]

#: Above this many task runs, the table shows one row per task name with counts.
GROUP_THRESHOLD = 40
#: Log lines kept in memory per run (the store keeps them all).
LOG_LINES = 200
#: Runs whose log lines are kept in memory per view (the oldest are dropped first).
LOG_RUNS = 2000
#: Runs listed when a grouped row is opened.
GROUP_DETAIL_ROWS = 25
#: Failed runs kept per view for a grouped row's detail.
FAILED_ROWS = 500
#: Artifacts listed per view (the newest; the store keeps them all).
ARTIFACTS = 50
#: Warnings shown at once per view (the newest), and lines in its collapsible log.
NOTICES = 20
LOG_TAIL = 100

# Plain strings, compared with ``state.type._value_``: hashing an Enum member runs Python
# code, and these checks run once per transition.
_FINAL_VALUES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})
_FAILED_VALUES = frozenset({"FAILED", "CRASHED"})


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
    error = _error_text(state) if kind in _FAILED_VALUES else None
    task_name = getattr(run, "task_name", None)
    if task_name is None:  # a subflow run, shown as a row of its parent's view
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
        task_name,
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
        self.final = kind in _FINAL_VALUES
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


class RunModel:
    """Live data of one view: a flow run, or the task runs of one cell.

    Parameters
    ----------
    kind:
        ``"flow"`` or ``"cell"``.
    title, subtitle:
        Shown in the view's header.
    flow_run:
        The flow run shown (None for a cell's task runs). Only its id is kept.
    """

    def __init__(
        self, kind: str, title: str, subtitle: str, flow_run: FlowRun | None = None
    ) -> None:
        self.kind = kind
        self.title = title
        self.subtitle = subtitle
        self.flow_run_id = flow_run.id if flow_run is not None else None
        #: The flow run's own row (state, times), for a flow view.
        self.flow: Row | None = None
        if flow_run is not None:
            self.flow = Row((flow_run.id, flow_run.name, flow_run.flow_name, True))
            if flow_run.state is not None:
                self.flow.update(event_of(flow_run, flow_run.state))
        self.created = time.time()
        self.lock = threading.Lock()
        #: The latest transition of each run since the last :meth:`apply`.
        self.latest: dict[str, Event] = {}
        #: Log records since the last :meth:`apply`.
        self.records: deque[tuple[str, Any]] = deque()
        #: Current state name, tries and finality of every run (plain values only, so
        #: the garbage collector soon stops tracking it).
        self.state_of: dict[str, tuple[str, int, bool]] = {}
        #: Per group (task name): how many of its runs are in each state, plus "_retries".
        self.groups: dict[str, dict[str, int]] = {}
        #: Kept rows: every run while there are few, then failures and retries.
        self.rows: dict[str, Row] = {}
        #: The latest finished runs of each group, as rows.
        self.recent: dict[str, deque[Row]] = {}
        self.finished = 0
        self.first_start: float | None = None
        self.last_end: float | None = None
        #: Bumped on every change; the view re-renders when it differs from the last push.
        self.version = 0
        self.logs: dict[str, deque[LogLine]] = {}
        #: When the next try of a run waiting to retry starts (epoch seconds).
        self.retry_at: dict[str, float] = {}
        #: The row the user opened: a run id, or ``group:<task name>``.
        self.selected: str | None = None
        #: For a cell: set once the cell has returned (no more top-level submissions).
        self.cell_done = kind == "flow"
        self.note: str | None = None
        #: Artifacts of the runs shown, by id: the fields a view lists (newest ARTIFACTS).
        self.artifacts: dict[str, dict] = {}
        self.notices: deque[tuple[str, LogLine]] = deque(maxlen=NOTICES)
        self.log_tail: deque[tuple[str, LogLine]] = deque(maxlen=LOG_TAIL)
        self.log_count = 0

    # --- fed by the listener (any thread; keep cheap) --------------------------------------
    def push(self, run: TaskRun | FlowRun, state: State) -> None:
        """Take a transition of one of this view's runs: a few field reads, one dict store.

        A failed try's message is kept at once (the next try may replace the
        state before :meth:`apply` looks).
        """
        event = event_of(run, state)
        self.latest[run.id] = event
        if state.name == "AwaitingRetry":
            with self.lock:
                row = self.rows.get(run.id)
                if row is None:
                    row = self.rows[run.id] = Row(event)
                row.retry_errors = [*(row.retry_errors or ()), state.message or "failed"]

    def add_log(self, run_id: str, record: Any) -> None:
        """Take a log record of one of this view's runs."""
        self.records.append((run_id, record))

    def add_artifact(self, event: dict) -> None:
        """Take an artifact one of this view's runs created (an ``artifact`` journal event).

        Only its one-line summary is kept, not its data (a table may be large).
        """
        from kernelflow.artifacts import summarize

        summary = summarize(event.get("type"), event.get("data"))
        with self.lock:
            if len(self.artifacts) >= ARTIFACTS:
                del self.artifacts[next(iter(self.artifacts))]
            self.artifacts[event["id"]] = {
                "key": event.get("key"),
                "type": event.get("type"),
                "description": event.get("description"),
                "summary": summary,
            }
            self.version += 1

    def update_artifact(self, event: dict) -> bool:
        """Take a progress update (``artifact_update``); False if this view lacks the artifact."""
        from kernelflow.artifacts import summarize

        with self.lock:
            artifact = self.artifacts.get(event["id"])
            if artifact is None:
                return False
            artifact["summary"] = summarize(artifact["type"], event.get("data"))
            if event.get("description"):
                artifact["description"] = event["description"]
            self.version += 1
            return True

    def on_retry_scheduled(self, run_id: str, delay: float) -> None:
        """A run waits ``delay`` seconds before its next try."""
        with self.lock:
            self.retry_at[run_id] = time.time() + delay
            self.version += 1

    # --- folding (ticker thread, or a reader) ------------------------------------------
    def apply(self) -> None:
        """Fold the transitions and log records taken since the last call."""
        latest, records = self.latest, self.records
        if not latest and not records:
            return
        with self.lock:
            changed = 0
            # list() and pop() are atomic, so the engine's threads may keep storing meanwhile:
            # a run stored again before its pop is taken at its newer state, one stored
            # after waits for the next round. Dicts keep the order runs were first seen.
            for run_id in list(latest):
                event = latest.pop(run_id, None)
                if event is None:
                    continue
                changed += 1
                if run_id == self.flow_run_id:
                    self.flow.update(event)  # type: ignore[union-attr]
                else:
                    self._fold(event)
            while records:
                try:
                    run_id, record = records.popleft()
                except IndexError:
                    break
                changed += 1
                lines = self.logs.get(run_id)
                if lines is None:
                    if len(self.logs) >= LOG_RUNS:
                        del self.logs[next(iter(self.logs))]
                    lines = self.logs[run_id] = deque(maxlen=LOG_LINES)
                line = LogLine(record.created, record.levelname, record=record)
                lines.append(line)
                who = getattr(record, "run_label", None) or ""
                self.log_tail.append((who, line))
                self.log_count += 1
                if _is_notice(record):
                    self.notices.append((who, line))
            self.version += changed

    def _fold(self, event: Event) -> None:
        run_id, _, group, _, name, kind, _, start, end, tries, _ = event
        final = kind in _FINAL_VALUES
        before = self.state_of.get(run_id)
        counts = self.groups.get(group)
        if counts is None:
            counts = self.groups[group] = {}
        if before is not None:
            counts[before[0]] -= 1
            if before[2]:
                self.finished -= 1
            tries_before = before[1]
        else:
            tries_before = 1
        if tries > tries_before:
            counts["_retries"] = counts.get("_retries", 0) + tries - tries_before
        counts[name] = counts.get(name, 0) + 1
        self.state_of[run_id] = (name, max(tries, 1), final)
        if final:
            self.finished += 1
            if end is not None and (self.last_end is None or end > self.last_end):
                self.last_end = end
        if start is not None and (self.first_start is None or start < self.first_start):
            self.first_start = start
        row = self.rows.get(run_id)
        if row is None and (
            len(self.state_of) <= GROUP_THRESHOLD
            or (kind in _FAILED_VALUES and len(self.rows) < FAILED_ROWS)
        ):
            row = self.rows[run_id] = Row(event)
        if row is not None:
            row.update(event)
        if final and len(self.state_of) > GROUP_THRESHOLD:
            recent = self.recent.get(group)
            if recent is None:
                recent = self.recent[group] = deque(maxlen=GROUP_DETAIL_ROWS)
            if row is None:
                row = Row(event)
                row.update(event)
            recent.append(row)

    def mark_cell_done(self) -> None:
        """The cell that submitted these task runs has returned."""
        with self.lock:
            self.cell_done = True
            self.version += 1

    def select(self, row_id: str | None) -> None:
        """Open a row (or close it, when it is already open)."""
        with self.lock:
            self.selected = None if row_id == self.selected else row_id
            self.version += 1

    # --- read by views --------------------------------------------------------------------
    def state(self) -> dict | None:
        """The view's overall state: the flow run's, or one derived from a cell's task runs."""
        if self.flow is not None:
            return self.flow.as_dict()["state"]
        total = len(self.state_of)
        if self.finished < total or not total:
            return {"name": "Running", "type": "RUNNING", "message": None}
        failed = sum(
            counts.get(k, 0)
            for counts in self.groups.values()
            for k in ("Failed", "TimedOut", "Crashed")
        )
        if failed:
            return {
                "name": "Failed",
                "type": "FAILED",
                "message": f"{failed}/{total} task runs failed.",
            }
        return {"name": "Completed", "type": "COMPLETED", "message": None}

    def is_final(self) -> bool:
        """True once nothing shown here can change any more."""
        self.apply()
        if self.flow is not None:
            return self.flow.final
        return self.cell_done and self.finished == len(self.state_of)

    def times(self) -> tuple[float | None, float | None]:
        """(start, end) of what the view shows; end is None while it runs."""
        if self.flow is not None:
            return self.flow.start, self.flow.end
        start = self.first_start or self.created
        if not self.is_final():
            return start, None
        return start, self.last_end or start

    def snapshot(self, group_threshold: int = GROUP_THRESHOLD, static: bool = False) -> Snapshot:
        """Copy what a renderer needs; called a few times a second at most.

        ``static`` adds every listed run's details (:attr:`Snapshot.row_details`),
        for the static HTML that replaces a finished view.
        """
        self.apply()
        with self.lock:
            total = len(self.state_of)
            grouped = total > group_threshold
            if grouped:
                rows = [_group_row(name, dict(counts)) for name, counts in self.groups.items()]
            else:
                rows = [r.as_dict(self.retry_at.get(r.id)) for r in self.rows.values()]
            finished, selected, state = self.finished, self.selected, self.state()
            artifacts = [dict(a) for a in self.artifacts.values()]
            notices, log_tail, log_count = list(self.notices), list(self.log_tail), self.log_count
        start, end = self.times()
        return Snapshot(
            kind=self.kind,
            title=self.title,
            subtitle=self.subtitle,
            state=state,
            start=start,
            end=end,
            now=time.time(),
            finished=finished,
            total=total,
            grouped=grouped,
            rows=rows,
            detail=self._detail(selected) if selected else None,
            note=self.note,
            artifacts=artifacts,
            notices=notices,
            log_tail=log_tail,
            log_count=log_count,
            row_details=self._row_details(rows) if static and not grouped else {},
        )

    def html(self, live: bool = True) -> str:
        """The view as HTML (``live=False``: static, for saved outputs)."""
        from kernelflow.widgets._render import render_run_html

        snap = self.snapshot(static=not live)
        return render_run_html(snap, selected=self.selected if live else None, live=live)

    def _row_details(self, rows: list[dict]) -> dict[str, dict]:
        found = {}
        for row in rows:
            detail = self._detail(row["id"])
            if detail and (detail["error"] or detail["retry_errors"] or detail["logs"]):
                found[row["id"]] = detail
        return found

    def text(self) -> str:
        """The view as a text table."""
        from kernelflow.widgets._render import render_run_text

        return render_run_text(self.snapshot())

    def _detail(self, selected: str) -> dict | None:
        with self.lock:
            if selected.startswith("group:"):
                name = selected[len("group:") :]
                # Worth opening first: runs that failed, retried or have not finished.
                failed = [
                    r
                    for r in self.rows.values()
                    if r.group == name
                    and (r.retry_errors or not (r.final and r.state_type == "COMPLETED"))
                ]
                failed.sort(key=lambda r: (r.state_type not in _FAILED_VALUES, not r.final))
                recent = list(reversed(self.recent.get(name, ())))
                seen = {r.id for r in failed}
                picked = (failed + [r for r in recent if r.id not in seen])[:GROUP_DETAIL_ROWS]
                total = sum(
                    v for k, v in self.groups.get(name, {}).items() if not k.startswith("_")
                )
                return {
                    "kind": "group",
                    "name": name,
                    "total": total,
                    "rows": [r.as_dict(self.retry_at.get(r.id)) for r in picked],
                }
            row = self.rows.get(selected)
            if row is None:
                row = next(
                    (r for rows in self.recent.values() for r in rows if r.id == selected), None
                )
            if row is None:
                return None
            lines = list(self.logs.get(selected, ()))
            return {
                "kind": "run",
                "row": row.as_dict(self.retry_at.get(row.id)),
                "logs": lines,
                "error": row.error,
                "retry_errors": list(row.retry_errors or ()),
            }


def _is_notice(record: Any) -> bool:
    """Whether a log line is shown at once: a warning or error, except the engine's errors.

    The engine's errors report a run's failure, which the view shows already (its
    state and error); repeating them would show the error twice.
    """
    from kernelflow.logs import is_own_record

    if record.levelno < logging.WARNING:
        return False
    return record.levelno == logging.WARNING or not is_own_record(record)


def _group_row(name: str, counts: dict[str, int]) -> dict:
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


def _error_text(state: State | None, limit: int = 30) -> str | None:
    """A failed state's message and the last lines of its exception's traceback."""
    if state is None or state.type._value_ not in _FAILED_VALUES:
        return None
    import traceback

    text = state.message or state.name
    exc = state.data
    if isinstance(exc, BaseException) and exc.__traceback__ is not None:
        lines = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        tail = lines.rstrip().splitlines()[-limit:]
        text = f"{text}\n\n" + "\n".join(tail)
    return text

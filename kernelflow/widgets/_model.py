"""The in-memory model behind one live run view.

The engine calls the listener on every transition, on whichever thread moved
the run, so :meth:`RunModel.push` does a constant, small amount of work there:
under the model's lock it moves the run from one count to the next (how many
runs of each task name are in each state), and copies a few fields only for
the runs a view lists. Nothing is kept per run once it has finished, except
for those listed runs and the latest finished runs of each task name: the
runs still going are the only ones the model remembers (to move their count
on their next state), so a flow of a million task runs costs the view no more
memory than one of a hundred. Log records are kept the same way
(:meth:`RunModel.add_log`): the latest few hundred of all runs, formatted
only when shown. The ticker thread renders a few times a second; its work
does not grow with the number of runs either.

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

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from kernelflow.runs import FlowRun, TaskRun
from kernelflow.states import State
from kernelflow.widgets._snapshot import (
    FAILED_VALUES,
    FINAL_VALUES,
    Event,
    LogLine,
    Row,
    Snapshot,
    event_of,
    group_row,
    row_of,
)

__all__ = [
    "ARTIFACTS",
    "GROUP_THRESHOLD",
    "LOG_LINES",
    "RunModel",
]

#: Above this many task runs, the table shows one row per task name with counts.
GROUP_THRESHOLD = 40
#: Log lines kept in memory per listed run (the store keeps them all).
LOG_LINES = 200
#: The latest log lines of a view's runs kept in memory, whichever run logged them: a run
#: the view does not list (one of thousands) shows those of its lines still kept.
LOG_KEEP = 500
#: Runs listed when a grouped row is opened.
GROUP_DETAIL_ROWS = 25
#: Failed runs kept per view for a grouped row's detail.
FAILED_ROWS = 500
#: Artifacts listed per view (the newest; the store keeps them all).
ARTIFACTS = 50
#: Warnings shown at once per view (the newest), and lines in its collapsible log.
NOTICES = 20
LOG_TAIL = 100


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
        #: Every run not final yet: its group's counts, its state name, tries and group (a
        #: finished run is forgotten: engine runs never leave a final state).
        self.active: dict[str, tuple[dict[str, int], str, int, str]] = {}
        #: Task runs (and subflow runs) seen so far.
        self.total = 0
        #: Per group (task name): how many of its runs are in each state, plus "_retries".
        self.groups: dict[str, dict[str, int]] = {}
        #: Kept rows: every run while there are few, then failures and retries.
        self.rows: dict[str, Row] = {}
        #: The latest finished runs of each group, as events (made rows when shown).
        self.recent: dict[str, deque[Event]] = {}
        self.finished = 0
        self.first_start: float | None = None
        self.last_end: float | None = None
        #: Bumped on every change; the view re-renders when it differs from the last push.
        self.version = 0
        #: Log lines of the listed runs (those in :attr:`rows`).
        self.logs: dict[str, deque[LogLine]] = {}
        #: The latest log records of all runs, ``(run id, record)``.
        self.log_records: deque[tuple[str, Any]] = deque(maxlen=LOG_KEEP)
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
        self.log_count = 0

    # --- fed by the listener (any thread; keep cheap) --------------------------------------
    def push(self, run: TaskRun | FlowRun, state: State) -> None:
        """Take a transition of one of this view's runs: move its count, in constant time.

        A listed run's fields are copied; a failed try's message is kept at
        once (the view lists every retried run, with its failed tries).
        """
        run_id = run.id
        flow = self.flow  # set, with flow_run_id, for a flow's view only
        if flow is not None and run_id == self.flow_run_id:
            event = event_of(run, state)
            with self.lock:
                flow.update(event)
                self.version += 1
            return
        name = state.name
        kind = state.type._value_
        tries = run.run_count
        with self.lock:
            self.version += 1
            before = self.active.get(run_id)
            if before is None:  # a new run
                self.total += 1
                if isinstance(run, FlowRun):  # a subflow run, shown as a row of its parent's view
                    group = f"subflow {run.flow_name}"
                else:
                    group = run.task_name
                counts = self.groups.get(group)
                if counts is None:
                    counts = self.groups[group] = {}
                start = run.start_time
                if start is not None and (self.first_start is None or start < self.first_start):
                    self.first_start = start
            else:
                counts, before_name, tries_before, group = before
                counts[before_name] -= 1
                if tries > tries_before:
                    counts["_retries"] = counts.get("_retries", 0) + tries - tries_before
                if self.first_start is None and run.start_time is not None:
                    self.first_start = run.start_time
            counts[name] = counts.get(name, 0) + 1
            if kind in FINAL_VALUES:
                if before is not None:
                    del self.active[run_id]
                self.finished += 1
                end = run.end_time
                if end is not None and (self.last_end is None or end > self.last_end):
                    self.last_end = end
                final = True
            else:
                self.active[run_id] = (counts, name, tries if tries > 1 else 1, group)
                final = False
            row = self.rows.get(run_id)
            if row is None:
                if (
                    self.total > GROUP_THRESHOLD
                    and name != "AwaitingRetry"
                    and (kind not in FAILED_VALUES or len(self.rows) >= FAILED_ROWS)
                ):
                    if final:  # the latest finished runs of a group, for its detail
                        recent = self.recent.get(group)
                        if recent is None:
                            recent = self.recent[group] = deque(maxlen=GROUP_DETAIL_ROWS)
                        recent.append(event_of(run, state))
                    return
                event = event_of(run, state)
                row = self.rows[run_id] = Row(event)
            else:
                event = event_of(run, state)
            row.update(event)
            if name == "AwaitingRetry":
                row.retry_errors = [*(row.retry_errors or ()), state.message or "failed"]
            if final and self.total > GROUP_THRESHOLD:
                self._add_recent(group, event)

    def _add_recent(self, group: str, event: Event) -> None:
        recent = self.recent.get(group)
        if recent is None:
            recent = self.recent[group] = deque(maxlen=GROUP_DETAIL_ROWS)
        recent.append(event)

    def add_log(self, run_id: str, record: Any) -> None:
        """Take a log record of one of this view's runs (on the logging thread).

        Kept at once rather than queued for the ticker: a queue would hold a
        few thousand records between two looks, which the garbage collector
        then walks again and again.
        """
        with self.lock:
            item = (run_id, record)
            kept = self.log_records
            kept.append(item)
            self.log_count += 1
            self.version += 1
            # A record becomes a line (formatted when shown) only where a view lists it:
            # a listed run's lines, and warnings.
            lines = self.logs.get(run_id)
            if lines is not None:
                lines.append(LogLine(record.created, record.levelname, record=record))
            elif run_id in self.rows:
                lines = self.logs[run_id] = deque(
                    (LogLine(r.created, r.levelname, record=r) for i, r in kept if i == run_id),
                    maxlen=LOG_LINES,
                )
            if record.levelno >= logging.WARNING and (
                # The engine's errors report a run's failure, which the view shows already
                # (its state and error): shown again, the error would show twice.
                record.levelno == logging.WARNING or not _is_own_record(record)
            ):
                line = LogLine(record.created, record.levelname, record=record)
                self.notices.append((getattr(record, "run_label", None) or "", line))

    def add_artifact(self, event: Mapping[str, Any]) -> None:
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

    def update_artifact(self, event: Mapping[str, Any]) -> bool:
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
        """Fold pending changes (none: transitions and log records are taken at once).

        Kept for the views, which call it before they look.
        """

    def _log_tail(self) -> list[tuple[str, LogLine]]:
        """The latest :data:`LOG_TAIL` lines of all runs, ``(who, line)`` (under the lock)."""
        kept = self.log_records
        return [
            (getattr(r, "run_label", None) or "", LogLine(r.created, r.levelname, record=r))
            for _, r in itertools.islice(kept, max(0, len(kept) - LOG_TAIL), None)
        ]

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
        total = self.total
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
        if self.flow is not None:
            return self.flow.final
        return self.cell_done and self.finished == self.total

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
        with self.lock:
            total = self.total
            grouped = total > group_threshold
            if grouped:
                rows = [group_row(name, dict(counts)) for name, counts in self.groups.items()]
            else:
                rows = [r.as_dict(self.retry_at.get(r.id)) for r in self.rows.values()]
            finished, selected, state = self.finished, self.selected, self.state()
            artifacts = [dict(a) for a in self.artifacts.values()]
            notices, log_tail, log_count = list(self.notices), self._log_tail(), self.log_count
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
                failed.sort(key=lambda r: (r.state_type not in FAILED_VALUES, not r.final))
                seen = {r.id for r in failed}
                recent = [
                    self.rows.get(e[0]) or row_of(e)
                    for e in reversed(self.recent.get(name, ()))
                    if e[0] not in seen
                ]
                picked = (failed + recent)[:GROUP_DETAIL_ROWS]
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
                    (row_of(e) for es in self.recent.values() for e in es if e[0] == selected),
                    None,
                )
            if row is None:
                return None
            kept = self.logs.get(selected)
            if kept is None:  # a run the view does not list: its lines still kept
                lines = [
                    LogLine(r.created, r.levelname, record=r)
                    for i, r in self.log_records
                    if i == selected
                ][-LOG_LINES:]
            else:
                lines = list(kept)
            return {
                "kind": "run",
                "row": row.as_dict(self.retry_at.get(row.id)),
                "logs": lines,
                "error": row.error,
                "retry_errors": list(row.retry_errors or ()),
            }


def _is_own_record(record: Any) -> bool:
    from kernelflow.logs import is_own_record

    return is_own_record(record)

"""The in-memory model behind one live run view.

The engine calls the listener on every transition, on whichever thread moved
the run, three times per task run at least, so the common ones cost it one
dict store, without a lock (see :class:`~kernelflow.widgets._live.Tracker`):
a task run entering Pending or Running is put in :attr:`RunModel.inbox`
itself, keyed by its id, and one that completed is replaced there by a tuple
of a few of its fields (an :data:`~kernelflow.widgets._snapshot.Event`), so
the inbox never keeps a finished run, whose result may be large. The ticker
folds the inbox a few times a second (:meth:`RunModel.apply`), and so does
every reader before it looks: the states a run went through between two
looks coalesce, and the fold moves its count once, from its last folded
state (how many runs of each task name are in each state), and copies a few
fields only for the runs a view lists. Every other transition (the flow
run's, failures, retries) is taken at once by :meth:`RunModel.push`, after
the inbox, so each run's states are folded in order. Nothing is kept per run
once it has finished, except
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
from kernelflow.widgets._detail import GROUP_DETAIL_ROWS, LOG_LINES, row_details, run_detail
from kernelflow.widgets._snapshot import (
    FAILED_VALUES,
    FINAL_VALUES,
    GOING_VALUES,
    Event,
    LogLine,
    Row,
    Snapshot,
    event_of,
    group_row,
)

__all__ = [
    "ARTIFACTS",
    "GROUP_DETAIL_ROWS",
    "GROUP_THRESHOLD",
    "LOG_LINES",
    "RunModel",
]

#: Above this many task runs, the table shows one row per task name with counts.
GROUP_THRESHOLD = 40
#: The latest log lines of a view's runs kept in memory, whichever run logged them: a run
#: the view does not list (one of thousands) shows those of its lines still kept.
LOG_KEEP = 500
#: Failed runs kept per view for a grouped row's detail.
FAILED_ROWS = 500
#: Completed runs in a model's inbox that make the listener fold it at once. Small: folded
#: while they are still in the CPU's caches, they cost far less than folded by the ticker a
#: quarter of a second (thousands of runs) later; it also bounds the inbox.
INBOX_MAX = 64
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
        #: Task runs whose latest transition the listener left here, by run id, not folded
        #: yet (see :meth:`apply`): the run itself while it goes on, the :data:`Event` of
        #: its end once it has completed.
        self.inbox: dict[str, Any] = {}
        #: Every run not final yet (as of the last fold): its group's counts, its state name
        #: and tries (a finished run is forgotten: engine runs never leave a final state).
        self.active: dict[str, tuple[dict[str, int], str, int]] = {}
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
        #: Changes taken, log records aside (those are counted in :attr:`log_count`).
        self._changes = 0
        #: Log lines of the listed runs (those in :attr:`rows`).
        self.logs: dict[str, deque[LogLine]] = {}
        #: Runs listed by the fold going on, whose kept lines it adds at its end.
        self._listed: list[str] = []
        #: The latest log records of all runs.
        self.log_records: deque[Any] = deque(maxlen=LOG_KEEP)
        self.log_count = 0
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

    @property
    def version(self) -> int:
        """Moves on every change; the view re-renders when it differs from the last push.

        The changes of :attr:`inbox` count once folded (:meth:`apply` first).
        """
        return self._changes + self.log_count

    # --- fed by the listener (any thread; keep cheap) --------------------------------------
    def push(self, run: TaskRun | FlowRun, state: State) -> None:
        """Take a transition of one of this view's runs at once, in constant time.

        For the flow run's own states, subflow runs and the states a task run
        rarely enters (failures, retries, cancellations): the common ones of
        task runs come through :attr:`inbox` instead. A listed run's fields are
        copied; a failed try's message is kept at once (the view lists every
        retried run, with its failed tries).
        """
        event = event_of(run, state)
        with self.lock:
            if self.inbox:  # this run's earlier states come first
                self._fold()
            self._changes += 1
            if run.id == self.flow_run_id and self.flow is not None:
                self.flow.update(event)
            else:
                self._take(event)
                if self._listed:
                    self._fill_lines()

    def apply(self) -> None:
        """Fold the transitions waiting in :attr:`inbox` (the ticker, and readers first)."""
        if self.inbox:
            with self.lock:
                self._fold()

    def _fold(self) -> None:
        """Take what :attr:`inbox` holds, oldest run first (under the lock)."""
        inbox = self.inbox
        pop, take, active = inbox.pop, self._take, self.active
        grouped = self.total >= GROUP_THRESHOLD  # so a new run is not listed (see _take)
        cell = self.flow is None  # a cell's view takes its times from its runs
        ended = 0  # runs that began and completed between two looks, not counted yet
        counts: dict[str, int] = {}
        done: deque[Event] = deque()
        group = None
        # The keys first, then one pop each: a listener adding to the inbox meanwhile loses
        # nothing (swapping in a new dict could drop what it sets in the old one), and dict
        # order is the order the runs entered it.
        for run_id in list(inbox):
            item = pop(run_id)
            if grouped and type(item) is tuple and run_id not in active:
                # What _take does with most runs of a big flow, inlined: a run seen first
                # completed (the inbox keeps only the tuples of completed runs), unlisted.
                if item[2] != group:
                    group = item[2]
                    counts = self.groups.setdefault(group, {})
                    done = self.recent.setdefault(group, deque(maxlen=GROUP_DETAIL_ROWS))
                counts[item[4]] = counts.get(item[4], 0) + 1
                if item[9] > 1:  # tries before this one
                    counts["_retries"] = counts.get("_retries", 0) + item[9] - 1
                done.append(item)
                ended += 1
                if cell:
                    self._span(item[7], item[8])
                continue
            if ended:  # _take goes on from the counts
                self.total, self.finished, ended = self.total + ended, self.finished + ended, 0
            if type(item) is not tuple:  # a run going on: its state as of now
                state = item.state
                if state is None or state.type._value_ not in GOING_VALUES:
                    # It has moved on since, and its listener brings that state (never
                    # taken here ahead of it, nor twice).
                    continue
                item = event_of(item, state)
            take(item)
            grouped = self.total >= GROUP_THRESHOLD
        self.total += ended
        self.finished += ended
        self._changes += 1
        if self._listed:
            self._fill_lines()

    def _fill_lines(self) -> None:
        """Give the runs listed since the last look their kept lines (under the lock)."""
        fill = {run_id: self.logs[run_id] for run_id in self._listed}
        self._listed.clear()
        for r in self.log_records:
            lines = fill.get(r.run_id)
            if lines is not None:
                lines.append(LogLine(r.created, r.levelname, record=r))

    def _take(self, event: Event) -> None:
        """Move a run's count to its new state (under the lock); see :func:`event_of`."""
        run_id, _, group, _, name, kind, _, start, end, tries, _ = event
        before = self.active.get(run_id)
        if before is None:  # a new run (or one whose earlier states coalesced with this one)
            self.total += 1
            counts = self.groups.get(group)
            if counts is None:
                counts = self.groups[group] = {}
            if tries > 1:  # tries it started before the view first saw it
                counts["_retries"] = counts.get("_retries", 0) + tries - 1
            if start is not None and (self.first_start is None or start < self.first_start):
                self.first_start = start
        else:
            counts, before_name, tries_before = before
            counts[before_name] -= 1
            if tries > tries_before:
                counts["_retries"] = counts.get("_retries", 0) + tries - tries_before
            if self.first_start is None and start is not None:
                self.first_start = start
        counts[name] = counts.get(name, 0) + 1
        final = kind in FINAL_VALUES
        if final:
            if before is not None:
                del self.active[run_id]
            self.finished += 1
            if end is not None and (self.last_end is None or end > self.last_end):
                self.last_end = end
        else:
            self.active[run_id] = (counts, name, tries if tries > 1 else 1)
        row = self.rows.get(run_id)
        if row is None:
            if (
                self.total > GROUP_THRESHOLD
                and name != "AwaitingRetry"
                and (kind not in FAILED_VALUES or len(self.rows) >= FAILED_ROWS)
            ):
                if final:  # the latest finished runs of a group, for its detail
                    self._add_recent(group, event)
                return
            row = self.rows[run_id] = Row(event)
            # Listed from now on: every line it logs (add_log), and those it logged before
            # (_fill_lines, at the end of the fold: one look at the kept records for all).
            self.logs[run_id] = deque(maxlen=LOG_LINES)
            self._listed.append(run_id)
        row.update(event)
        if name == "AwaitingRetry":
            row.retry_errors = [*(row.retry_errors or ()), event[6] or "failed"]
        if final and self.total > GROUP_THRESHOLD:
            self._add_recent(group, event)

    def _span(self, start: float | None, end: float | None) -> None:
        """Widen the span of a cell's runs to a finished run's start and end."""
        if start is not None and (self.first_start is None or start < self.first_start):
            self.first_start = start
        if end is not None and (self.last_end is None or end > self.last_end):
            self.last_end = end

    def _add_recent(self, group: str, event: Event) -> None:
        recent = self.recent.get(group)
        if recent is None:
            recent = self.recent[group] = deque(maxlen=GROUP_DETAIL_ROWS)
        recent.append(event)

    def add_log(self, run_id: str, record: Any) -> None:
        """Take a log record of one of this view's runs (on the logging thread).

        Kept at once rather than queued for the ticker: a queue would hold a
        few thousand records between two looks, which the garbage collector
        then walks again and again. A record becomes a line (formatted when
        shown) only where a view lists it: a listed run's lines, and warnings.
        """
        with self.lock:
            self.log_records.append(record)
            self.log_count += 1  # moves :attr:`version`: the view shows the latest lines
            lines = self.logs.get(run_id)
            if lines is not None:
                lines.append(LogLine(record.created, record.levelname, record=record))
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
            self._changes += 1

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
            self._changes += 1
            return True

    def on_retry_scheduled(self, run_id: str, delay: float) -> None:
        """A run waits ``delay`` seconds before its next try."""
        with self.lock:
            self.retry_at[run_id] = time.time() + delay
            self._changes += 1

    # --- folding (ticker thread, or a reader) ------------------------------------------
    def _log_tail(self) -> list[tuple[str, LogLine]]:
        """The latest :data:`LOG_TAIL` lines of all runs, ``(who, line)`` (under the lock)."""
        kept = self.log_records
        return [
            (getattr(r, "run_label", None) or "", LogLine(r.created, r.levelname, record=r))
            for r in itertools.islice(kept, max(0, len(kept) - LOG_TAIL), None)
        ]

    def mark_cell_done(self) -> None:
        """The cell that submitted these task runs has returned."""
        with self.lock:
            self.cell_done = True
            self._changes += 1

    def select(self, row_id: str | None) -> None:
        """Open a row (or close it, when it is already open)."""
        with self.lock:
            self.selected = None if row_id == self.selected else row_id
            self._changes += 1

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
        self.apply()
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
            if self.inbox:
                self._fold()
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
            detail=self.detail(selected) if selected else None,
            note=self.note,
            artifacts=artifacts,
            notices=notices,
            log_tail=log_tail,
            log_count=log_count,
            row_details=row_details(self, rows) if static and not grouped else {},
        )

    def html(self, live: bool = True) -> str:
        """The view as HTML (``live=False``: static, for saved outputs)."""
        from kernelflow.widgets._render import render_run_html

        snap = self.snapshot(static=not live)
        return render_run_html(snap, selected=self.selected if live else None, live=live)

    def text(self) -> str:
        """The view as a text table."""
        from kernelflow.widgets._render import render_run_text

        return render_run_text(self.snapshot())

    def detail(self, selected: str) -> dict | None:
        """What opening row ``selected`` shows (see :mod:`kernelflow.widgets._detail`)."""
        with self.lock:
            if self.inbox:
                self._fold()
            return run_detail(self, selected)


def _is_own_record(record: Any) -> bool:
    from kernelflow.logs import is_own_record

    return is_own_record(record)

"""The notebook hook: a live view appears when a flow starts in a cell.

:class:`Tracker` is an engine listener (``engine.subscribe``) installed in an
IPython shell by :func:`kernelflow.widgets.install`. On each transition it
either updates the model of the view that shows the run, or, for a run no
view shows yet, decides whether one should:

- a flow run that starts on the main thread while a cell runs, and whose
  parent (if any) no view shows, gets its own view in that cell's output;
- a subflow, or a task run of a shown flow run, joins its parent's view;
- a task run created at the top level of a cell (recorded under the
  notebook's session run, or under no flow run) joins the view of that cell's
  top-level task runs, made on the first one; a task run created inside a
  shown task run joins that task run's view;
- a ``%%task`` cell's own task run gets a one-line status instead
  (:mod:`kernelflow.widgets._status`).

Each view is driven by a :class:`~kernelflow.widgets._driver.LiveRun`,
which the ticker thread updates a few times a second and which, when nothing
shown can change any more, replaces the widget output by static HTML and
text of the final state (see :mod:`kernelflow.widgets._driver`).

The tracker also listens to :mod:`kernelflow.artifacts`: an artifact created
by a run a view shows is listed in that view (:meth:`Tracker.on_artifact`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from kernelflow import context, engine
from kernelflow.runs import FlowRun, TaskRun
from kernelflow.states import State
from kernelflow.widgets._cells import cell_number
from kernelflow.widgets._driver import LiveRun
from kernelflow.widgets._faults import logger, report
from kernelflow.widgets._model import INBOX_MAX, RunModel
from kernelflow.widgets._snapshot import GOING_VALUES
from kernelflow.widgets._status import StatusModel, created_for_cell, in_cell_task_scope
from kernelflow.widgets._ticker import ticker

__all__ = ["Tracker"]


class Tracker:
    """The engine listener that shows live views in one IPython shell.

    Parameters
    ----------
    shell:
        The IPython shell; a kernel's shows widgets, a terminal's prints text.
    mode:
        Override the display mode (``"widget"``, ``"html"`` or ``"text"``).
    """

    def __init__(self, shell: Any, mode: str | None = None) -> None:
        self.shell = shell
        self._mode = mode
        #: Which live view shows each run (flow runs, task runs, subflows).
        self.owner: dict[str, LiveRun] = {}
        #: The model of the run view showing each flow run, by the flow run's id: its
        #: task runs' common transitions go to the model's inbox (see ``__call__``).
        self._inboxes: dict[str, RunModel] = {}
        #: The execution count of the cell running now, or None between cells.
        self.cell: int | None = None
        self.cell_view: LiveRun | None = None
        #: Views that finished since the last cell started (their final bundle is re-sent).
        self._finished_since_cell: list[LiveRun] = []
        #: The latest run :meth:`model_of` found a model for, and that model.
        self._last_found: tuple[str | None, Any] = (None, None)
        #: What to register with the engine (see :func:`_listener`).
        self.listener = _listener(self._inboxes, self._transition)

    @property
    def mode(self) -> str:
        """How views are shown; decided on first use (it may import the widget libraries)."""
        if self._mode is None:
            self._mode = _mode_for(self.shell)
        return self._mode

    # --- IPython events ----------------------------------------------------------------
    def pre_run_cell(self, info: Any = None) -> None:
        """A cell starts: remember it, and re-send final bundles of views done meanwhile."""
        try:
            self.cell = cell_number(self.shell, info)
            self.cell_view = None
            finished, self._finished_since_cell = self._finished_since_cell, []
            for live in finished:
                live.republish()
            self._finish_final_views()
        except Exception as exc:
            report("preparing live views for a cell", exc)

    def post_run_cell(self, result: Any = None) -> None:
        """A cell returned: its top-level task runs can only finish from now on."""
        try:
            view, self.cell_view, self.cell = self.cell_view, None, None
            if view is not None:
                view.model.mark_cell_done()
            self._finish_final_views()
        except Exception as exc:
            report("closing the live view of a cell", exc)

    def _finish_final_views(self) -> None:
        """Finish, here on the main thread, every view whose runs have all ended.

        The ticker would finish them on its next round, from its own thread, whose
        messages a headless client (which listens to one cell at a time) may never
        see; finished here, the final bundle goes out with the running cell.
        """
        for live in {id(v): v for v in list(self.owner.values())}.values():
            if not live.finished and live.model.is_final():
                live.finish()

    # --- the engine listener -------------------------------------------------------------
    def __call__(self, kind: str, run: Any, state: State) -> None:
        """Take a transition (the engine calls :attr:`listener`, which is this, only faster)."""
        self.listener(kind, run, state)

    def _transition(self, kind: str, run: Any, state: State) -> None:
        """Take a transition :attr:`listener` does not leave in a model's inbox."""
        try:
            # Task runs of a shown flow are found by their flow run; others by their own id.
            live = self.owner.get(run.flow_run_id) if kind == "task" else None
            if live is None:
                live = self.owner.get(run.id)
            if live is not None and not live.shown and isinstance(live.model, StatusModel):
                if not self._show_status(live, run, state):
                    return
            if live is not None:
                live.model.push(run, state)
                if (
                    run.id == live.final_run_id
                    and state.type._value_ in _FINAL
                    and threading.get_ident() == _MAIN
                ):
                    # Now rather than on the ticker's next round, so the final table is
                    # recorded in the output of the cell that ran it (headless runs).
                    live.finish()
                return
            if state.name != "Pending":
                return
            if kind == "flow":
                self._new_flow_run(run, state)
            else:
                self._new_task_run(run, state)
        except Exception as exc:  # the engine would log it on every transition
            report("updating a live view", exc)

    def on_artifact(self, event: Mapping[str, Any]) -> None:
        """List an artifact in the view showing the run that made it (artifact listener).

        A new artifact goes to the view of its task run (a cell's top-level
        task run) or of its flow run (task runs of a shown flow are found
        through it); a progress update goes to whichever view lists it.
        """
        try:
            if event.get("ev") == "artifact_update":
                for shown in list(self.owner.values()):
                    if isinstance(shown.model, RunModel) and shown.model.update_artifact(event):
                        return
                return
            for run_id in (event.get("task_run_id"), event.get("flow_run_id")):
                live = self.owner.get(run_id) if run_id is not None else None
                if live is not None and isinstance(live.model, RunModel):
                    if not live.finished:
                        live.model.add_artifact(event)
                    return
        except Exception as exc:  # a view must never fail the run that made the artifact
            report("listing an artifact in a live view", exc)

    def model_of(self, run_id: str) -> Any:
        """The model of the view showing ``run_id`` (for the log handler), or None.

        Task runs of a shown flow are not registered one by one: a record logged
        in such a run's own context is found through its flow run.
        """
        last_id, last_model = self._last_found
        if run_id == last_id:
            # The console gate and the view's log handler both ask, for every record.
            return last_model
        live = self.owner.get(run_id)
        if live is None:
            ctx = context.task_context.get()
            if ctx is None or ctx.task_run.id != run_id:
                return None
            live = self._shown(ctx.task_run.flow_run_id)
            if live is None:
                return None
        self._last_found = (run_id, live.model)
        return live.model

    def _shown(self, run_id: str | None) -> LiveRun | None:
        """The view showing ``run_id`` (None for no run)."""
        return self.owner.get(run_id) if run_id is not None else None

    def _new_flow_run(self, run: FlowRun, state: State) -> None:
        if _is_session_start(run):
            return  # the session is shown cell by cell, never as one view
        parent = self._shown(run.parent_task_run_id) or self._shown(run.parent_flow_run_id)
        if parent is not None:
            self._join(parent, run, state)
            return
        if not self._in_cell():
            return
        model = RunModel("flow", run.flow_name, run.name, flow_run=run)
        live = self._start(model, run.id)
        live.final_run_id = run.id
        if not live.finished:
            self._route_tasks(live, run.id)

    def _new_task_run(self, run: TaskRun, state: State) -> None:
        if run.flow_run_id is not None and run.flow_run_id != _session_run_id():
            return  # a flow run no view shows (e.g. started from another thread)
        creator = context.task_context.get()
        if creator is not None:
            parent = self.owner.get(creator.task_run.id)
            if parent is None:
                return
            if not isinstance(parent.model, StatusModel):
                self._join(parent, run, state)
                return
            # Created by a %%task cell's body: shown like the cell's top-level task runs.
        if not self._in_cell():
            return
        if creator is None and (in_cell_task_scope() or created_for_cell()):
            # Shown on its next state: a cache hit prints its own line ("cached · took ..."),
            # and a second status line under it would say the same thing again.
            status = StatusModel(run)
            status_view = LiveRun(status, self.mode)
            status_view.final_run_id = run.id
            self._own(status_view, run.id)
            status.push(run, state)
            return
        live = self.cell_view
        if live is None:
            session = _session_run()
            subtitle = f"session {session.name}" if session is not None else ""
            model = RunModel("cell", f"Task runs of cell [{self.cell}]", subtitle)
            live = self.cell_view = self._start(model, None)
        if not live.finished:
            self._join(live, run, state)

    def _show_status(self, live: LiveRun, run: Any, state: State) -> bool:
        """Show a ``%%task`` cell's deferred status line, unless the run is a cache hit.

        False when the line is dropped (nothing more to do for this run).
        """
        if live.finished or state.name == "Pending":
            return True
        if state.name == "Cached":  # the hit's printed line is the cell's one status line
            live.finished = True
            self.owner.pop(run.id, None)
            self._last_found = (None, None)
            return False
        live.on_finish.append(self._finished)
        try:
            live.show()
        except Exception as exc:  # no view then, and no further work for this run
            report("showing a live view", exc)
            live.finished = True
            self.owner.pop(run.id, None)
            return False
        ticker.add(live)
        return True

    def _join(self, live: LiveRun, run: Any, state: State) -> None:
        self._own(live, run.id)
        if isinstance(run, FlowRun):
            self._route_tasks(live, run.id)
        live.model.push(run, state)

    def _route_tasks(self, live: LiveRun, flow_run_id: str) -> None:
        """Send the common transitions of ``flow_run_id``'s task runs to the view's inbox."""
        if isinstance(live.model, RunModel):
            self._inboxes[flow_run_id] = live.model

    def _own(self, live: LiveRun, run_id: str) -> None:
        self.owner[run_id] = live
        live.owned.append(run_id)

    def _start(self, model: Any, run_id: str | None) -> LiveRun:
        live = LiveRun(model, self.mode)
        live.on_finish.append(self._finished)
        try:
            live.show()
        except Exception as exc:  # no view then, and no further work for these runs
            report("showing a live view", exc)
            live.finished = True
            return live
        if run_id is not None:
            self._own(live, run_id)
        ticker.add(live)
        return live

    def _finished(self, live: LiveRun) -> None:
        # Forget the runs of a finished view so the maps do not grow for the kernel's life.
        self._last_found = (None, None)
        for run_id in live.owned:
            if self.owner.get(run_id) is live:
                self.owner.pop(run_id, None)
            self._inboxes.pop(run_id, None)
        if isinstance(live.model, RunModel):
            live.model.apply()  # what came in meanwhile: the inbox must keep no run
        if live.handle is not None and not _on_main_thread():
            # Sent from the ticker thread, the final bundle may have reached no cell that a
            # headless runner was listening to: send it again when the next cell starts.
            self._finished_since_cell.append(live)

    def _in_cell(self) -> bool:
        return self.cell is not None and _on_main_thread()

    def close(self) -> None:
        """Stop updating every view (used on unload)."""
        for live in set(self.owner.values()):
            ticker.discard(live)
        self.owner.clear()
        self._inboxes.clear()
        self._last_found = (None, None)


_MAIN = threading.main_thread().ident
_FINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})


def _listener(
    inboxes: dict[str, RunModel], transition: Callable[[str, Any, State], None]
) -> Callable[[str, Any, State], None]:
    """A tracker's engine listener: a function, which Python calls faster than an object.

    A task run of a shown flow makes three transitions at least, so the
    common ones cost one dict store here, no lock (see ``RunModel.inbox``);
    ``transition`` takes every other one. AwaitingRetry (SCHEDULED) and
    failures are taken at once: a failed try's message must not coalesce away.
    """
    shown = inboxes.get

    def listener(kind: str, run: Any, state: State) -> None:
        if kind == "task":
            model = shown(run.flow_run_id)
            if model is not None:
                value = state.type._value_
                if value in GOING_VALUES:  # the run itself: the model reads it when it folds
                    model.inbox[run.id] = run
                    return
                if value == "COMPLETED":  # its fields: a finished run must not be kept
                    inbox = model.inbox
                    # event_of(run, state), inlined: a call costs as much as the rest.
                    inbox[run.id] = (
                        run.id,
                        run.name,
                        run.task_name,
                        False,
                        state.name,
                        value,
                        state.message,
                        run.start_time,
                        run.end_time,
                        run.run_count,
                        None,
                    )
                    if len(inbox) >= INBOX_MAX:
                        model.apply()
                    return
        transition(kind, run, state)

    return listener


def _on_main_thread() -> bool:
    return threading.get_ident() == _MAIN


def _session_run() -> Any:
    """The notebook session's flow run if it has started (never starts it)."""
    session = context.session_flow_context()
    if session is None:
        return None
    started = getattr(session, "started_run", None)
    return started() if started is not None else session.flow_run


def _session_run_id() -> str | None:
    run = _session_run()
    return run.id if run is not None else None


def _is_session_start(run: FlowRun) -> bool:
    """True for the notebook session's own flow run, as the session creates it.

    The kernel creates that run lazily, and records it before it registers it
    (see :mod:`kernelflow.kernel.session`): a flow run tagged ``notebook``
    while a session is registered but has no run yet is that run.
    """
    session = context.session_flow_context()
    if session is None or "notebook" not in run.tags:
        return False
    started = getattr(session, "started_run", None)
    return started is not None and started() is None


def _mode_for(shell: Any) -> str:
    if getattr(shell, "kernel", None) is None:
        return "text"
    try:
        import anywidget  # noqa: F401
        import ipywidgets  # noqa: F401
    except ImportError as exc:
        logger.warning(
            "kernelflow: live views fall back to HTML (%s); pip install anywidget "
            "ipywidgets for interactive ones",
            exc,
        )
        return "html"
    return "widget"


def subscribe(tracker: Tracker) -> None:
    """Register ``tracker`` with the engine."""
    engine.subscribe(tracker.listener)


def unsubscribe(tracker: Tracker) -> None:
    """Remove ``tracker`` from the engine."""
    engine.unsubscribe(tracker.listener)

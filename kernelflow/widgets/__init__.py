"""Live run widgets for notebooks: run view, ``%%task`` status, history, cache, lineage.

In a notebook with ``%load_ext kernelflow``, calling a flow shows a live view
in the cell's output: the flow and run name, a state badge, the elapsed time,
a progress bar, the table of task runs (click a row for its logs and
error) and the artifacts its runs create (``kernelflow.artifacts``). It
keeps updating after the cell returns, while submitted task runs finish;
task runs submitted at the top level of a cell get the same view, and a
``%%task`` cell shows one live status line. A flow of thousands of task runs
is shown grouped by task name, and the kernel sends a few updates a second
at most.

Browsers of the store:

>>> from kernelflow.widgets import RunHistory, CacheBrowser, LineageView
>>> RunHistory()            # doctest: +SKIP  (also: %kf runs)
>>> CacheBrowser()          # doctest: +SKIP  (also: %kf cache)
>>> LineageView()           # doctest: +SKIP  (also: %kf graph)

When a view is final, its output is replaced by static HTML of the final
state (runs' errors and logs fold open in place), so a saved notebook,
nbviewer and GitHub show it, never "model not found".

Run log lines in a kernel: a run a view shows logs into the view (warnings
shown at once, every line in a collapsible log), never as lines on stderr;
kernelflow's own lines about runs no view shows are folded into one summary
line per flow (:mod:`kernelflow.widgets._summary`); lines the user's code
logs still print. A terminal IPython and scripts keep Prefect's console lines.

Widgets are on by default in a notebook. ``KERNELFLOW_WIDGETS=off`` in the
kernel's environment, or :func:`set_enabled` ``(False)``, turns the live
views off (each flow then prints its summary line). Without a widget front
end every view falls back to HTML, and in a terminal IPython to a text table.
Importing this package is cheap: ipywidgets and anywidget are imported only
when a view is shown.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING, Any

from kernelflow.settings import current
from kernelflow.widgets._cells import cell_number

if TYPE_CHECKING:
    from kernelflow.widgets._cache import CacheBrowser
    from kernelflow.widgets._history import RunHistory
    from kernelflow.widgets._lineage import LineageView
    from kernelflow.widgets._view import RunView, TaskStatus

__all__ = [
    "CacheBrowser",
    "LineageView",
    "RunHistory",
    "RunView",
    "TaskStatus",
    "enabled",
    "install",
    "set_enabled",
    "uninstall",
]

_LAZY = {
    "CacheBrowser": "kernelflow.widgets._cache",
    "LineageView": "kernelflow.widgets._lineage",
    "RunHistory": "kernelflow.widgets._history",
    "RunView": "kernelflow.widgets._view",
    "TaskStatus": "kernelflow.widgets._view",
}

_lock = threading.Lock()
_override: bool | None = None
#: The installed tracker and log handler per shell (one shell per kernel in practice).
_installed: dict[int, _Installation] = {}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kernelflow.widgets' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def enabled() -> bool:
    """Whether live views are on: :func:`set_enabled`, else ``KERNELFLOW_WIDGETS`` (default on)."""
    if _override is not None:
        return _override
    return current().widgets


def set_enabled(on: bool | None) -> None:
    """Turn live views on or off in this kernel (overrides ``KERNELFLOW_WIDGETS``).

    Parameters
    ----------
    on:
        False stops showing new views at once (views already shown finish
        updating); True shows them again; None goes back to ``KERNELFLOW_WIDGETS``.
    """
    global _override
    from kernelflow import engine

    with _lock:
        _override = None if on is None else bool(on)
        for installation in _installed.values():
            tracker = installation.tracker
            if tracker is None:
                continue
            engine.unsubscribe(tracker.listener)
            if installation.summary is not None:
                engine.unsubscribe(installation.summary)
            if enabled():
                engine.subscribe(tracker.listener)
            elif installation.summary is not None:
                engine.subscribe(installation.summary)


class _Installation:
    """What :func:`install` set up in one shell: cell events now, the tracker later."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.cell: int | None = None
        self.tracker: Any = None
        self.handler: logging.Handler | None = None
        #: In a kernel: the one-line-per-flow listener used while views are off.
        self.summary: Any = None
        self.removed = False
        #: kernelflow.logs.is_own_record, bound when the gate is set (not imported per line).
        self.is_own_record: Callable[[logging.LogRecord], bool] = _not_own

    def console_gate(self, record: logging.LogRecord) -> bool:
        """Whether the console prints ``record`` (see :func:`kernelflow.logs.set_console_gate`).

        In a kernel, run log lines must not flood the cell's output: a line of a
        run a live run view shows goes into that view only, and kernelflow's
        own lines about other runs are folded into the flow's summary line or
        a ``%%task`` cell's status line. Lines the user's code logs itself
        still print, unless a run view shows them.
        """
        run_id = getattr(record, "run_id", None)
        if run_id is None:
            return True
        if self.is_own_record(record):  # the engine's lines about runs (most lines)
            return False  # shown by the run's view, or folded into a summary or status line
        tracker = self.tracker
        model = tracker.model_of(run_id) if tracker is not None and enabled() else None
        # A run view shows every line of its runs (a status line shows none).
        return model is None or not hasattr(model, "notices")

    def pre_run_cell(self, info: Any = None) -> None:
        self.cell = cell_number(self.shell, info)
        if self.tracker is not None:
            self.tracker.pre_run_cell(info)

    def post_run_cell(self, result: Any = None) -> None:
        if self.tracker is not None:
            self.tracker.post_run_cell(result)
        self.cell = None

    def attach(self, _engine: Any = None) -> None:
        """Create the tracker and subscribe it (called once the engine is imported)."""
        from kernelflow import artifacts, engine
        from kernelflow.logs import configure
        from kernelflow.widgets._live import Tracker
        from kernelflow.widgets._logs import ViewLogHandler

        with _lock:
            if self.removed or self.tracker is not None:
                return
            tracker = Tracker(self.shell)
            # The engine may be imported by the very cell that runs the first flow.
            tracker.cell = self.cell
            self.handler = ViewLogHandler(tracker.model_of)
            configure().addHandler(self.handler)
            if getattr(self.shell, "kernel", None) is not None:
                # A kernel: a cell's output is no console (a terminal keeps Prefect's lines).
                from kernelflow.logs import is_own_record, set_console_gate
                from kernelflow.widgets._summary import FlowSummary

                self.is_own_record = is_own_record
                self.summary = FlowSummary()
                set_console_gate(self.console_gate)
            if enabled():
                engine.subscribe(tracker.listener)
            elif self.summary is not None:
                engine.subscribe(self.summary)
            artifacts.add_listener(tracker.on_artifact)
            self.tracker = tracker


def _not_own(record: logging.LogRecord) -> bool:
    return False


def install(shell: Any = None) -> None:
    """Show live views in ``shell`` (default: the running IPython), once.

    Called by ``%load_ext kernelflow``. Registers the shell's ``pre_run_cell``
    and ``post_run_cell`` events now and, once the engine is imported (the
    notebook's first flow or task), an engine listener and a log handler on
    the ``kernelflow`` logger. Imports neither the engine nor ipywidgets.

    Parameters
    ----------
    shell:
        An IPython ``InteractiveShell``; a kernel's shows widgets, a terminal's
        prints a text table when a flow run ends.
    """
    from kernelflow.widgets._hooks import when_imported

    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None:
            return
    with _lock:
        if id(shell) in _installed:
            return
        installation = _installed[id(shell)] = _Installation(shell)
    shell.events.register("pre_run_cell", installation.pre_run_cell)
    shell.events.register("post_run_cell", installation.post_run_cell)
    when_imported("kernelflow.engine", installation.attach)


def uninstall(shell: Any = None) -> None:
    """Undo :func:`install` for ``shell`` (default: the running IPython)."""
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    with _lock:
        installation = _installed.pop(id(shell), None)
        if installation is None:
            return
        installation.removed = True
    for name, callback in (
        ("pre_run_cell", installation.pre_run_cell),
        ("post_run_cell", installation.post_run_cell),
    ):
        try:
            shell.events.unregister(name, callback)
        except ValueError:
            pass
    tracker = installation.tracker
    if tracker is not None:
        from kernelflow import artifacts, engine
        from kernelflow.logs import configure

        artifacts.remove_listener(tracker.on_artifact)
        engine.unsubscribe(tracker.listener)
        if installation.summary is not None:
            from kernelflow.logs import set_console_gate

            engine.unsubscribe(installation.summary)
            set_console_gate(None)
        if installation.handler is not None:
            configure().removeHandler(installation.handler)
        tracker.close()


def tracker_of(shell: Any) -> Any:
    """The live-view tracker of ``shell``, or None (not installed, or no flow used yet)."""
    installation = _installed.get(id(shell))
    return installation.tracker if installation is not None else None

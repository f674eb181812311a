"""Live run widgets for notebooks: run view, ``%%task`` status, history, cache, lineage.

In a notebook with ``%load_ext kernelflow``, calling a flow shows a live view
in the cell's output: the flow and run name, a state badge, the elapsed time,
a progress bar and the table of task runs (click a row for its logs and
error). It keeps updating after the cell returns, while submitted task runs
finish; task runs submitted at the top level of a cell get the same view, and
a ``%%task`` cell shows one live status line. A flow of thousands of task runs
is shown grouped by task name, and the kernel sends a few updates a second
at most.

Browsers of the store:

>>> from kernelflow.widgets import RunHistory, CacheBrowser, LineageView
>>> RunHistory()            # doctest: +SKIP  (also: %kf runs)
>>> CacheBrowser()          # doctest: +SKIP  (also: %kf cache)
>>> LineageView()           # doctest: +SKIP  (also: %kf graph)

Widgets are on by default in a notebook. ``KERNELFLOW_WIDGETS=off`` in the
kernel's environment, or :func:`set_enabled` ``(False)``, turns the live
views off. Without a widget front end every view falls back to HTML, and in a
terminal IPython to a text table. Importing this package is cheap: ipywidgets
and anywidget are imported only when a view is shown.
"""

from __future__ import annotations

import logging
import threading
from importlib import import_module
from typing import TYPE_CHECKING, Any

from kernelflow.settings import env

if TYPE_CHECKING:
    from kernelflow.widgets._cache import CacheBrowser
    from kernelflow.widgets._history import RunHistory
    from kernelflow.widgets._lineage import LineageView
    from kernelflow.widgets._status import TaskStatus
    from kernelflow.widgets._view import RunView

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
    "TaskStatus": "kernelflow.widgets._status",
}

_OFF = frozenset({"off", "0", "false", "no"})
_lock = threading.Lock()
_override: bool | None = None
#: The installed tracker and log handler per shell (one shell per kernel in practice).
_installed: dict[int, tuple[Any, Any, logging.Handler]] = {}


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
    return env("WIDGETS", "on").strip().lower() not in _OFF


def set_enabled(on: bool) -> None:
    """Turn live views on or off in this kernel (overrides ``KERNELFLOW_WIDGETS``).

    Parameters
    ----------
    on:
        False stops showing new views at once; views already shown finish updating.
    """
    global _override
    from kernelflow import engine

    with _lock:
        _override = bool(on)
        for tracker, _shell, _handler in _installed.values():
            engine.unsubscribe(tracker)
            if _override:
                engine.subscribe(tracker)


def install(shell: Any = None) -> None:
    """Show live views in ``shell`` (default: the running IPython), once.

    Called by ``%load_ext kernelflow``. Registers an engine listener, a log
    handler on the ``kernelflow`` logger and the shell's ``pre_run_cell`` and
    ``post_run_cell`` events. Costs no import of ipywidgets.

    Parameters
    ----------
    shell:
        An IPython ``InteractiveShell``; a kernel's shows widgets, a terminal's
        prints a text table when a flow run ends.
    """
    from kernelflow import engine
    from kernelflow.logs import configure
    from kernelflow.widgets._live import Tracker
    from kernelflow.widgets._logs import ViewLogHandler

    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None:
            return
    with _lock:
        if id(shell) in _installed:
            return
        tracker = Tracker(shell)
        handler = ViewLogHandler(tracker.model_of)
        configure().addHandler(handler)
        shell.events.register("pre_run_cell", tracker.pre_run_cell)
        shell.events.register("post_run_cell", tracker.post_run_cell)
        if enabled():
            engine.subscribe(tracker)
        _installed[id(shell)] = (tracker, shell, handler)


def uninstall(shell: Any = None) -> None:
    """Undo :func:`install` for ``shell`` (default: the running IPython)."""
    from kernelflow import engine
    from kernelflow.logs import configure

    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    with _lock:
        found = _installed.pop(id(shell), None)
    if found is None:
        return
    tracker, _shell, handler = found
    engine.unsubscribe(tracker)
    configure().removeHandler(handler)
    for name, callback in (("pre_run_cell", tracker.pre_run_cell),
                           ("post_run_cell", tracker.post_run_cell)):
        try:
            shell.events.unregister(name, callback)
        except ValueError:
            pass
    tracker.close()


def tracker_of(shell: Any) -> Any:
    """The live-view tracker installed in ``shell``, or None (for the kernel magics)."""
    found = _installed.get(id(shell))
    return found[0] if found is not None else None

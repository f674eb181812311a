"""IPython integration: ``%load_ext kernelflow`` registers ``%%task`` and ``%kf``.

Loading is cheap and silent: it registers the magics, a ``pre_run_cell`` hook
(to learn each cell's id) and the notebook session (see
:mod:`kernelflow.kernel.session`), whose flow run is only created when
something is first recorded under it. Nothing here imports duckdb, pandas,
pyarrow or ipywidgets.

Modules: :mod:`.cells` (what a cell reads and writes), :mod:`.dependencies`
(helpers and libraries it uses), :mod:`.prepare` (compiling and running the
body), :mod:`.execute` (the cell as a task run), :mod:`.outputs` (saving and
restoring outputs), :mod:`.replay` (recorded output), :mod:`.why`,
:mod:`.lineage`, :mod:`.stale`, :mod:`.commands` and :mod:`.views` (``%kf``),
:mod:`.magics`, :mod:`.tracebacks` (run errors with the user's frames only), and
:mod:`.pause_form` (the form of a paused flow run; loaded
only when a flow pauses, through :func:`show_pause_form`, which :func:`load`
registers in :mod:`kernelflow._pause_hooks`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["load", "runner_of", "show_pause_form", "unload"]

_ATTRIBUTE = "_kernelflow_runner"


def load(ipython: Any) -> None:
    """Register kernelflow's magics and session in ``ipython`` (idempotent)."""
    if getattr(ipython, _ATTRIBUTE, None) is not None:
        return
    from kernelflow.kernel.magics import KernelflowMagics
    from kernelflow.kernel.session import NotebookSession

    session = NotebookSession()
    magics = KernelflowMagics(ipython, session)
    ipython.register_magics(magics)
    ipython.events.register("pre_run_cell", magics.pre_run_cell)
    session.install()
    setattr(ipython, _ATTRIBUTE, magics)
    from kernelflow.kernel.tracebacks import install as install_tracebacks

    install_tracebacks(ipython)  # run errors show the user's frames only
    from kernelflow.widgets import install as install_widgets  # live views; imports nothing heavy

    install_widgets(ipython)
    from kernelflow._pause_hooks import register_pause_presenter

    register_pause_presenter(show_pause_form)  # a flow paused in this kernel shows a form


def unload(ipython: Any) -> None:
    """Remove what :func:`load` added; the session's run (if any) ends now."""
    magics = getattr(ipython, _ATTRIBUTE, None)
    if magics is None:
        return
    from kernelflow._pause_hooks import pause_presenter, register_pause_presenter

    if pause_presenter() is show_pause_form:
        register_pause_presenter(None)
    from kernelflow.widgets import uninstall as uninstall_widgets

    uninstall_widgets(ipython)
    from kernelflow.kernel.tracebacks import uninstall as uninstall_tracebacks

    uninstall_tracebacks(ipython)
    ipython.events.unregister("pre_run_cell", magics.pre_run_cell)
    magics.close()
    magics.session.uninstall()
    registered = ipython.magics_manager.magics
    registered["cell"].pop("task", None)
    registered["line"].pop("kf", None)
    setattr(ipython, _ATTRIBUTE, None)


def runner_of(ipython: Any) -> Any:
    """The :class:`~kernelflow.kernel.execute.CellRunner` of a shell (None if not loaded)."""
    magics = getattr(ipython, _ATTRIBUTE, None)
    return magics.runner if magics is not None else None


def show_pause_form(*, model: Any, run_name: str, verb: str, command: str) -> Any:
    """Show the form of a paused flow run in the current cell (the registered pause presenter).

    Imports :mod:`.pause_form` (and ipywidgets) only now, when a flow pauses.
    See :meth:`kernelflow.kernel.pause_form.PauseForm.show` for the parameters.
    """
    from kernelflow.kernel.pause_form import PauseForm

    return PauseForm.show(model=model, run_name=run_name, verb=verb, command=command)

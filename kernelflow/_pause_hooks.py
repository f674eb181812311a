"""Where a front end registers how a paused flow run is shown to the person who resumes it.

:mod:`kernelflow.flow_runs` (the user API) pauses a flow run; showing the
pause as a form in a notebook cell is the kernel's job (a front end, layers
above). Imports only go down, so the kernel extension registers its
presenter here when it loads (``%load_ext kernelflow``), and the pause looks
it up: without one (a script, a terminal, a kernel without the extension),
the run is resumed with the command it prints.

A presenter is called with keyword arguments ``model`` (the input's model),
``run_name``, ``verb`` (``"paused"`` or ``"suspended"``) and ``command`` (the
shell command that resumes the run), and returns the shown form (which the
pause later tells how the run ended), or None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["PausePresenter", "pause_presenter", "register_pause_presenter"]

#: Shows a paused run's form: keyword arguments ``model``, ``run_name``, ``verb``, ``command``.
PausePresenter = Callable[..., Any]

_presenter: PausePresenter | None = None


def register_pause_presenter(fn: PausePresenter | None) -> None:
    """Show pauses with ``fn`` from now on (None: show none; the last registration wins).

    Parameters
    ----------
    fn:
        Called on the pausing thread as ``fn(model=..., run_name=..., verb=...,
        command=...)``; returns the form shown, or None.
    """
    global _presenter
    _presenter = fn


def pause_presenter() -> PausePresenter | None:
    """The registered presenter, or None when no front end registered one."""
    return _presenter

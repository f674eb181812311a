"""What drives one live view: pushes its model's changes, then its final state, once.

A :class:`LiveRun` is what the ticker thread (:mod:`kernelflow.widgets._ticker`)
updates a few times a second. When nothing shown can change any more it
replaces the widget output by static HTML and text of the final state (and
closes the widget), so a saved notebook, nbviewer and GitHub show the final
table, and a notebook executed headless keeps it too. In a terminal IPython
(no kernel, no widgets) the final table is printed as text instead.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from kernelflow.widgets._faults import report
from kernelflow.widgets._status import StatusModel
from kernelflow.widgets._ticker import INTERVAL

__all__ = ["FIRST_UPDATE", "HTML_REFRESH_SECONDS", "LiveRun", "StaticRunView"]

#: Seconds a widget view waits after it is shown before its first update.
FIRST_UPDATE = 2 * INTERVAL

#: In "html" mode (no widget library) the saved output is replaced at most this often.
HTML_REFRESH_SECONDS = 1.0


class StaticRunView:
    """A view without widgets: HTML and text, refreshed by replacing the output."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        return {"text/html": self.model.html(live=False), "text/plain": self.model.text()}


class LiveRun:
    """Drives one view: pushes model changes, then the final state, once.

    Parameters
    ----------
    model:
        What the view shows: a :class:`RunModel`, or a :class:`StatusModel`.
    mode:
        ``"widget"`` (a :class:`~kernelflow.widgets._view.RunView`), ``"html"``
        (a :class:`StaticRunView` whose output is replaced) or ``"text"``
        (printed when final).
    """

    def __init__(self, model: Any, mode: str) -> None:
        self.model = model
        self.mode = mode
        self.view: Any = None
        self.handle: Any = None
        self.finished = False
        self._lock = threading.Lock()
        #: When the view was shown (its first state went out with it).
        self._shown_at = 0.0
        self._last_html = 0.0
        self._html_version = -1
        self.on_finish: list = []
        #: The static bundle that replaced the view once final (see :meth:`finish`).
        self.final_bundle: dict[str, str] | None = None
        #: Whether :meth:`show` ran (a ``%%task`` status line waits for its run's next state).
        self.shown = False
        #: The run whose final state, reached on the main thread, ends the view at once.
        self.final_run_id: str | None = None
        #: The runs the tracker finds this view by (forgotten when it finishes). Task runs
        #: of a shown flow run are found through their flow run, so they are not listed.
        self.owned: list[str] = []

    def show(self) -> None:
        """Display the view in the current cell's output (call on the main thread)."""
        self.shown = True
        self._shown_at = time.monotonic()
        if self.mode == "text":
            return
        from IPython.display import display

        if self.mode == "widget":
            from kernelflow.widgets._view import RunView, TaskStatus

            widget = TaskStatus if isinstance(self.model, StatusModel) else RunView
            self.view = widget(self.model)
        else:
            self.view = StaticRunView(self.model)
        self.handle = display(self.view, display_id=True)

    def tick(self) -> bool:
        """Push pending changes (the ticker calls this); True once final."""
        if self.finished:
            return True
        self.model.apply()  # the transitions waiting in the model's inbox
        if self.model.is_final():
            self.finish()
            return True
        if self.mode == "widget":
            # The comm_open carried the first state: the first update waits two rounds, so
            # a short flow (most of a 10,000-task one takes well under a second) sends its
            # first and final states only, and a longer one a message a round at most.
            if time.monotonic() - self._shown_at >= FIRST_UPDATE:
                self.view.refresh()
        elif self.mode == "html" and self.handle is not None:
            now = time.monotonic()
            if (
                self.model.version != self._html_version
                and now - self._last_html >= HTML_REFRESH_SECONDS
            ):
                self._html_version = self.model.version
                self._last_html = now
                self.handle.update(self.view)
        return False

    def finish(self) -> None:
        """Push the final state and save it as the output's static HTML, once."""
        with self._lock:
            if self.finished:
                return
            self.finished = True
        try:
            if self.handle is not None:
                # The widget output becomes static HTML + text: a saved notebook, nbviewer
                # and GitHub show the final state, never "model not found" (a saved
                # notebook keeps no widget models). Nothing shown can change any more.
                self.final_bundle = {
                    "text/html": self.model.html(live=False),
                    "text/plain": self.model.text(),
                }
                self.handle.update(self.final_bundle, raw=True)
                if self.mode == "widget":
                    try:
                        self.view.refresh()  # the widget object ends in the final state too
                        self.view.close()  # its only view was just replaced
                    except Exception as exc:  # the static output stands either way
                        report("closing a finished live view", exc)
            elif self.mode == "text":
                print(self.model.text(), flush=True)
        finally:
            for callback in self.on_finish:
                callback(self)

    def republish(self) -> None:
        """Send the final bundle again (from a later cell, so headless runs record it)."""
        if self.handle is not None and self.final_bundle is not None:
            self.handle.update(self.final_bundle, raw=True)

"""The widget every kernelflow view is built on, and the live run view.

:class:`LiveHTML` is one anywidget whose only synced trait is ``html``,
rendered in the kernel by :mod:`kernelflow.widgets._render`; its small
JavaScript module (``static/live.js``) shows it, keeps times ticking, and
sends clicks and visibility back as custom messages. One trait means one comm
message per update, whatever changed.

Its MIME bundle carries, next to the widget view, the same content as static
``text/html`` and ``text/plain``: a front end without the widget manager
(nbviewer, GitHub, nbconvert) shows those instead of a blank output, and a
headless run's saved notebook keeps the final table.

This module imports ipywidgets and anywidget; only code that shows a widget
imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets
import traitlets

from kernelflow.widgets._faults import report

__all__ = ["LiveHTML", "ModelView", "RunView", "TaskStatus", "with_fallbacks"]

_ESM = (Path(__file__).parent / "static" / "live.js").read_text(encoding="utf-8")


_layout: list[ipywidgets.Layout] = []


def _shared_layout() -> ipywidgets.Layout:
    if not _layout or _layout[0].comm is None:  # closed (e.g. Widget.close_all())
        _layout[:] = [ipywidgets.Layout()]
    return _layout[0]


class LiveHTML(anywidget.AnyWidget):
    """An HTML view rendered by the kernel; clicks and visibility come back.

    Parameters
    ----------
    html:
        The first content.
    on_click:
        Called as ``on_click(id, action)`` when the user clicks an element
        carrying ``data-kf-id`` (and optionally ``data-kf-action``).

    Attributes
    ----------
    visible:
        True while at least one view of this widget is on screen.
    """

    _esm = _ESM
    html = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self, html: str = "", on_click: Callable[[str, str], None] | None = None, **kwargs: Any
    ) -> None:
        # Every DOMWidget opens a Layout model of its own (one more comm_open); views
        # never style theirs, so they all share one.
        kwargs.setdefault("layout", _shared_layout())
        super().__init__(html=html, **kwargs)
        self._on_click = on_click
        self._visible_views: set[str] = set()
        self.on_msg(self._handle_message)

    @property
    def visible(self) -> bool:
        """True while a view of this widget is on screen (reported by the browser)."""
        return bool(self._visible_views)

    def on_visibility(self, visible: bool) -> None:
        """Called when the widget becomes visible or hidden; subclasses may react."""

    def _handle_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        try:
            if not isinstance(content, dict):
                return
            event = content.get("event")
            if event == "click" and self._on_click is not None:
                self._on_click(str(content.get("id", "")), str(content.get("action", "select")))
            elif event == "visible":
                before = self.visible
                view = str(content.get("view", ""))
                if content.get("visible"):
                    self._visible_views.add(view)
                else:
                    self._visible_views.discard(view)
                if self.visible != before:
                    self.on_visibility(self.visible)
        except Exception as exc:  # a click must never raise into the kernel's comm handling
            report("handling a click in a kernelflow view", exc)

    # --- fallbacks for front ends without the widget manager ---------------------------
    def static_html(self) -> str:
        """What front ends without widgets show (default: the live HTML)."""
        return self.html

    def static_text(self) -> str:
        """What text-only front ends show."""
        return "kernelflow view (open the notebook in Jupyter to see it)"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return with_fallbacks(
            super()._repr_mimebundle_(**kwargs), self.static_html, self.static_text
        )


def with_fallbacks(bundle: Any, html: Callable[[], str], text: Callable[[], str]) -> Any:
    """Add ``text/html`` and ``text/plain`` to a widget's MIME bundle.

    Parameters
    ----------
    bundle:
        What ipywidgets returned: a data dict, or ``(data, metadata)``.
    html, text:
        Render the static fallbacks (a failure is logged once; the widget view stays).
    """
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    try:
        data["text/html"] = html()
        data["text/plain"] = text()
    except Exception as exc:
        report("rendering a kernelflow view as HTML", exc)
    return bundle


class ModelView(LiveHTML):
    """A widget showing a live model (anything with ``version``, ``html()``, ``text()``).

    The ticker calls :meth:`refresh`; it renders only when the model's version
    moved since the last push, so an idle view sends nothing.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self._pushed = model.version
        super().__init__(model.html(), on_click=self._clicked)

    def refresh(self, force: bool = False) -> bool:
        """Re-render if the model changed since the last push; True if it sent an update."""
        self.model.apply()
        version = self.model.version
        if version == self._pushed and not force:
            return False
        self._pushed = version
        self.html = self.model.html()
        return True

    def _clicked(self, row_id: str, _action: str) -> None:
        select = getattr(self.model, "select", None)
        if select is not None:
            select(row_id)
            self.refresh()

    def static_html(self) -> str:
        return self.model.html(live=False)

    def static_text(self) -> str:
        return self.model.text()


class RunView(ModelView):
    """The live view of one flow run, or of the task runs a cell submitted.

    Shows the flow and run name, a state badge, the elapsed time, a progress
    bar (finished / known task runs) and the task run table; clicking a row
    shows that run's logs and error. Made by the notebook hook when a flow
    starts in a cell; see :mod:`kernelflow.widgets`.

    Parameters
    ----------
    model:
        What to show (a :class:`~kernelflow.widgets._model.RunModel`), updated
        by the engine's listener.
    """


class TaskStatus(ModelView):
    """The one-line live status of a ``%%task`` cell's run.

    Running with its elapsed time, retrying (try 2 of 4, next in 5 s),
    completed in 3.2 s, cached (saved 41 s), failed (message) or timed out.

    Parameters
    ----------
    model:
        A :class:`~kernelflow.widgets._status.StatusModel`.
    """

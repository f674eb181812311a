"""The form a paused flow run shows in its notebook cell: one input per field, and Resume.

``pause_flow_run(wait_for_input=Model)`` in a Jupyter kernel shows, in the
output of the cell that paused: the model's description (Markdown), one input
per field, chosen by the field's type (text, integer, float, checkbox,
password for ``SecretStr``, drop-down for a ``Literal`` or an ``Enum``, JSON
text for anything else), a Resume button, a status line and the
``kernelflow flow-run resume`` command that does the same from a terminal.
Resume validates the values with the model: input that does not fit is shown
under the button and the run stays paused. When the pause ends (from the
form, from elsewhere, or by timing out) the form is replaced by one line
saying how, so a saved notebook keeps a record rather than a dead widget.

Why a subshell. The cell that paused is still running: the kernel's main
thread is blocked in it and handles no message until it ends, including the
widgets' own (the browser's value updates and the click). ipykernel 7.4 and
later route each incoming comm message in their shell-channel thread, asking
the comm which subshell (JEP 91: a thread with its own event loop) handles
it. The form starts a subshell and answers that question for its widgets'
comms, so their messages are handled there while the cell waits; the click
hands the validated input to the waiting flow through a ``threading.Event``.
The subshell is removed when the pause ends. Two ipykernel internals are used
(the subshell manager's create and delete, and the comm's routing hook); both
are checked before use.

Where they are missing (an older ipykernel), the cell shows the prompt
without inputs, with the command to run in a terminal; that command works in
every case, form or not.
"""

from __future__ import annotations

import concurrent.futures
import enum
import html
import json
import logging
import threading
import types
import typing
from collections.abc import Callable
from typing import Any

__all__ = ["PauseForm"]

_log = logging.getLogger("kernelflow.kernel")
_BOX = (
    "font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:13px;"
    "padding:4px 8px;border-left:3px solid {color}"
)


class PauseForm:
    """The inputs of one pause, shown in the cell that paused.

    Made by :meth:`show`. The waiting flow polls :meth:`take` (or waits on
    :attr:`submitted`) and ends the form with :meth:`close`.

    Attributes
    ----------
    submitted
        Set when Resume was pressed with input that fits the model.
    """

    #: The display handle of the form, set when it is shown (see ``show``).
    _handle: Any

    def __init__(
        self,
        model: Any,
        run_name: str,
        verb: str,
        command: str,
        router: _SubshellRouter | None,
    ) -> None:
        self.model = model
        self.submitted = threading.Event()
        self._lock = threading.Lock()
        self._state = "waiting"  # -> "submitted" -> "taken"
        self._value: Any = None
        self._router = router
        self._widgets: list[Any] = []
        self._inputs: list[tuple[str, Callable[[], Any]]] = []
        self._status: Any = None
        self._button: Any = None
        fields = bool(model is not None and model.model_fields)
        name = html.escape(run_name)
        if router is None:
            prompt = (
                f"<b>Flow run '{name}' is {verb}.</b> This kernel cannot take input while the "
                "cell runs; resume it from a terminal:"
            )
            text = f"Flow run '{run_name}' is {verb}. Resume it from a terminal: {command}"
            self.view: Any = {
                "text/html": f"<div style='{_BOX.format(color='#6b7280')}'>{prompt}<br>"
                f"<code>{html.escape(command)}</code></div>",
                "text/plain": text,
            }
            return
        import ipywidgets as w

        what = "Fill in the input and press Resume." if fields else "Press Resume to go on."
        header = self._add(w.HTML(f"<b>Flow run '{name}' is {verb}.</b> {what}"))
        rows = []
        if model is not None:
            for field_name, info in model.model_fields.items():
                widget, read = _field_input(w, field_name, info)
                rows.append(self._add(widget))
                self._inputs.append((info.alias or field_name, read))
        self._button = self._add(w.Button(description="Resume", button_style="primary"))
        self._button.on_click(self._on_click)
        self._status = self._add(w.HTML(""))
        footer = self._add(
            w.HTML(f"<small>or from a terminal: <code>{html.escape(command)}</code></small>")
        )
        actions = self._add(w.HBox([self._button, self._status]))
        self.view = self._add(w.VBox([header, *rows, actions, footer]))

    @classmethod
    def show(cls, *, model: Any, run_name: str, verb: str, command: str) -> PauseForm:
        """Display the form for a pause in the current cell.

        Parameters
        ----------
        model
            The input model (a ``RunInput`` subclass), or None for a pause without input.
        run_name
            The paused flow run's name.
        verb
            ``paused`` or ``suspended``.
        command
            The ``kernelflow flow-run resume`` command line for this pause.
        """
        from IPython import get_ipython
        from IPython.display import Markdown, display

        router = _SubshellRouter.start(get_ipython().kernel)
        form = cls(model, run_name, verb, command, router)
        description = getattr(model, "_description", None) if model is not None else None
        if isinstance(description, str) and description.strip():
            display(Markdown(description))
        raw = isinstance(form.view, dict)
        form._handle = display(form.view, display_id=True, raw=raw)
        return form

    def take(self) -> tuple[bool, Any]:
        """``(True, input)`` once, after Resume with input that fits; else ``(False, None)``."""
        with self._lock:
            if self._state != "submitted":
                return False, None
            self._state = "taken"
            return True, self._value

    def note(self, message: str) -> None:
        """Show ``message`` (e.g. why a resume was refused) under the Resume button."""
        if self._status is not None:
            self._status.value = f"<span style='color:#dc2626'>{html.escape(message)}</span>"

    def close(self, kind: str, text: str) -> None:
        """Replace the form by one line (``kind``: ``resumed`` or ``failed``) and free it."""
        with self._lock:
            self._state = "closed"
        color = "#16a34a" if kind == "resumed" else "#dc2626"
        bundle = {
            "text/plain": text,
            "text/html": f"<div style='{_BOX.format(color=color)}'>{html.escape(text)}</div>",
        }
        try:
            self._handle.update(bundle, raw=True)
        finally:
            for widget in self._widgets:
                for part in (
                    widget,
                    getattr(widget, "layout", None),
                    getattr(widget, "style", None),
                ):
                    if part is not None:
                        part.close()
            if self._router is not None:
                self._router.stop()

    # -- in the subshell thread
    def _on_click(self, _button: Any) -> None:
        values = {name: read() for name, read in self._inputs}
        value = None
        if self.model is not None:
            import pydantic

            from kernelflow.input.run_input import describe_validation_error

            try:
                value = self.model.model_validate(values)
            except pydantic.ValidationError as exc:
                self.note(describe_validation_error(exc))
                return
        with self._lock:
            if self._state != "waiting":
                return
            self._state, self._value = "submitted", value
        self._button.disabled = True
        self._status.value = "Resuming…"
        self.submitted.set()

    def _add(self, widget: Any) -> Any:
        self._widgets.append(widget)
        if self._router is not None:
            self._router.route(widget)
        return widget


def _field_input(w: Any, name: str, info: Any) -> tuple[Any, Callable[[], Any]]:
    """The input widget for one model field, and how to read its value for validation."""
    annotation, optional = _without_none(info.annotation)
    default = None if info.is_required() else info.get_default(call_default_factory=True)
    common: dict[str, Any] = {
        "description": info.title or name,
        "style": {"description_width": "initial"},
    }
    if info.description:
        common["tooltip"] = info.description
    choices = _choices(annotation)
    if annotation is bool:
        widget = w.Checkbox(value=bool(default), indent=False, **common)
        return widget, lambda: widget.value
    if choices is not None:
        options = [(_choice_label(c), c) for c in choices]
        if optional:
            options.insert(0, ("—", None))
        initial = default if default in choices else None
        widget = w.Dropdown(options=options, value=initial, **common)
        return widget, lambda: widget.value
    if annotation is int:
        widget = w.IntText(value=default if isinstance(default, int) else 0, **common)
        return widget, lambda: widget.value
    if annotation is float:
        initial = float(default) if isinstance(default, (int, float)) else 0.0
        widget = w.FloatText(value=initial, **common)
        return widget, lambda: widget.value
    if _is_secret(annotation):
        widget = w.Password(value="", **common)
        return widget, lambda: widget.value or (None if optional else "")
    if annotation is str:
        widget = w.Text(value=default if isinstance(default, str) else "", **common)
        return widget, lambda: widget.value or (None if optional else "")
    # Anything else (lists, dicts, dates, nested models): JSON text, as on the command line.
    widget = w.Text(value=_json_text(default), placeholder="JSON", **common)
    return widget, lambda: _parse_json_text(widget.value, optional)


def _without_none(annotation: Any) -> tuple[Any, bool]:
    """``(X, True)`` for ``X | None`` / ``Optional[X]``; else ``(annotation, False)``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            return rest[0], True
    return annotation, False


def _choices(annotation: Any) -> list[Any] | None:
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return list(annotation)
    return None


def _choice_label(choice: Any) -> str:
    return choice.name if isinstance(choice, enum.Enum) else str(choice)


def _is_secret(annotation: Any) -> bool:
    import pydantic

    return annotation is pydantic.SecretStr


def _json_text(value: Any) -> str:
    if value is None:
        return ""
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return str(value)


def _parse_json_text(text: str, optional: bool) -> Any:
    if not text.strip():
        return None if optional else text
    try:
        return json.loads(text)
    except ValueError:
        return text  # pydantic says what was expected


class _SubshellRouter:
    """Routes the messages of some comms to a subshell of their own (ipykernel 7.4+).

    Use :meth:`start`, then :meth:`route` each widget; :meth:`stop` gives the
    comms back to the main shell and removes the subshell.
    """

    def __init__(self, thread: Any, manager: Any, subshell_id: str) -> None:
        self._thread = thread
        self._manager = manager
        self.subshell_id = subshell_id
        self._comms: list[Any] = []

    @classmethod
    def start(cls, kernel: Any) -> _SubshellRouter | None:
        """A router with a new subshell, or None when this kernel cannot route comms."""
        try:
            from ipykernel.comm.comm import BaseComm
        except ImportError:
            return None
        thread = getattr(kernel, "shell_channel_thread", None)
        if thread is None or not hasattr(BaseComm, "_reply_subshell_for"):
            return None
        try:
            manager = thread.manager
            created: concurrent.futures.Future[str] = concurrent.futures.Future()

            def create() -> None:  # runs in the shell-channel thread, which owns subshells
                try:
                    created.set_result(manager._create_subshell())
                except BaseException as exc:  # handed to the waiting caller
                    created.set_exception(exc)

            thread.io_loop.add_callback(create)
            return cls(thread, manager, created.result(timeout=10))
        except Exception:  # an ipykernel whose internals differ: the form falls back to text
            _log.warning("kernelflow: no subshell for the pause form", exc_info=True)
            return None

    def route(self, widget: Any) -> None:
        """Have ``widget``'s incoming messages handled by the subshell."""
        comm = getattr(widget, "comm", None)
        if comm is None:
            return
        subshell_id = self.subshell_id
        comm._reply_subshell_for = lambda _data, _default: subshell_id
        self._comms.append(comm)

    def stop(self) -> None:
        """Give the comms back to the main shell and remove the subshell."""
        for comm in self._comms:
            comm.__dict__.pop("_reply_subshell_for", None)
        self._comms.clear()
        self._thread.io_loop.add_callback(self._manager._delete_subshell, self.subshell_id)

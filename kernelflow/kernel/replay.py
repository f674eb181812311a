"""Recording a cell's printed and displayed output, and replaying it on a cache hit.

While a ``%%task`` cell runs, :class:`OutputRecorder` tees ``sys.stdout``,
``sys.stderr`` and the shell's display publisher: everything still reaches the
notebook as it happens, and a copy is kept. Unlike IPython's
``capture_output``, nothing is hidden. Figures of matplotlib's inline backend,
which IPython shows after the cell's ``Out[]``, are left to IPython and caught
as they are shown (:func:`after_cell`), so a replay shows them in the same place.

:func:`replay` writes the recorded text back to the streams and re-publishes
each display (text, HTML, images...) through the shell's publisher, so a cached
cell looks as it did. Widget views are left out of a recording: the widget
models they point to die with the kernel.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["OutputRecorder", "after_cell", "inline_figures_active", "replay"]

_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_TEXT_LIMIT = 5_000_000  # characters kept per cell; a runaway print loop is not replayed whole

#: A recorded output: ("stdout" | "stderr", text) or ("display", data, metadata).
Output = tuple


class _Tee:
    """A text stream that writes through to ``target`` and keeps a copy."""

    def __init__(self, target: Any, name: str, recorder: OutputRecorder) -> None:
        self._target = target
        self._name = name
        self._recorder = recorder

    def write(self, text: str) -> int:
        self._recorder.add_text(self._name, text)
        return self._target.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, attribute: str) -> Any:  # flush, isatty, fileno, encoding...
        return getattr(self._target, attribute)


class OutputRecorder:
    """Context manager teeing stdout, stderr and displays of one cell run.

    Parameters
    ----------
    shell
        The IPython shell whose display publisher is recorded (None: streams only).

    Attributes
    ----------
    outputs
        The recorded outputs, in order, consecutive text of one stream merged.
    """

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.outputs: list[Output] = []
        self._text_size = 0
        self._saved: tuple[Any, Any] | None = None
        self._publisher: Any = None
        self._shadowed: Any = None

    def add_text(self, stream: str, text: str) -> None:
        """Keep ``text`` written to ``stream``."""
        if not isinstance(text, str) or not text or self._text_size > _TEXT_LIMIT:
            return
        self._text_size += len(text)
        if self.outputs and self.outputs[-1][0] == stream:
            self.outputs[-1] = (stream, self.outputs[-1][1] + text)
        else:
            self.outputs.append((stream, text))

    def add_display(self, data: dict, metadata: dict | None) -> None:
        """Keep one published display."""
        if not data or _WIDGET_VIEW in data:
            return
        self.outputs.append(("display", dict(data), dict(metadata or {})))

    def reset(self) -> None:
        """Forget what was recorded (a retry starts a fresh recording)."""
        self.outputs = []
        self._text_size = 0

    def __enter__(self) -> OutputRecorder:
        self._saved = (sys.stdout, sys.stderr)
        sys.stdout = _Tee(sys.stdout, "stdout", self)
        sys.stderr = _Tee(sys.stderr, "stderr", self)
        publisher = getattr(self.shell, "display_pub", None)
        if publisher is not None:
            original = publisher.publish
            recorder = self

            def publish(data: dict, metadata: dict | None = None, *args: Any, **kwargs: Any) -> Any:
                recorder.add_display(data, metadata)
                return original(data, metadata, *args, **kwargs)

            # An instance attribute shadows the method for this run only; a recording
            # started inside this one (a cell running a cell) wraps ours and puts it back.
            self._shadowed = publisher.__dict__.get("publish")
            publisher.publish = publish
            self._publisher = publisher
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._saved is not None:
            # Restore only our own tees: the cell may have replaced the streams itself.
            if isinstance(sys.stdout, _Tee) and sys.stdout._recorder is self:
                sys.stdout = self._saved[0]
            if isinstance(sys.stderr, _Tee) and sys.stderr._recorder is self:
                sys.stderr = self._saved[1]
            self._saved = None
        if self._publisher is not None:
            if self._shadowed is not None:
                self._publisher.publish = self._shadowed
            else:
                self._publisher.__dict__.pop("publish", None)
            self._publisher = None


def replay(outputs: list[Output], shell: Any) -> None:
    """Show recorded outputs again: text to the streams, displays through the shell."""
    publisher = getattr(shell, "display_pub", None)
    for output in outputs:
        kind = output[0]
        if kind == "stdout":
            sys.stdout.write(output[1])
        elif kind == "stderr":
            sys.stderr.write(output[1])
        elif kind == "display" and publisher is not None:
            sys.stdout.flush()
            sys.stderr.flush()
            publisher.publish(data=output[1], metadata=output[2])
    sys.stdout.flush()
    sys.stderr.flush()


def inline_figures_active() -> bool:
    """Whether matplotlib's inline backend shows figures at the end of each cell."""
    backend = sys.modules.get("matplotlib_inline.backend_inline")
    pyplot = sys.modules.get("matplotlib.pyplot")
    if backend is None or pyplot is None:
        return False
    try:
        return "inline" in str(pyplot.get_backend())
    except Exception:  # a broken matplotlib set-up: no figures to care about
        return False


def after_cell(shell: Any, then: Any, *, record: bool) -> None:
    """Call ``then(images)`` once the cell is over (IPython's ``post_execute``).

    With ``record``, the images published until then (the inline backend's
    figures, shown after ``Out[]``) are caught and passed on; they still reach
    the notebook.
    """
    publisher = getattr(shell, "display_pub", None)
    images: list[Output] = []
    shadowed = None
    if record and publisher is not None:
        original = publisher.publish
        shadowed = publisher.__dict__.get("publish")

        def publish(data: dict, metadata: dict | None = None, *args: Any, **kwargs: Any) -> Any:
            if any(str(mime).startswith("image/") for mime in data):
                images.append(("display", dict(data), dict(metadata or {})))
            return original(data, metadata, *args, **kwargs)

        publisher.publish = publish

    def done(*_: Any) -> None:
        shell.events.unregister("post_execute", done)
        if record and publisher is not None:
            if shadowed is not None:
                publisher.publish = shadowed
            else:
                publisher.__dict__.pop("publish", None)
        then(images)

    shell.events.register("post_execute", done)

"""What the user sees around a ``%%task`` cell run, apart from the cell's own output.

The engine's "Finished in state" line kept quiet (the cell says it),
figures that loading a cached run reopened closed again, ``Out[]`` formatted
once, restored outputs bound (on a module too), a failed cell's error showing
only the user's frames, and ``--verbose``'s summary.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any

from kernelflow.kernel.lineage import CellRecord
from kernelflow.kernel.options import CellOptions
from kernelflow.kernel.prepare import PreparedCell
from kernelflow.kernel.replay import inline_figures_active

__all__: list[str] = []

#: How the engine's final log line of a run starts (its state follows, as %r or %s).
_FINISHED_LOG = "Finished in state "


class _QuietCellLogs(logging.Filter):
    """Drops the engine's "Finished in state ..." line for cell runs (the cell shows it)."""

    def __init__(self) -> None:
        super().__init__()
        self.quiet_runs: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            getattr(record, "run_id", None) in self.quiet_runs
            and isinstance(record.msg, str)
            and record.msg.startswith(_FINISHED_LOG)
        )


@contextlib.contextmanager
def _figures_left_closed() -> Iterator[None]:
    """Close the figures that loading outputs reopened, as the inline backend closed them.

    A figure pickled while pyplot managed it registers itself again when
    unpickled; the inline backend would show it a second time after the cell.
    """

    def numbers() -> set[int]:
        pyplot = sys.modules.get("matplotlib.pyplot")
        return set(pyplot.get_fignums()) if pyplot is not None else set()

    before = numbers()  # unpickling a figure may be what imports pyplot
    try:
        yield
    finally:
        reopened = numbers() - before
        if reopened and inline_figures_active():
            for number in reopened:
                sys.modules["matplotlib.pyplot"].close(number)


def _reuse_format(shell: Any, value: Any, bundle: tuple[dict, dict]) -> None:
    """Let IPython show ``value`` as Out[] with the bundle formatted for the manifest.

    Formatting twice would call ``_repr_html_`` twice, and some reprs count their
    calls (scikit-learn numbers its diagrams): the second would show other ids.
    """
    hook = getattr(shell, "displayhook", None)
    if hook is None:
        return
    original = hook.compute_format_data

    def compute_format_data(result: Any) -> Any:
        hook.__dict__.pop("compute_format_data", None)  # once: the next value is not ours
        return bundle if result is value else original(result)

    hook.compute_format_data = compute_format_data


def _open_figures() -> bool:
    pyplot = sys.modules.get("matplotlib.pyplot")
    return pyplot is not None and bool(pyplot.get_fignums())


def _shows_image(displays: list, result: Any) -> bool:
    bundles = [d[1] for d in displays if d[0] == "display"]
    if result is not None:
        bundles.append(result[0])
    return any(mime.startswith("image/") for bundle in bundles for mime in bundle)


def _assign(ns: dict[str, Any], name: str, value: Any) -> None:
    """Bind a restored output: in the namespace, or on its module (``mymod.SCALE``)."""
    from kernelflow.kernel.dependencies import module_named

    head, _, attribute = name.rpartition(".")
    if not head:
        ns[name] = value
        return
    owner = module_named(ns, head)
    if owner is not None:
        setattr(owner, attribute, value)


def _user_error(
    state: Any, prepared: PreparedCell, shell: Any, name: str, options: CellOptions
) -> BaseException:
    """The exception to raise for a failed cell, showing only the user's frames."""
    from kernelflow.errors import FailedRun, KernelflowError, TaskRunTimeoutError

    error = state.data
    if state.name == "TimedOut":
        return TaskRunTimeoutError(
            f"%%task cell {name!r} exceeded its timeout of {options.timeout:g} second(s); "
            "raise --timeout, or make the cell faster."
        )
    if not isinstance(error, BaseException):
        return FailedRun(state.message or f"%%task cell {name!r} ended {state.name}.")
    if isinstance(error, KernelflowError) and error.__traceback__ is None:
        return error
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != prepared.filename:
        tb = tb.tb_next
    if tb is not None:
        error = error.with_traceback(tb)
        stb = shell.InteractiveTB.structured_traceback(type(error), error, tb)
        try:
            # IPython shows only the user's frames (an attribute BaseException does not declare).
            setattr(error, "_render_traceback_", lambda: stb)  # noqa: B010
        except (AttributeError, TypeError):  # a type refusing attributes: shown in full
            pass
    return error


def _print_verbose(record: CellRecord) -> None:
    inputs = ", ".join(record.inputs) or "none"
    outputs = ", ".join(record.outputs) or "none"
    print(f"inputs: {inputs} · outputs: {outputs}", file=sys.stderr)

"""Errors of runs, shown in a notebook with the user's frames only.

A flow that fails in a cell re-raises the user's exception from the engine,
so IPython's traceback would walk through kernelflow's own frames
(``Flow.__call__``, ``State.result``, ``run_flow``...) between the cell and
the user's function. Through IPython's custom exception handler
(``shell.set_custom_exc``) those frames are left out: the traceback shows the
cell, then the user's code, and the error itself.

A KeyboardInterrupt (the stop button) that went through kernelflow ends the
interrupted runs as Cancelled; it is shown as one line, not the ~60 frames
of the engine it passed through.

The handler is installed only when no other custom handler is set, and is
removed on unload only if it is still the one installed.
"""

from __future__ import annotations

import os
import sys
import types
from typing import Any

__all__ = ["install", "uninstall", "user_frames"]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
#: The one-line rendering of an interrupt that cancelled runs.
INTERRUPTED = "KeyboardInterrupt: interrupted; the runs it stopped are recorded as Cancelled."


def _is_ours(tb: types.TracebackType) -> bool:
    return tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR)


def user_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """``tb`` without kernelflow's frames (a new chain; the frames are the same objects)."""
    kept = []
    while tb is not None:
        if not _is_ours(tb):
            kept.append(tb)
        tb = tb.tb_next
    chain = None
    for item in reversed(kept):
        chain = types.TracebackType(chain, item.tb_frame, item.tb_lasti, item.tb_lineno)
    return chain


def _passes_through_kernelflow(tb: types.TracebackType | None) -> bool:
    while tb is not None:
        if _is_ours(tb):
            return True
        tb = tb.tb_next
    return False


def _handler(
    shell: Any,
    etype: type[BaseException],
    value: BaseException,
    tb: Any,
    tb_offset: int | None = None,
) -> None:
    """IPython's custom exception handler: shows the error (IPython only calls it)."""
    from IPython.core.error import UsageError

    short = user_frames(tb)
    if (
        not _passes_through_kernelflow(tb)
        or issubclass(etype, (UsageError, SyntaxError))
        or hasattr(value, "_render_traceback_")  # our errors render as one line already
        or (short is None and not isinstance(value, KeyboardInterrupt))
    ):
        # IPython's own way: usage and syntax errors, errors that never passed through
        # kernelflow, and errors raised inside kernelflow alone.
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
        return
    # What IPython's own showtraceback keeps, so %debug and %tb still work.
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb
    if sys.version_info >= (3, 12):
        sys.last_exc = value
    if isinstance(value, KeyboardInterrupt):
        stb = [INTERRUPTED]
    else:
        stb = shell.InteractiveTB.structured_traceback(etype, value, short, tb_offset=0)
    shell._showtraceback(etype, value, stb)


def install(shell: Any) -> bool:
    """Show run errors with the user's frames in ``shell``; False if another handler is set."""
    if getattr(shell, "custom_exceptions", ()) != ():
        return False
    shell.set_custom_exc((Exception, KeyboardInterrupt), _handler)
    return True


def uninstall(shell: Any) -> None:
    """Remove the handler :func:`install` set (a handler set since then is kept)."""
    current = getattr(shell, "CustomTB", None)
    if getattr(current, "__func__", None) is not None and _is_handler(current):
        shell.set_custom_exc((), None)


def _is_handler(bound: Any) -> bool:
    # set_custom_exc wraps the handler; the wrapper keeps it in its closure.
    closure = getattr(bound.__func__, "__closure__", None) or ()
    return any(cell.cell_contents is _handler for cell in closure)

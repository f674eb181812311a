"""Running a function with a deadline.

The function runs in a fresh daemon thread (with the caller's context) while
the caller waits at most ``seconds``. When the deadline passes, the caller
returns at once with :class:`DeadlineExceeded`, so the flow goes on, and the
timeout exception is injected into the worker thread with
``PyThreadState_SetAsyncExc``: pure-Python code stops at its next bytecode.

What cannot be interrupted this way: code blocked inside C (``time.sleep``,
a socket read, a long numpy call). It keeps running in the background until
that call returns and is then discarded. For a hard kill, run the task on
the process runner, which terminates the worker process.
"""

from __future__ import annotations

import contextvars
import ctypes
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["DeadlineExceeded", "call_with_timeout"]


class DeadlineExceeded(Exception):
    """The call did not finish within its deadline (raised in the caller)."""


def _interrupt(thread: threading.Thread, exc_type: type[BaseException]) -> None:
    if thread.ident is None or not thread.is_alive():
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(exc_type)
    )


def call_with_timeout(
    fn: Callable[..., Any],
    args: tuple,
    kwargs: dict[str, Any],
    seconds: float,
    exc_type: type[BaseException],
) -> Any:
    """Call ``fn(*args, **kwargs)``; raise :class:`DeadlineExceeded` after ``seconds``.

    The function's own exceptions propagate to the caller unchanged.
    """
    outcome: dict[str, Any] = {}
    done = threading.Event()
    ctx = contextvars.copy_context()

    def target() -> None:
        try:
            outcome["value"] = ctx.run(fn, *args, **kwargs)
        except BaseException as exc:  # handed to the caller, who decides
            outcome["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(
        target=target, name=f"kernelflow-timeout-{getattr(fn, '__name__', 'fn')}", daemon=True
    )
    worker.start()
    if not done.wait(seconds):
        _interrupt(worker, exc_type)
        raise DeadlineExceeded(seconds)
    if "error" in outcome:
        error = outcome["error"]
        if isinstance(error, exc_type):
            # The interrupt landed just as the deadline passed.
            raise DeadlineExceeded(seconds) from None
        raise error
    return outcome["value"]

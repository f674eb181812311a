"""Faults inside widget code are logged once and never reach the run.

A live view is a bystander: a rendering bug, a closed comm or a store that
cannot be read must not fail the flow it watches, nor flood the output with
one traceback per update. :func:`report` logs the first failure of each kind
at each place (with its traceback) and stays quiet about repeats.
"""

from __future__ import annotations

import logging
import threading

__all__ = ["logger", "report"]

logger = logging.getLogger("kernelflow.widgets")
_seen: set[tuple[str, type]] = set()
_lock = threading.Lock()


def report(where: str, exc: BaseException) -> None:
    """Log ``exc`` raised while doing ``where``, the first time only.

    Parameters
    ----------
    where:
        What the widget code was doing, e.g. ``"a live view update"``.
    exc:
        The exception it raised.
    """
    key = (where, type(exc))
    with _lock:
        if key in _seen:
            return
        _seen.add(key)
    logger.warning(
        "kernelflow widgets: %s failed (%s: %s); runs are not affected and this is logged once",
        where,
        type(exc).__name__,
        exc,
        exc_info=exc,
    )

"""Who hears of an artifact as it is created or updated in this process (the live view)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["add_listener", "remove_listener"]

logger = logging.getLogger("kernelflow.artifacts")

#: Called with the journaled event (a mapping; ``ev`` is "artifact" or "artifact_update").
Listener = Callable[[Mapping[str, Any]], None]

_listeners: list[Listener] = []
_listeners_lock = threading.Lock()


def add_listener(listener: Listener) -> None:
    """Call ``listener(event)`` with each artifact this process creates or updates.

    ``event`` is the journaled dict (``ev`` is ``"artifact"`` or
    ``"artifact_update"``). Used by the live run view; a listener must be
    quick and must not raise (a failure is logged and ignored).
    """
    with _listeners_lock:
        if listener not in _listeners:
            _listeners.append(listener)


def remove_listener(listener: Listener) -> None:
    """Stop calling ``listener`` (no error if it was not added)."""
    with _listeners_lock:
        if listener in _listeners:
            _listeners.remove(listener)


def _notify(event: Mapping[str, Any]) -> None:
    for listener in list(_listeners):
        try:
            listener(event)
        except Exception:  # an artifact must never fail a run over a view; say so once
            logger.exception("kernelflow: a listener failed on an artifact")

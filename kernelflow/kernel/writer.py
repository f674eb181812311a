"""Writing a cell's cache entry after the cell has returned.

A cache write is two small files (the manifest and its index entry), plus the
cell's ``why`` history: on a busy disk each file costs about a millisecond,
more than the whole ``%%task`` overhead budget. The values are already
serialized when the cell returns (see :mod:`kernelflow.kernel.outputs`), so
nothing the user does next can change what is written; the files are written
by one background thread instead, in submission order.

A run of the same cell with the same key waits for its pending write first (so
an immediate re-run is a hit), ``%unload_ext`` and interpreter exit wait for
every pending write, and a failed write is logged once (the cell simply is not
cached). A write whose process has meanwhile switched to another store
(``KERNELFLOW_HOME`` changed, as tests do) is dropped rather than written to
the wrong store.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

__all__ = ["BackgroundWriter"]

logger = logging.getLogger("kernelflow.kernel")


class BackgroundWriter:
    """One thread that writes cache entries in order; see the module docstring."""

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._pending: dict[str, Future] = {}
        self._lock = threading.Lock()
        self._exit_registered = False

    def submit(self, key: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        """Run ``fn(*args, **kwargs)`` in the background; ``key`` names it for :meth:`wait`."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="kernelflow-cache")
                if not self._exit_registered:
                    atexit.register(self.close)
                    self._exit_registered = True
            future = self._executor.submit(fn, *args, **kwargs)
            self._pending[key] = future
        future.add_done_callback(lambda done: self._done(key, done))
        return future

    def _done(self, key: str, future: Future) -> None:
        with self._lock:
            if self._pending.get(key) is future:
                del self._pending[key]
        error = future.exception()
        if error is not None:
            logger.warning("kernelflow: a %%task cell could not be cached: %s", error)

    def wait(self, key: str | None = None) -> None:
        """Wait for the pending write of ``key`` (None: for every pending write)."""
        with self._lock:
            futures = (
                list(self._pending.values())
                if key is None
                else ([self._pending[key]] if key in self._pending else [])
            )
        for future in futures:
            future.exception()  # waits; a failure was logged by _done

    def close(self) -> None:
        """Wait for every pending write and stop the thread."""
        self.wait()
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

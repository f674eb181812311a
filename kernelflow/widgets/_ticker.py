"""The throttled updater: one background thread pushes every live view.

The engine's listener only records a change in a view's model (microseconds,
on the thread that changed the run); this thread wakes a few times a second,
asks each registered item whether it changed, and sends at most one update
per item per wake-up. So the front end receives at most ``1 / interval``
messages a second per view however fast runs move, and the engine never waits
for a widget. The thread runs only while some item is registered.

A sync flow called in a cell keeps the kernel's main thread busy until it
ends, so updates must come from a thread of their own to be seen live.
"""

from __future__ import annotations

import threading
from typing import Protocol

from kernelflow.widgets._faults import report

__all__ = ["INTERVAL", "Ticker", "ticker"]

#: Seconds between two pushes (4 updates a second at most).
INTERVAL = 0.25


class Tickable(Protocol):
    """Something the ticker updates."""

    def tick(self) -> bool:
        """Push pending changes; return True when nothing more will change."""


class Ticker:
    """Calls ``tick()`` on registered items every ``interval`` seconds, in one thread.

    Parameters
    ----------
    interval:
        Seconds between two rounds.
    """

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self._items: list[Tickable] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()  # the running thread's own stop signal

    def add(self, item: Tickable) -> None:
        """Start ticking ``item`` (and the thread, if it is not running)."""
        with self._lock:
            if item not in self._items:
                self._items.append(item)
            if self._thread is None:
                self._stop = threading.Event()
                # A plain Thread starts with an empty context, so in a kernel its
                # messages carry the parent of the latest request (ipykernel's
                # fallback), not that of the cell that started it.
                self._thread = threading.Thread(
                    target=self._run,
                    args=(self._stop,),
                    name="kernelflow-widgets",
                    daemon=True,
                )
                self._thread.start()

    def discard(self, item: Tickable) -> None:
        """Stop ticking ``item``."""
        with self._lock:
            if item in self._items:
                self._items.remove(item)

    def __len__(self) -> int:
        return len(self._items)

    def stop(self) -> None:
        """Stop the thread and forget every item (used on unload)."""
        with self._lock:
            self._items.clear()
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2)

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            with self._lock:
                if stop.is_set():
                    return
                items = list(self._items)
                if not items:
                    self._thread = None
                    return
            for item in items:
                try:
                    done = item.tick()
                except Exception as exc:  # one broken view must not stop the others
                    report("a live view update", exc)
                    done = False
                if done:
                    self.discard(item)


#: The process's one ticker.
ticker = Ticker()

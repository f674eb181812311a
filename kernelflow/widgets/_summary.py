"""One summary line per flow run, for a notebook kernel whose live views are off.

With views off, the console gate (:func:`kernelflow.logs.set_console_gate`)
keeps the engine's per-task-run lines off the cell's output; this engine
listener prints what they would have said, folded into one line when a
top-level flow run ends::

    Flow run 'warm-newt' (many): Completed in 31 ms · 50 task runs: 50 Completed

Task runs of subflows count towards their top-level flow run. Every line is
still recorded in the store (``kernelflow runs show``).
"""

from __future__ import annotations

import threading
from typing import Any

from kernelflow._format import format_duration
from kernelflow.states import State
from kernelflow.widgets._faults import report

__all__ = ["FlowSummary", "summary_line"]

_FINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})


def summary_line(run: Any, state: State, counts: dict[str, int]) -> str:
    """The line said when top-level flow run ``run`` ends in ``state``.

    ``counts`` is how many of its task runs (subflows' included) ended in each state.
    """
    took = ""
    if run.start_time is not None and run.end_time is not None:
        took = f" in {format_duration(run.end_time - run.start_time)}"
    line = f"Flow run {run.name!r} ({run.flow_name}): {state.name}{took}"
    if state.type._value_ == "CANCELLED" and state.message:
        line += f" ({state.message})"
    total = sum(counts.values())
    if total:
        noun = "task run" if total == 1 else "task runs"
        parts = ", ".join(f"{n} {name}" for name, n in sorted(counts.items(), key=lambda i: -i[1]))
        line += f" · {total} {noun}: {parts}"
    return line


class FlowSummary:
    """Engine listener: counts task-run outcomes per top-level flow run, prints one line at its end.

    Parameters
    ----------
    write:
        Called with each line (default: ``print``, so it lands in the running cell).
    """

    def __init__(self, write: Any = print) -> None:
        self.write = write
        self._lock = threading.Lock()
        #: The top-level flow run each flow run (itself or a subflow) belongs to.
        self._root: dict[str, str] = {}
        #: Per top-level flow run: final task-run states by name.
        self._counts: dict[str, dict[str, int]] = {}

    def __call__(self, kind: str, run: Any, state: State) -> None:
        try:
            if kind == "flow":
                self._flow(run, state)
            elif state.type._value_ in _FINAL:
                with self._lock:
                    root = self._root.get(run.flow_run_id or "")
                    if root is not None:
                        counts = self._counts[root]
                        counts[state.name] = counts.get(state.name, 0) + 1
        except Exception as exc:  # a summary must never break a run
            report("summing up a flow run", exc)

    def _flow(self, run: Any, state: State) -> None:
        if "notebook" in run.tags:
            return  # the notebook's session run: it lasts as long as the kernel
        with self._lock:
            if run.id not in self._root:
                parent = self._root.get(run.parent_flow_run_id or "")
                self._root[run.id] = parent or run.id
                if parent is None:
                    self._counts[run.id] = {}
            if state.type._value_ not in _FINAL or self._root[run.id] != run.id:
                return
            counts = self._counts.pop(run.id, {})
            for child, root in list(self._root.items()):
                if root == run.id:
                    del self._root[child]
        self.write(summary_line(run, state, counts))

"""The worker's log of a deployment run: progress and the notebook's output, journaled.

:class:`_RunLog` appends ``log`` events for the deployment run to the worker's
journal (progress as ``Progress 3/10: <the cell running>``, logger
``kernelflow.deployments.progress``); :class:`_StreamLog` is the file papermill
writes a cell's stdout or stderr to, turned into log lines (loggers
``kernelflow.deployments.stdout`` / ``.stderr``).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

__all__: list[str] = []

_LOG_LIMIT = 4000


class _RunLog:
    """Appends the deployment run's log and progress events to this process's journal."""

    def __init__(self, run_id: str, code_cells: int) -> None:
        from kernelflow.store.journal import current_journal

        self.run_id = run_id
        self.total = code_cells
        self.done = 0
        self.journal = current_journal()

    def log(
        self, message: str, level: int = logging.INFO, logger: str = "kernelflow.deployments.runner"
    ) -> None:
        from kernelflow.store.events import log_record

        if len(message) > _LOG_LIMIT:
            message = message[:_LOG_LIMIT] + "…"
        self.journal.write(
            log_record(
                run_id=self.run_id,
                kind="flow",
                level=level,
                logger=logger,
                message=message,
                t=time.time(),
            )
        )

    def progress(self, current: str) -> None:
        self.log(
            f"Progress {self.done}/{self.total}: {current}",
            logger="kernelflow.deployments.progress",
        )

    def notebook_start(self, notebook: Any, **_: Any) -> None:
        # Counted again here: papermill has added its injected-parameters cell.
        self.total = sum(1 for c in notebook.cells if c.get("cell_type") == "code")

    def cell_start(self, cell: Any, cell_index: int, **_: Any) -> None:
        if cell.get("cell_type") == "code":
            first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
            self.progress(f"cell {cell_index} {first[:80]}".rstrip())

    def cell_executed(self, cell: Any, cell_index: int, **_: Any) -> None:
        if cell.get("cell_type") == "code":
            self.done = min(self.done + 1, self.total)


# A line the kernelflow console handler wrote in the kernel: ``HH:MM:SS.mmm | LEVEL | ...``.
_CONSOLE_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \| (DEBUG|INFO|WARNING|ERROR|CRITICAL) *\| ")
# The kernel's own chatter, never the notebook's: ipykernel's log lines (``[IPKernelApp]
# WARNING | ...``, which reach a cell's stderr once ipykernel captures its file descriptors)
# and its message for a SIGINT that arrived between cells (the kernel being shut down).
_KERNEL_NOISE = re.compile(
    r"^(\[(IPKernelApp|IPKernel|KernelApp|ipykernel)[^\]]*\] "
    r"|KeyboardInterrupt caught in kernel\.?$)"
)


class _StreamLog:
    """A file-like object papermill writes a cell's stdout or stderr to.

    The notebook's output becomes log lines at ``level``, one record a write;
    within a write, a line the kernelflow logger printed keeps its own level
    (an INFO line on stderr is not a warning) and the kernel's own chatter
    (see ``_KERNEL_NOISE``) is dropped.
    """

    def __init__(self, log: _RunLog, name: str, level: int) -> None:
        self.log, self.name, self.level = log, name, level

    def write(self, text: str) -> int:
        pending: list[str] = []
        for line in text.rstrip("\n").split("\n"):
            if _KERNEL_NOISE.match(line):
                continue
            console = _CONSOLE_LINE.match(line)
            if console is None:
                pending.append(line)
                continue
            self._emit(pending, self.level)
            pending = []
            level = logging.getLevelName(console.group(1))  # a number for a level's name
            self._emit([line], level if isinstance(level, int) else self.level)
        self._emit(pending, self.level)
        return len(text)

    def _emit(self, lines: list[str], level: int) -> None:
        message = "\n".join(lines).strip("\n")
        if message.strip():
            self.log.log(message, level, f"kernelflow.deployments.{self.name}")

    def flush(self) -> None:
        pass

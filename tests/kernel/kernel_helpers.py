"""Driving real kernels cell by cell, and reading what cells printed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


class LiveKernel:
    """One running kernel, fed cells one at a time (through nbclient).

    Parameters
    ----------
    kernel_name
        The kernelspec to start.
    cwd
        The kernel's working directory.
    """

    def __init__(self, kernel_name: str, cwd: Path) -> None:
        import nbformat
        from nbclient import NotebookClient

        self.nb = nbformat.v4.new_notebook()
        self.client = NotebookClient(
            self.nb,
            kernel_name=kernel_name,
            timeout=120,
            allow_errors=True,
            resources={"metadata": {"path": str(cwd)}},
        )
        self._context: Any = None

    def __enter__(self) -> LiveKernel:
        self._context = self.client.setup_kernel()
        self._context.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._context.__exit__(*exc_info)

    def run(self, source: str) -> Any:
        """Execute one cell; return it (its ``outputs`` as nbformat dicts)."""
        import nbformat

        cell = nbformat.v4.new_code_cell(source)
        self.nb.cells.append(cell)
        self.client.execute_cell(cell, len(self.nb.cells) - 1)
        return cell


def stdout_of(cell: Any) -> str:
    """All stdout text of an executed cell."""
    return "".join(
        o["text"] for o in cell.outputs if o["output_type"] == "stream" and o["name"] == "stdout"
    )


def error_of(cell: Any) -> Any:
    """The error output of a cell, or None."""
    return next((o for o in cell.outputs if o["output_type"] == "error"), None)


def displays_of(cell: Any) -> list[dict]:
    """The data dicts of the cell's display_data outputs."""
    return [dict(o["data"]) for o in cell.outputs if o["output_type"] == "display_data"]


def result_of(cell: Any) -> str | None:
    """The text/plain of the cell's execute_result, or None."""
    for output in cell.outputs:
        if output["output_type"] == "execute_result":
            return output["data"].get("text/plain")
    return None


def plain(text: str) -> str:
    """Text without ANSI colour codes (tracebacks are coloured)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)

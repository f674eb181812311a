"""The example notebooks run end to end in a real kernel, and show what they promise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from kernel_helpers import error_of, result_of, stdout_of
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def execute(name: str, kernel_name: str, cwd: Path) -> Any:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        nb, kernel_name=kernel_name, timeout=300, resources={"metadata": {"path": str(cwd)}}
    ).execute()
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert error_of(cell) is None, (cell.source, error_of(cell))
    return [c for c in nb.cells if c.cell_type == "code"]


def test_quickstart(kernel_name: str, tmp_path: Path) -> None:
    cells = execute("01-quickstart.ipynb", kernel_name, tmp_path)
    assert result_of(cells[1]) == "285"
    assert result_of(cells[2]) == "('ok', 3)"
    assert result_of(cells[3]) == "[[1, 4], [9, 16], [25, 36]]"
    assert result_of(cells[5]) == "[0, 1, 2, 3]"
    assert "task_name" in cells[6]["outputs"][0]["data"]["text/plain"]


def test_task_cells(kernel_name: str, tmp_path: Path, store: Any) -> None:
    cells = execute("02-task-cells.ipynb", kernel_name, tmp_path)
    first, again = cells[3], cells[4]
    assert stdout_of(first) == "generated 200,000 rows\n"
    assert stdout_of(again).startswith("cached · took ")
    assert stdout_of(again).endswith("generated 200,000 rows\n")
    info = stdout_of(cells[6])  # %kf info features: inputs (a helper too) and outputs
    assert "raw =" in info and "add_features =" in info and "summary =" in info
    assert stdout_of(cells[8]) == "generated 100,000 rows\n"
    why = stdout_of(cells[9])
    assert "input 'rows' changed" in why and "seed" not in why
    assert stdout_of(cells[10]).startswith("1. features: 'raw' changed")
    assert "rerun features" in stdout_of(cells[11])
    assert stdout_of(cells[12]) == "No stale cells.\n"
    assert "downloaded on try 3" in stdout_of(cells[13])
    # %kf runs: in a kernel with widgets on, the run history widget, whose
    # static fallback (kept in the saved notebook) lists this session's run.
    runs = next(o for o in cells[14]["outputs"] if "data" in o)["data"]
    assert "application/vnd.jupyter.widget-view+json" in runs
    assert "Running" in runs["text/plain"] and "<table" in runs["text/html"], runs["text/plain"]
    states = store.sql("SELECT state_name FROM task_runs ORDER BY created")["state_name"]
    assert states.tolist() == [
        "Completed",
        "Cached",
        "Completed",
        "Completed",
        "Completed",
        "Completed",
    ]

"""``notebooks/03-live-widgets.ipynb``, executed headless by papermill as a deployment would.

Nobody watches a headless run, so what matters is what the output notebook
keeps: each run view's final state as static HTML (the widget view replaced),
so the notebook shows its run tables when opened later, in any viewer.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "03-live-widgets.ipynb"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def states_in(html: str) -> list[str]:
    return re.findall(r'data-kf-state="([A-Za-z]+)"', html)


def views(cell: Any) -> list[dict]:
    """The kernelflow views among a cell's outputs (finished run views are static HTML)."""
    return [
        d for d in displays(cell) if WIDGET_VIEW in d or "data-kf-view" in d.get("text/html", "")
    ]


def code_cells(nb: Any) -> list[Any]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def displays(cell: Any) -> list[dict]:
    """Rich outputs of a cell (shown with display(), or as the cell's value)."""
    return [
        o["data"] for o in cell.outputs if o["output_type"] in ("display_data", "execute_result")
    ]


@pytest.fixture(scope="module")
def executed(module_kernel: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    import papermill

    out = tmp_path_factory.mktemp("papermill") / "03-out.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK), str(out), kernel_name=module_kernel, progress_bar=False, cwd=str(out.parent)
    )
    return nbformat.read(out, as_version=4)


def test_every_cell_ran_without_error(executed: Any) -> None:
    for cell in code_cells(executed):
        assert not [o for o in cell.outputs if o["output_type"] == "error"], cell.source


def test_flow_view_keeps_its_final_table(executed: Any) -> None:
    (view,) = views(code_cells(executed)[1])
    assert states_in(view["text/html"]) == ["Completed"] * 9, "the flow, 4 loads, 4 totals"
    assert "etl" in view["text/plain"] and "8 / 8 task runs finished" in view["text/plain"]
    load_2 = next(line for line in view["text/plain"].splitlines() if line.startswith("load-2"))
    assert load_2.split()[-1] == "2", "load-2 took two tries"


def test_big_flow_is_grouped(executed: Any) -> None:
    (view,) = views(code_cells(executed)[2])
    assert "2,000 / 2,000 task runs finished" in view["text/html"]
    assert "square" in view["text/plain"] and "Completed 2,000" in view["text/plain"]


def test_top_level_submissions_end_completed(executed: Any) -> None:
    (view,) = views(code_cells(executed)[3])
    assert "Task runs of cell" in view["text/html"]
    assert states_in(view["text/html"]) == ["Completed"] * 5


def test_task_cells_show_status_lines(executed: Any) -> None:
    cells = code_cells(executed)
    first, summary = (displays(cells[i])[0] for i in (5, 6))
    assert "raw: completed in" in first["text/plain"]
    assert "summary: completed in" in summary["text/plain"]
    # A hit's one status line is its printed "cached · took ..." line (no second line).
    assert displays(cells[7]) == []
    again = "".join(o.get("text", "") for o in cells[7].outputs)
    assert re.fullmatch(r"cached · took 1\.\d s · ran \d+ s ago\n", again), again


def test_lineage_history_and_cache_views_render_statically(executed: Any) -> None:
    cells = code_cells(executed)
    (lineage,) = views(cells[9])
    assert "summary" in lineage["text/html"] and "stale" in lineage["text/html"]
    assert "raw --raw--> summary" in lineage["text/plain"]
    (history,) = views(cells[10])
    assert "etl" in history["text/html"] and "many" in history["text/html"]
    (cache,) = views(cells[11])
    assert "Task cache:" in cache["text/html"] and "raw" in cache["text/html"]


def test_views_off_shows_no_view(executed: Any) -> None:
    cell = code_cells(executed)[12]
    assert displays(cell) == []

    def stream(name: str) -> list[str]:
        return "".join(
            o["text"] for o in cell.outputs if o["output_type"] == "stream" and o["name"] == name
        ).splitlines()

    # The engine's lines are not printed; the flow's own print (log_prints=True) is.
    (logged,) = stream("stderr")
    assert logged.endswith(" - total: 190")
    summary, result = stream("stdout")
    assert "(etl): Completed in " in summary and "task runs: " in summary, "one line per flow"
    assert result == "190"


def test_finished_run_views_leave_no_widget_view(executed: Any) -> None:
    for cell in code_cells(executed)[1:9]:
        for data in displays(cell):
            assert WIDGET_VIEW not in data, cell.source


def test_widget_state_is_saved_for_front_ends(executed: Any) -> None:
    state = executed.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    models = [m for m in state.values() if m["model_name"] == "AnyModel"]
    assert len(models) >= 8

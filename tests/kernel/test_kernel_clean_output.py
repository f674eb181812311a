"""Clean notebooks in real kernels: where run logs go, what a saved notebook keeps,
how a failing flow and the stop button show.

Each test drives a real ipykernel through nbclient (``LiveKernel``) and reads
the outputs a front end would save.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_core.utils import run_sync
from kernel_helpers import LiveKernel, error_of, plain

pytestmark = pytest.mark.slow

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

SETUP = """
%load_ext kernelflow
from kernelflow import flow, task, get_run_logger

@task
def one(i):
    return i

@task
def shout(i):
    get_run_logger().warning("look at %s", i)
    return i

@flow
def many(n):
    return sum(one(i) for i in range(n))

@flow
def noisy():
    return [shout(i) for i in range(2)]

def helper():
    raise ValueError("boom in user code")

@flow
def broken():
    one(1)
    helper()
"""


def _stream(cell: Any, name: str) -> list[str]:
    return "".join(
        o["text"] for o in cell.outputs if o["output_type"] == "stream" and o["name"] == name
    ).splitlines()


def _displays(cell: Any) -> list[dict]:
    return [o["data"] for o in cell.outputs if o["output_type"] == "display_data"]


@pytest.fixture
def kernel(kernel_name: str, tmp_path: Path) -> Any:
    with LiveKernel(kernel_name, tmp_path) as live:
        assert error_of(live.run(SETUP)) is None
        yield live


class TestLogRouting:
    def test_a_200_task_flow_with_views_on_prints_no_log_line(self, kernel: Any) -> None:
        cell = kernel.run("total = many(200)")
        assert error_of(cell) is None
        assert _stream(cell, "stderr") == [] and _stream(cell, "stdout") == []
        (view,) = _displays(cell)
        assert "200 / 200 task runs finished" in view["text/html"]

    def test_warnings_are_visible_in_the_view_and_the_rest_is_folded(self, kernel: Any) -> None:
        cell = kernel.run("noisy()")
        assert _stream(cell, "stderr") == []
        (view,) = _displays(cell)
        html = view["text/html"]
        folded = re.findall(r"<details.*?</details>", html, re.S)
        visible = re.sub(r"<details.*?</details>", "", html, flags=re.S)
        assert "look at 0" in visible and "look at 1" in visible
        assert "Finished in state" not in visible, "INFO lines only in the collapsible log"
        assert any("Finished in state" in block for block in folded)

    def test_a_task_cell_keeps_the_users_warning_and_drops_the_engines_lines(
        self, kernel: Any
    ) -> None:
        cell = kernel.run('%%task careful --no-cache\nget_run_logger().warning("mind the gap")')
        (line,) = _stream(cell, "stderr")
        assert line.endswith(" - mind the gap")
        (status,) = _displays(cell)
        assert status["text/plain"].startswith("careful: completed in ")

    def test_views_off_prints_one_summary_line_per_flow(self, kernel: Any) -> None:
        kernel.run("import kernelflow.widgets\nkernelflow.widgets.set_enabled(False)")
        cell = kernel.run("total = many(200)")
        assert _stream(cell, "stderr") == []
        (line,) = _stream(cell, "stdout")
        assert line.startswith("Flow run '") and "(many): Completed in " in line
        assert line.endswith("200 task runs: 200 Completed")
        # The user's own warnings still print (a line each); the engine's lines do not.
        noisy = kernel.run("noisy()")
        assert [x.split(" | ", 1)[1] for x in _stream(noisy, "stderr")] == [
            "WARNING | Task run 'shout-0' - look at 0",
            "WARNING | Task run 'shout-1' - look at 1",
        ]
        assert len(_stream(noisy, "stdout")) == 1
        # So do prints that log_prints=True turns into log lines: the user's own words.
        kernel.run('@flow(log_prints=True)\ndef chatty():\n    print("hi there")')
        chatty = kernel.run("chatty()")
        assert [x.split(" - ", 1)[1] for x in _stream(chatty, "stderr")] == ["hi there"]


def test_the_saved_notebook_keeps_final_html_and_no_widget_view(
    kernel: Any, tmp_path: Path
) -> None:
    kernel.run("many(3)")
    kernel.run("futures = [one.submit(i) for i in range(3)]")
    # A view finished after its cell returned is sent again when the next cell starts (a
    # front end applies it at once; a headless client listens to one cell at a time).
    kernel.run("[f.result() for f in futures]")
    kernel.run("'done'")
    path = tmp_path / "saved.ipynb"
    nbformat.write(kernel.nb, path)
    saved = nbformat.read(path, as_version=4)
    views = [d for cell in saved.cells[1:] for d in _displays(cell) if "text/html" in d]
    assert len(views) == 2
    for data in views:
        assert WIDGET_VIEW not in data, "a reopened notebook would say: model not found"
        assert 'data-kf-state="Completed"' in data["text/html"]
        assert 'data-kf-state="Running"' not in data["text/html"]


def test_a_failing_flow_shows_its_error_once_with_the_users_frames(kernel: Any) -> None:
    cell = kernel.run("broken()")
    assert _stream(cell, "stderr") == [], "no log block repeating the error"
    (view,) = _displays(cell)
    visible = view["text/html"].partition("<details")[0]
    assert visible.count("boom in user code") == 1, "the view's header says it once"
    assert "Traceback" not in visible, "the engine's error lines are folded in the log"
    error = error_of(cell)
    assert error["ename"] == "ValueError"
    traceback = plain("\n".join(error["traceback"]))
    assert "kernelflow" not in traceback, traceback
    assert "helper()" in traceback and 'raise ValueError("boom in user code")' in traceback
    # A %%task cell's traceback names the cell by its own number.
    failing = kernel.run("%%task oops --no-cache\nhelper()")
    shown = plain("\n".join(error_of(failing)["traceback"]))
    assert f"Cell In[{failing['execution_count']}], line 2" in shown, shown


def test_an_interrupt_records_the_flow_run_cancelled(
    kernel: Any, tmp_path: Path, store: Any
) -> None:
    started = tmp_path / "started"
    kernel.run(
        f"""
import time, pathlib
@task
def wait_here():
    pathlib.Path({str(started)!r}).touch()
    time.sleep(60)

@flow
def long_flow():
    wait_here()
"""
    )
    done: list[Any] = []
    runner = threading.Thread(target=lambda: done.append(kernel.run("long_flow()")))
    runner.start()
    deadline = time.monotonic() + 60
    while not started.exists():
        assert time.monotonic() < deadline, "the flow never started"
        time.sleep(0.05)
    run_sync(kernel.client.km.interrupt_kernel)()  # the stop button
    runner.join(timeout=60)
    assert done, "the interrupted cell returned"
    error = error_of(done[0])
    assert error["ename"] == "KeyboardInterrupt"
    assert len(error["traceback"]) == 1 and "Cancelled" in error["traceback"][0]
    assert error_of(kernel.run("1 + 1")) is None, "the kernel stays usable"
    # The kernel's journal reaches the store in the background: wait for it, bounded.
    deadline = time.monotonic() + 60
    while True:
        states = store.sql("SELECT state_name FROM flow_runs WHERE flow_name LIKE 'long%flow'")
        if states["state_name"].tolist() or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert states["state_name"].tolist() == ["Cancelled"]


class TestNamesAndStatusLines:
    @pytest.fixture
    def notebook_kernel(
        self, kernel_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> Any:
        notebook = tmp_path / "work" / "report.ipynb"
        monkeypatch.setenv("JPY_SESSION_NAME", str(notebook))  # as Jupyter sets it
        with LiveKernel(kernel_name, tmp_path) as live:
            assert error_of(live.run(SETUP)) is None
            yield live, str(notebook)

    def test_the_session_run_is_named_by_the_notebooks_file_name(
        self, notebook_kernel: Any, store: Any
    ) -> None:
        kernel, notebook = notebook_kernel
        cell = kernel.run("futures = [one.submit(i) for i in range(2)]")
        (view,) = _displays(cell)
        assert "session report.ipynb" in view["text/plain"]
        # The cell's number as the notebook shows it (In [2]: SETUP was In [1]).
        assert cell["execution_count"] == 2
        assert "Task runs of cell [2]" in view["text/plain"]
        kernel.run("%%task made\nvalue = 1")
        deadline = time.monotonic() + 60
        while True:
            rows = store.sql("SELECT name, flow_name, parameters FROM flow_runs")
            if len(rows) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert rows["name"].tolist() == ["report.ipynb"]
        assert rows["flow_name"].tolist() == [notebook]
        assert notebook in rows["parameters"][0]

    def test_one_status_line_per_task_cell_and_tries_counted(self, notebook_kernel: Any) -> None:
        kernel, _ = notebook_kernel
        first = kernel.run("%%task ok\nx = 1")
        (status,) = _displays(first)
        assert status["text/plain"].startswith("ok: completed in ")
        hit = kernel.run("%%task ok\nx = 1")
        assert _displays(hit) == [], "the hit's printed line is its only status line"
        assert len(_stream(hit, "stdout")) == 1 and _stream(hit, "stdout")[0].startswith("cached")
        kernel.run("tries = []")
        flaky = kernel.run(
            "%%task flaky --no-cache --retries 2\ntries.append(1)\nassert len(tries) > 2"
        )
        assert [d["text/plain"] for d in _displays(flaky)] == ["flaky: completed on try 3"]

    def test_kf_info_lists_imports_apart_from_outputs(self, notebook_kernel: Any) -> None:
        kernel, _ = notebook_kernel
        kernel.run("%%task imp\nfrom IPython.display import HTML, display\nmade = 3")
        info = _stream(kernel.run("%kf info imp"), "stdout")
        outputs = info[info.index("  outputs:") + 1 : info.index("  changed in place:")]
        assert [line.split("=")[0].strip() for line in outputs] == ["made"]
        assert "  imports: HTML, display" in info

"""Live run views in a real IPython shell, fed by the real engine.

The shell has no kernel, so views are shown as text (the terminal case) unless
a test switches the tracker to widgets; ipywidgets then talks to a dummy comm,
and front-end messages are handed to the widget's own message handler.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from typing import Any

from IPython.utils.capture import capture_output

import kernelflow.widgets as widgets
from kernelflow.widgets import _render

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def widget_mode(shell: Any) -> Any:
    import kernelflow.engine  # noqa: F401  (the tracker is made when the engine is imported)

    tracker = widgets.tracker_of(shell)
    assert tracker is not None, "the engine is imported, so the tracker exists"
    tracker._mode = "widget"
    return tracker


def bundles(captured: Any) -> list[dict]:
    return [dict(output.data) for output in captured.outputs]


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


DEFINE = """
import time
from kernelflow import flow, task

@task(retries=1, retry_delay_seconds=0.1)
def step(i, fail=()):
    if i in fail and not attempts.setdefault(i, 0):
        attempts[i] += 1
        raise ValueError(f"flaky {i}")
    return i

@task
def broken():
    raise RuntimeError("always broken")

@flow
def pipeline(n, fail=()):
    return [f.result() for f in [step.submit(i, fail) for i in range(n)]]

attempts = {}
"""


class TestTerminal:
    def test_flow_prints_its_table_when_it_ends(self, shell: Any, capsys: Any) -> None:
        shell.run_cell(DEFINE)
        capsys.readouterr()
        shell.run_cell("result = pipeline(3, fail=(1,))")
        out = capsys.readouterr().out
        assert shell.user_ns["result"] == [0, 1, 2]
        assert "pipeline" in out and "Completed" in out
        assert "3 / 3 task runs finished" in out
        lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("step-")}
        assert set(lines) == {"step-0", "step-1", "step-2"}
        assert lines["step-1"].split()[-1] == "2", "step-1 took two tries"

    def test_top_level_submissions_print_when_they_finish(self, shell: Any, capsys: Any) -> None:
        shell.run_cell(DEFINE)
        shell.run_cell("futures = [step.submit(i) for i in range(3)]")
        wait_until(lambda: "Task runs of cell" in capsys.readouterr().out)


class TestWidgetView:
    def test_flow_view_shows_states_then_saves_the_final_table(self, shell: Any) -> None:
        widget_mode(shell)
        shell.run_cell(DEFINE)
        with capture_output() as captured:
            shell.run_cell("pipeline(4, fail=(2,))")
        first, *_, last = bundles(captured)
        assert WIDGET_VIEW in first and "text/html" in first and "text/plain" in first
        assert WIDGET_VIEW not in last, "the final update replaces the view by static HTML"
        html = last["text/html"]
        assert html.count('data-kf-state="Completed"') == 5, "the flow and its 4 task runs"
        assert "4 / 4 task runs finished" in html
        assert "pipeline" in last["text/plain"] and "Completed" in last["text/plain"]

    def test_clicking_a_row_shows_its_logs_and_error(self, shell: Any) -> None:
        tracker = widget_mode(shell)
        shell.run_cell(DEFINE)
        shell.run_cell("@flow\ndef mixed():\n    step(0, fail=(0,))\n    broken(return_state=True)")
        with capture_output():
            shell.run_cell("mixed()")
        view = _last_view(tracker)
        rows = view.model.snapshot().rows
        failed = next(r for r in rows if r["name"].startswith("broken"))
        retried = next(r for r in rows if r["name"].startswith("step"))
        view._handle_message(view, {"event": "click", "id": failed["id"]}, [])
        assert "data-kf-error" in view.html and "always broken" in view.html
        assert "RuntimeError" in view.html, "the traceback's last lines"
        view._handle_message(view, {"event": "click", "id": retried["id"]}, [])
        assert "Try 1 failed" in view.html and "flaky 0" in view.html
        assert " - Retry 1/" in view.html, "the run's own log lines"
        view._handle_message(view, {"event": "click", "id": retried["id"]}, [])
        assert "data-kf-detail" not in view.html, "a second click closes the row"

    def test_big_flows_are_grouped_by_task_name(self, shell: Any) -> None:
        tracker = widget_mode(shell)
        shell.run_cell(DEFINE)
        with capture_output() as captured:
            shell.run_cell("pipeline(300, fail=(7,))")
        html = bundles(captured)[-1]["text/html"]
        assert "300 / 300 task runs finished" in html
        # The table only: the log below it lists the latest lines, whichever runs logged
        # them (a worker thread may finish step-12x last).
        table = html.split("data-kf-notices")[0].split("data-kf-log")[0]
        assert ">Task</th>" in table and "step-12" not in table, "one row per task name"
        view = _last_view(tracker)
        row = view.model.snapshot().rows[0]
        assert row["counts"] == {"Completed": 300} and row["retries"] == 1
        view._handle_message(view, {"event": "click", "id": "group:step"}, [])
        assert "step-7" in view.html, "the retried run is listed first"
        assert len(view.model.rows) <= 41, "a view keeps few rows of a big flow"

    def test_a_big_flow_keeps_no_state_per_finished_run(self, shell: Any) -> None:
        from kernelflow.widgets._model import GROUP_DETAIL_ROWS, LOG_KEEP

        tracker = widget_mode(shell)
        shell.run_cell(DEFINE + "\n@flow\ndef chain(n):\n    return sum(step(i) for i in range(n))")
        with capture_output() as captured:
            shell.run_cell("chain(1500)")
        assert "1,500 / 1,500 task runs finished" in bundles(captured)[-1]["text/html"]
        model = _last_view(tracker).model
        counts = {state: n for state, n in model.groups["step"].items() if n}
        assert counts == {"Completed": 1500}
        assert model.inbox == {}, "the inbox keeps no run"
        assert model.active == {}, "a finished run is forgotten"
        assert len(model.rows) == 40 and len(model.recent["step"]) == GROUP_DETAIL_ROWS
        assert len(model.log_records) == LOG_KEEP and model.log_count >= 1500
        assert tracker.owner == {}, "the tracker forgets the runs of a finished view"
        view = _last_view(tracker)
        view._handle_message(view, {"event": "click", "id": "group:step"}, [])
        assert "step-1499" in view.html, "the latest finished runs are listed"
        latest = model.recent["step"][-1][0]
        view._handle_message(view, {"event": "click", "id": latest}, [])
        assert "Finished in state Completed" in view.html, "a recent run's kept log lines"

    def test_top_level_submissions_keep_updating_after_the_cell(self, shell: Any) -> None:
        tracker = widget_mode(shell)
        shell.run_cell(
            DEFINE + "\nimport threading\ngate = threading.Event()\n"
            "@task\ndef wait_for_gate(i):\n    gate.wait(10)\n    return i\n"
        )
        with capture_output() as captured:
            shell.run_cell("futures = [wait_for_gate.submit(i) for i in range(3)]")
        (bundle,) = bundles(captured)
        assert "Task runs of cell" in bundle["text/html"]
        view = _last_view(tracker)
        assert not view.model.is_final(), "the cell returned before its tasks"
        wait_until(lambda: view.html.count('data-kf-state="Running"') == 4)  # header + 3
        shell.user_ns["gate"].set()
        wait_until(lambda: view.html.count('data-kf-state="Completed"') == 4)
        assert view.model.is_final()
        assert "3 / 3 task runs finished" in view.html

    def test_a_flow_shows_its_task_runs_still_going(self, shell: Any) -> None:
        # Their Pending and Running states wait in the model's inbox, as the runs themselves.
        import threading

        tracker = widget_mode(shell)
        shell.run_cell(
            DEFINE + "\nimport threading\ngate = threading.Event()\n"
            "@task\ndef wait_for_gate(i):\n    gate.wait(10)\n    return i\n"
            "@flow\ndef gated(n):\n"
            "    return [f.result() for f in [wait_for_gate.submit(i) for i in range(n)]]\n"
        )
        seen: list[dict] = []

        def look_then_open_the_gate() -> None:
            def going() -> bool:
                shown = [v for v in set(tracker.owner.values()) if v.model.kind == "flow"]
                if not shown:
                    return False
                rows = shown[0].model.snapshot(group_threshold=0).rows
                counts = rows[0]["counts"] if rows else {}
                if sum(counts.values()) == 50 and "Running" in counts:
                    seen.append(counts)
                return bool(seen)

            try:
                wait_until(going)
            finally:
                shell.user_ns["gate"].set()

        looker = threading.Thread(target=look_then_open_the_gate)
        looker.start()
        with capture_output() as captured:
            shell.run_cell("gated(50)")
        looker.join()
        assert seen, "the view counted the 50 runs going on"
        assert set(seen[0]) <= {"Pending", "Running"}, seen
        assert "50 / 50 task runs finished" in bundles(captured)[-1]["text/html"]
        assert _last_view(tracker).model.inbox == {}, "the inbox keeps no run"

    def test_widgets_off_shows_nothing(self, shell: Any, monkeypatch: Any) -> None:
        widget_mode(shell)
        monkeypatch.setenv("KERNELFLOW_WIDGETS", "off")
        widgets.set_enabled(None)
        shell.run_cell(DEFINE)
        with capture_output() as captured:
            shell.run_cell("pipeline(2)")
        assert bundles(captured) == []
        widgets.set_enabled(True)
        with capture_output() as captured:
            shell.run_cell("pipeline(2)")
        assert len(bundles(captured)) == 2

    def test_a_broken_view_is_logged_once_and_the_run_goes_on(
        self, shell: Any, monkeypatch: Any
    ) -> None:
        widget_mode(shell)
        records: list[logging.LogRecord] = []
        handler = logging.Handler()
        handler.emit = records.append  # type: ignore[method-assign]
        logging.getLogger("kernelflow.widgets").addHandler(handler)

        def broken_render(*args: Any, **kwargs: Any) -> str:
            raise ZeroDivisionError("render bug")

        monkeypatch.setattr(_render, "render_run_html", broken_render)
        monkeypatch.setattr("kernelflow.widgets._faults._seen", set())
        try:
            shell.run_cell(DEFINE)
            result = shell.run_cell("pipeline(3)\npipeline(3)")
        finally:
            logging.getLogger("kernelflow.widgets").removeHandler(handler)
        assert result.success and result.result == [0, 1, 2]
        failures = [r for r in records if "render bug" in r.getMessage()]
        assert len(failures) == 1, [r.getMessage() for r in records]


ARTIFACTS = """
from kernelflow import flow, task
from kernelflow.artifacts import (
    create_markdown_artifact, create_progress_artifact, create_table_artifact,
    update_progress_artifact,
)

@task
def load(n):
    progress = create_progress_artifact(0, key="load-progress", description="loading")
    for i in range(n):
        update_progress_artifact(progress, 100 * (i + 1) / n)
    create_table_artifact({"a": list(range(n)), "b": list(range(n))}, key="loaded")
    return n

@flow
def reporting(n):
    create_markdown_artifact("# Report\\nbody", key="report", description="the summary")
    return load(n)
"""


class TestArtifacts:
    def test_the_terminal_table_lists_the_runs_artifacts(self, shell: Any, capsys: Any) -> None:
        shell.run_cell(ARTIFACTS)
        capsys.readouterr()
        shell.run_cell("reporting(4)")
        out = capsys.readouterr().out
        lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
        assert "artifact" in lines, out
        assert "# Report" in lines["report"] and "the summary" in lines["report"]
        assert "100%" in lines["load-progress"], "the last progress update"
        assert "4 rows, 2 columns" in lines["loaded"]

    def test_the_widget_lists_them_and_keeps_them_in_the_final_html(self, shell: Any) -> None:
        widget_mode(shell)
        shell.run_cell(ARTIFACTS)
        with capture_output() as captured:
            shell.run_cell("reporting(2)")
        html = bundles(captured)[-1]["text/html"]
        assert "data-kf-artifacts" in html
        assert "load-progress" in html and "100%" in html and "2 rows, 2 columns" in html
        assert "# Report" in html and "the summary" in html

    def test_a_cells_top_level_task_runs_show_theirs(self, shell: Any, capsys: Any) -> None:
        shell.run_cell(ARTIFACTS)
        capsys.readouterr()
        shell.run_cell("future = load.submit(3)")
        wait_until(lambda: "loaded" in (seen := capsys.readouterr().out) and "3 rows" in seen)


def _last_view(tracker: Any) -> Any:
    import gc

    from kernelflow.widgets._view import RunView

    found = [obj for obj in gc.get_objects() if isinstance(obj, RunView)]
    assert found, "a view was shown"
    return max(found, key=lambda v: v.model.created)


class TestCellTaskStatus:
    def test_status_line_for_each_outcome(self, shell: Any, capsys: Any) -> None:
        shell.run_cell("%%task ok\nx = 1")
        assert "ok: completed in" in capsys.readouterr().out
        shell.run_cell("%%task ok\nx = 1")
        out = capsys.readouterr().out
        # One status line: the hit's own "cached · took ..." line, no second one under it.
        assert out.startswith("cached · took ") and "ok: cached" not in out
        shell.run_cell("%%task broken --no-cache\nraise ValueError('bad row')")
        assert "broken: failed: ValueError: bad row" in capsys.readouterr().out
        shell.run_cell("%%task slow --no-cache --timeout 0.2\nimport time\ntime.sleep(2)")
        assert "slow: timed out after" in capsys.readouterr().out

    def test_retrying_line_counts_tries(self, shell: Any) -> None:
        from kernelflow.widgets._status import StatusModel

        seen: list[str] = []
        original = StatusModel.push

        def spy(self: StatusModel, run: Any, state: Any) -> None:
            original(self, run, state)
            seen.append(self.text())

        StatusModel.push = spy  # type: ignore[method-assign]
        try:
            shell.run_cell("tries = []")
            shell.run_cell(
                "%%task flaky --no-cache --retries 3 --retry-delay 0.3\n"
                "tries.append(1)\nassert len(tries) > 1, 'first try fails'"
            )
        finally:
            StatusModel.push = original  # type: ignore[method-assign]
        assert any(line.startswith("flaky: retrying: try 2 of 4 next") for line in seen), seen
        assert any(line.startswith("flaky: running try 2 of 4") for line in seen), seen
        assert seen[-1] == "flaky: completed on try 2"


def test_load_ext_imports_no_widget_library(tmp_path: Any) -> None:
    code = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "InteractiveShell.instance().run_line_magic('load_ext', 'kernelflow')\n"
        "heavy = [m for m in ('ipywidgets', 'anywidget', 'duckdb', 'pandas') if m in sys.modules]\n"
        "print(heavy, 'kernelflow.engine' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[] False"


def test_every_public_name_of_the_package_resolves() -> None:
    # The package imports its views lazily, by name: a name mapped to the wrong module
    # would only fail when a user asks for it.
    for name in widgets.__all__:
        assert callable(getattr(widgets, name)), name
    from kernelflow.widgets._view import TaskStatus

    assert widgets.TaskStatus is TaskStatus

"""Deployment runs as the JupyterLab panel reads them: typed parameters, the executed
notebook, the notebook's tasks, Skipped runs folded, and logs without the kernel's noise.

The payload functions are called directly (the REST layer over them is tested in
``tests/extension``); the runs are real: papermill runs each notebook in a real kernel.
"""

from __future__ import annotations

import logging
import time

import pytest

from kernelflow.deployments import deploy, run_deployment
from kernelflow.errors import ConfigurationError
from kernelflow.extension.payloads import run_detail, runs_page

NOISE = ("already loaded", "KeyboardInterrupt caught in kernel", "[IPKernelApp]")


def record_skipped(name: str, reason: str) -> str:
    """Record a Skipped run of deployment ``name``, as the scheduler's catch-up does."""
    from kernelflow.deployments.execution import create_run
    from kernelflow.deployments.registry import get
    from kernelflow.states import State, StateType

    state = State(StateType.CANCELLED, "Skipped", reason)
    return create_run(get(name), time.time(), {}, state=state).id


class TestStreamLog:
    """The worker's capture of a cell's output, on a real journal of a real store."""

    def levels_of(self, store, run_id: str) -> list[tuple[str, str, str]]:
        frame = store.sql(
            "SELECT level_name, logger, message FROM logs WHERE run_id = ? ORDER BY timestamp, seq",
            [run_id],
        )
        return [tuple(row) for row in frame.itertuples(index=False)]

    def test_levels_kept_and_kernel_chatter_dropped(self, store):
        from kernelflow.deployments.run_log import _RunLog, _StreamLog

        log = _RunLog("run-1", 3)
        stderr = _StreamLog(log, "stderr", logging.WARNING)
        stdout = _StreamLog(log, "stdout", logging.INFO)
        stderr.write("12:00:01.234 | INFO    | Task run 'load-0' - Finished in state Completed()\n")
        stderr.write("a warning of the user's\non two lines\n")
        stderr.write("[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.\n")
        stderr.write("KeyboardInterrupt caught in kernel\n")
        stderr.write(
            "before\n12:00:02.000 | ERROR   | Flow run 'x' - boom\n"
            "[IPKernelApp] WARNING | Kernel is running over TCP without encryption.\nafter\n"
        )
        stdout.write("value 20\n")
        stdout.write("\n")
        assert self.levels_of(store, "run-1") == [
            (
                "INFO",
                "kernelflow.deployments.stderr",
                "12:00:01.234 | INFO    | Task run 'load-0' - Finished in state Completed()",
            ),
            ("WARNING", "kernelflow.deployments.stderr", "a warning of the user's\non two lines"),
            ("WARNING", "kernelflow.deployments.stderr", "before"),
            (
                "ERROR",
                "kernelflow.deployments.stderr",
                "12:00:02.000 | ERROR   | Flow run 'x' - boom",
            ),
            ("WARNING", "kernelflow.deployments.stderr", "after"),
            ("INFO", "kernelflow.deployments.stdout", "value 20"),
        ]


@pytest.mark.slow
class TestADeploymentRun:
    def test_reads_well_in_the_panel(self, make_notebook, store):
        nb = make_notebook(
            "weekly",
            "%load_ext kernelflow",
            "import sys\nprint('value', n * 2)\nprint('to stderr', file=sys.stderr)",
            "from kernelflow import get_run_logger, task\n@task\ndef square(x):\n"
            "    get_run_logger().info('squaring %d', x)\n    return x * x\nsquare(n)",
            "%%task doubled\ndoubled = n * 2",
            parameters="n: int = 1\nlabel = 'daily'\nratio: float = 0.5",
        )
        deploy(nb, "weekly", interval=3600, parameters={"label": "weekly"})
        first = record_skipped("weekly", "Slot 2026-12-01T06:00:00+00:00 was missed")
        record_skipped("weekly", "Slot 2026-12-02T06:00:00+00:00 was missed")
        newest_skip = record_skipped("weekly", "Slot 2026-12-03T06:00:00+00:00 was missed")
        run = run_deployment("weekly", parameters={"n": "10", "ratio": "2"})
        assert run.state.name == "Completed", run.state.message
        after = record_skipped("weekly", "Slot 2026-12-04T06:00:00+00:00 was missed")

        # The list: Skipped runs folded with their reason; the run's own fields.
        listed = runs_page(deployment="weekly")["runs"]
        assert [(r["id"], r["folded"], r["reason"]) for r in listed] == [
            (after, None, "Slot 2026-12-04T06:00:00+00:00 was missed"),
            (run.id, None, None),
            (newest_skip, 3, "Slot 2026-12-03T06:00:00+00:00 was missed"),
        ]
        folded = listed[2]
        created_first = store.sql("SELECT created FROM flow_runs WHERE id = ?", [first])
        assert folded["folded_since"].startswith(
            created_first["created"].iloc[0].strftime("%Y-%m-%dT%H:%M:%S")
        )
        summary = listed[1]
        assert summary["kind"] == "deployment" and summary["deployment"] == "weekly"
        assert summary["display_name"] == run.name and summary["path"] == str(nb)
        # The notebook's tasks count as the deployment run's.
        assert summary["task_runs"]["total"] == 2 and summary["failed_tasks"] == 0
        # Only runs of the deployment's own history split a fold, not the filters.
        only_skipped = runs_page(deployment="weekly", state="Skipped")["runs"]
        assert [(r["id"], r["folded"]) for r in only_skipped] == [(after, None), (newest_skip, 3)]
        # A page counts rows after folding.
        assert [r["id"] for r in runs_page(deployment="weekly", limit="2")["runs"]] == [
            after,
            run.id,
        ]
        assert runs_page(deployment="weekly", limit="2")["has_more"] is True
        # No session run of the kernel: its cells and tasks are the deployment run's.
        assert [r for r in runs_page()["runs"] if r["kind"] == "session"] == []

        # The detail: typed parameters, the executed notebook, the tasks.
        detail = run_detail(run.id, log_limit="1000")
        typed = {p["name"]: (p["type"], p["value_text"]) for p in detail["run"]["parameters_typed"]}
        assert typed == {
            "n": ("int", "10"),
            "label": ("str", "'weekly'"),
            "ratio": ("float", "2.0"),
        }
        assert detail["run"]["deployment"] == "weekly"
        assert detail["run"]["has_notebook"] is True and detail["run"]["has_html"] is True
        assert detail["run"]["pause"] is None
        assert sorted(t["name"] for t in detail["task_runs"]) == ["doubled-0", "square-0"]

        # The logs: the notebook's output, at the right levels, and none of the kernel's noise.
        lines = [(m["level_name"], m["logger"], m["message"]) for m in detail["logs"]]
        assert ("INFO", "kernelflow.deployments.stdout", "value 20") in lines
        assert ("WARNING", "kernelflow.deployments.stderr", "to stderr") in lines
        # A task's own lines are the run's too.
        assert ("INFO", "squaring 10") in [(level, message) for level, _, message in lines]
        for level, _, message in lines:
            assert not any(noise in message for noise in NOISE), message
            if " | INFO    | " in message:
                assert level == "INFO", message
        skipped = run_detail(newest_skip)["run"]
        assert skipped["has_notebook"] is False and skipped["parameters_typed"] == [
            {"name": "label", "type": "str", "value_text": "'weekly'"}
        ]

    def test_parameters_given_as_text_run_typed(self, make_notebook, store):
        nb = make_notebook(
            "typed",
            "assert isinstance(n, int) and isinstance(flag, bool), (type(n), type(flag))",
            parameters="n: int = 1\nflag = False",
        )
        deploy(nb, "typed", interval=3600)
        run = run_deployment("typed", parameters={"n": "12", "flag": "yes"})
        assert run.state.name == "Completed", run.state.message
        typed = run_detail(run.id)["run"]["parameters_typed"]
        assert typed == [
            {"name": "n", "type": "int", "value_text": "12"},
            {"name": "flag", "type": "bool", "value_text": "True"},
        ]
        with pytest.raises(ConfigurationError, match="'n' of deployment 'typed' is an int"):
            run_deployment("typed", parameters={"n": "twelve"})

"""Subflows, run names, the run context, run loggers and log_prints.

Part of the engine against Prefect 3.9's observed semantics
(shared/notes/prefect-semantics.md), one class per feature. Timings are only ever
lower bounds (a delay really happened); speed is measured in ``bench/``, never
asserted here.
"""

from __future__ import annotations

import re

import pytest
from engine_helpers import logged

from kernelflow import flow, get_run_logger, task
from kernelflow.context import get_run_context
from kernelflow.errors import MissingContextError


# --- Subflows ------------------------------------------------------------------------
class TestSubflows:
    def test_subflow_links_to_parent(self):
        seen = {}

        @flow
        def child():
            seen["child"] = get_run_context().flow_run
            return "c"

        @flow
        def parent():
            seen["parent"] = get_run_context().flow_run
            return child() + "p"

        assert parent() == "cp"
        assert seen["child"].parent_flow_run_id == seen["parent"].id
        assert seen["parent"].parent_flow_run_id is None

    def test_failing_subflow_raises_in_parent(self):
        @flow
        def child():
            raise ValueError("child broke")

        @flow
        def parent():
            try:
                child()
            except ValueError as exc:
                return f"caught {exc}"

        assert parent() == "caught child broke"

    def test_subflow_return_state(self):
        @flow
        def child():
            raise ValueError("child broke")

        @flow
        def parent():
            return child(return_state=True)

        state = parent(return_state=True)
        assert state.is_failed() and state.message == "1/1 states failed."

    def test_subflow_called_from_a_task_links_to_the_task(self):
        seen = {}

        @flow
        def child():
            seen["child"] = get_run_context().flow_run
            return 1

        @task
        def spawner():
            seen["task"] = get_run_context().task_run
            return child()

        @flow
        def parent():
            return spawner()

        assert parent() == 1
        assert seen["child"].parent_task_run_id == seen["task"].id

    def test_subflow_called_from_a_task_logs_as_the_subflow(self, capsys):
        @flow(flow_run_name="inner-run", log_prints=True)
        def child():
            print("printed in child")
            get_run_logger().info("logged in child")

        @task(log_prints=True)
        def spawner():
            child()
            print("printed in task")

        spawner()
        err = capsys.readouterr().err
        assert logged(err, "Flow run 'inner-run'") == [
            "Beginning flow run 'inner-run' for flow 'child'",
            "printed in child",
            "logged in child",
            "Finished in state Completed()",
        ]
        assert "printed in task" in logged(err)

    def test_subflow_task_names_count_per_flow_run(self):
        names = []

        @task
        def t():
            names.append(get_run_context().task_run.name)

        @flow
        def child():
            t()

        @flow
        def parent():
            t()
            child()
            t()

        parent()
        assert names == ["t-0", "t-0", "t-1"]


# --- Run names, context, loggers -------------------------------------------------------
class TestRunContext:
    def test_flow_run_name_random_and_templated(self):
        names = []

        @flow
        def plain():
            names.append(get_run_context().flow_run.name)

        @flow(flow_run_name="report-{day}")
        def templated(day: str):
            names.append(get_run_context().flow_run.name)

        plain()
        templated("monday")
        assert re.fullmatch(r"[a-z]+-[a-z]+", names[0])
        assert names[1] == "report-monday"

    def test_task_run_name_template_and_callable(self):
        names = []

        @task(task_run_name="load-{table}")
        def load(table):
            names.append(get_run_context().task_run.name)

        @task(task_run_name=lambda: "fixed")
        def other():
            names.append(get_run_context().task_run.name)

        @flow
        def f():
            load("users")
            other()

        f()
        assert names == ["load-users", "fixed"]

    def test_get_run_logger_outside_a_run(self):
        with pytest.raises(MissingContextError, match="inside a @flow or @task"):
            get_run_logger()

    def test_get_run_logger_in_flow_and_task(self, capsys):
        @task
        def t():
            get_run_logger().warning("from task %d", 1)

        @flow(flow_run_name="logging-run")
        def f():
            get_run_logger().info("from flow")
            t()

        f()
        err = capsys.readouterr().err
        assert re.search(r"\| WARNING \| Task run 't-0' - from task 1$", err, re.M)
        assert re.search(r"\| INFO    \| Flow run 'logging-run' - from flow$", err, re.M)

    def test_flow_name_defaults_to_function_name_with_dashes(self):
        @flow
        def my_nice_flow():
            return get_run_context().flow.name

        assert my_nice_flow() == "my-nice-flow"

    def test_tasks_of_a_thread_pool_see_their_flow(self):
        seen = set()

        @task
        def t(i):
            seen.add(get_run_context().task_run.flow_run_id)

        @flow
        def f():
            futures = t.map(range(8))
            futures.wait()
            return get_run_context().flow_run.id

        run_id = f()
        assert seen == {run_id}


# --- log_prints ----------------------------------------------------------------------
class TestLogPrints:
    def test_task_prints_go_to_its_logger(self, capsys):
        @task(log_prints=True)
        def t():
            print("hello", "world", sep="-")

        @flow
        def f():
            t()
            print("plain flow print")

        f()
        out, err = capsys.readouterr()
        assert out == "plain flow print\n"
        assert "hello-world" in logged(err, "Task run 't-0'")

    def test_flow_log_prints_is_inherited_by_tasks(self, capsys):
        @task
        def t():
            print("from task")

        @task(log_prints=False)
        def quiet():
            print("to stdout")

        @flow(log_prints=True)
        def f():
            t()
            quiet()

        f()
        out, err = capsys.readouterr()
        assert out == "to stdout\n"
        assert "from task" in logged(err, "Task run 't-0'")

    def test_print_to_a_file_is_left_alone(self, capsys):
        import sys

        @task(log_prints=True)
        def t():
            print("to stderr", file=sys.stderr)

        t()
        err = capsys.readouterr().err
        assert "to stderr\n" in err
        assert "to stderr" not in logged(err)

    def test_print_outside_runs_is_untouched(self, capsys):
        @task(log_prints=True)
        def t():
            print("inside")

        t()
        print("outside")
        out, _err = capsys.readouterr()
        assert out == "outside\n"

"""``kernelflow.logging``: Prefect's ``prefect.logging`` and ``prefect.logging.loggers`` names."""

from __future__ import annotations

import logging

import pytest

from kernelflow import flow, task
from kernelflow.errors import MissingContextError
from kernelflow.logging import disable_run_logger, get_logger, get_run_logger
from kernelflow.logging.loggers import flow_run_logger, task_run_logger


def log_lines(store, run_id: str) -> list[str]:
    frame = store.sql("SELECT message FROM logs WHERE run_id = ? ORDER BY timestamp", [run_id])
    return list(frame["message"])


class TestImports:
    def test_the_package_does_not_hide_the_standard_logging_module(self, run_python):
        proc = run_python(
            """
            import kernelflow, kernelflow.logs, kernelflow.logging, kernelflow.logging.loggers
            import kernelflow.engine, kernelflow.kernel, kernelflow.deployments.runner
            import logging
            assert logging.getLogger is not None and logging.__name__ == "logging"
            assert kernelflow.logging.get_run_logger is kernelflow.logs.get_run_logger
            print(kernelflow.logs.logging.__name__, kernelflow.engine.transitions.logging.__name__)
            """
        )
        assert proc.stdout.split() == ["logging", "logging"]


class TestGetRunLogger:
    def test_records_go_to_the_run_with_extra_attributes(self, store, caplog):
        @task
        def load() -> str:
            get_run_logger(source="s3").info("loading %d rows", 3)
            return "done"

        @flow
        def pipeline() -> str:
            state = load(return_state=True)
            return state.run_id

        with caplog.at_level(logging.INFO, logger="kernelflow.runs.task"):
            logging.getLogger("kernelflow.runs.task").addHandler(caplog.handler)
            try:
                run_id = pipeline()
            finally:
                logging.getLogger("kernelflow.runs.task").removeHandler(caplog.handler)
        assert log_lines(store, run_id)[:1] == ["loading 3 rows"]
        record = next(r for r in caplog.records if r.getMessage() == "loading 3 rows")
        assert (record.source, record.run_id) == ("s3", run_id)

    def test_outside_a_run_it_raises(self):
        with pytest.raises(MissingContextError):
            get_run_logger()

    def test_a_context_that_is_not_a_run_context_is_refused(self):
        with pytest.raises(TypeError, match="FlowRunContext or TaskRunContext"):
            get_run_logger(context="nope")  # type: ignore[arg-type]


class TestDisableRunLogger:
    def test_a_tasks_fn_can_be_called_outside_a_run(self):
        @task
        def double(x: int) -> int:
            get_run_logger().info("doubling")
            return 2 * x

        with disable_run_logger():
            assert double.fn(21) == 42
        with pytest.raises(MissingContextError):
            double.fn(1)

    def test_run_log_lines_inside_the_block_are_discarded_then_come_back(self, store):
        @task
        def talk(word: str) -> str:
            get_run_logger().info(word)
            return runtime_id()

        @flow
        def pipeline() -> tuple:
            with disable_run_logger():
                quiet = talk("hush")
            return quiet, talk("loud")

        quiet, loud = pipeline()
        assert "hush" not in log_lines(store, quiet)
        assert "loud" in log_lines(store, loud)
        assert not logging.getLogger("kernelflow.runs.task").disabled


def runtime_id() -> str:
    from kernelflow import runtime

    return runtime.task_run.id


class TestRunLoggersForAGivenRun:
    def test_hooks_log_to_the_run_they_are_given(self, store):
        def on_flow_done(flow_, flow_run, state) -> None:
            flow_run_logger(flow_run, flow_).warning("flow hook saw %s", state.name)

        def on_task_done(task_, task_run, state) -> None:
            task_run_logger(task_run, task_).warning("task hook saw %s", state.name)

        @task(on_completion=[on_task_done])
        def step() -> str:
            return runtime_id()

        @flow(on_completion=[on_flow_done])
        def pipeline() -> str:
            return step()

        state = pipeline(return_state=True)
        task_run_id = state.result()
        assert "flow hook saw Completed" in log_lines(store, state.run_id)
        assert "task hook saw Completed" in log_lines(store, task_run_id)

    def test_records_name_the_task_flow_and_flow_run(self, caplog):
        captured: list[logging.LogRecord] = []

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                captured.append(record)

        handler = Keep()
        logging.getLogger("kernelflow.runs.task").addHandler(handler)
        try:

            @task
            def step() -> None:
                from kernelflow.context import task_context

                ctx = task_context.get()
                task_run_logger(ctx.task_run, ctx.task, batch=7).info("hello")

            @flow(flow_run_name="the-run")
            def pipeline() -> None:
                step()

            pipeline()
        finally:
            logging.getLogger("kernelflow.runs.task").removeHandler(handler)
        record = next(r for r in captured if r.getMessage() == "hello")
        assert (record.task_name, record.flow_run_name, record.flow_name, record.batch) == (
            "step",
            "the-run",
            "pipeline",
            7,
        )


class TestGetLogger:
    def test_names_are_under_kernelflow(self):
        assert get_logger().name == "kernelflow"
        assert get_logger("etl").name == "kernelflow.etl"
        assert get_logger("kernelflow.etl") is get_logger("etl")

    def test_it_prints_in_the_run_log_format(self, run_python):
        proc = run_python(
            """
            from kernelflow.logging import get_logger
            get_logger("etl").warning("disk %s", "low")
            """
        )
        assert "| WARNING | kernelflow.etl - disk low" in proc.stderr

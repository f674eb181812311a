"""``kernelflow.exceptions``: the exception names a Prefect user catches."""

from __future__ import annotations

import pytest

from kernelflow import exceptions, flow, task
from kernelflow.states import Cancelled, Crashed, Failed, Running


class TestNamesAreKernelflowsOwnClasses:
    def test_every_name_is_a_kernelflow_error_class(self):
        from kernelflow.errors import KernelflowError

        for name in exceptions.__all__:
            cls = getattr(exceptions, name)
            assert issubclass(cls, KernelflowError), name

    def test_prefect_exception_is_the_base(self):
        with pytest.raises(exceptions.PrefectException):
            Crashed(message="kernel died").result()


class TestWhatUsersCatch:
    def test_results_of_runs_that_did_not_complete(self):
        with pytest.raises(exceptions.CrashedRun, match="kernel died"):
            Crashed(message="kernel died").result()
        with pytest.raises(exceptions.CancelledRun):
            Cancelled().result()
        with pytest.raises(exceptions.UnfinishedRun, match="Running"):
            Running().result()
        with pytest.raises(exceptions.FailedRun) as info:
            Failed(message="no exception").result()
        assert type(info.value) is exceptions.FailedRun
        # Unlike Prefect, the three are kinds of FailedRun.
        assert isinstance(Crashed().result(raise_on_failure=False), exceptions.FailedRun)

    def test_upstream_task_error_in_a_not_ready_state(self):
        @task
        def boom() -> int:
            raise ValueError("nope")

        @task
        def after(x: int) -> int:
            return x

        @flow
        def pipeline() -> str:
            state = after(boom.submit(), return_state=True)
            try:
                state.result()
            except exceptions.UpstreamTaskError:
                return state.name
            return "not raised"

        assert pipeline() == "NotReady"

    def test_timeouts(self):
        import time

        @task(timeout_seconds=0.2)
        def slow() -> None:
            time.sleep(2)

        @flow
        def pipeline() -> str:
            try:
                slow()
            except exceptions.TaskRunTimeoutError as exc:
                return str(exc)
            return "not raised"

        assert pipeline() == "Task run exceeded timeout of 0.2 second(s)"
        assert issubclass(exceptions.FlowRunTimeoutError, TimeoutError)

    def test_missing_context(self):
        from kernelflow import get_run_logger

        with pytest.raises(exceptions.MissingContextError):
            get_run_logger()

    def test_parameter_type_error(self):
        @flow
        def typed(n: int) -> int:
            return n

        with pytest.raises(exceptions.ParameterTypeError):
            typed(n="many")

    def test_map_errors(self):
        @task
        def add(a: int, b: int) -> int:
            return a + b

        @flow
        def mismatched() -> None:
            add.map([1, 2], [1])

        with pytest.raises(exceptions.MappingLengthMismatch):
            mismatched()

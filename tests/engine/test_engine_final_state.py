"""The final states of flow and task runs: failures, returned states.

Part of the engine against Prefect 3.9's observed semantics
(shared/notes/prefect-semantics.md), one class per feature. Timings are only ever
lower bounds (a delay really happened); speed is measured in ``bench/``, never
asserted here.
"""

from __future__ import annotations

import threading
import time

import pytest
from engine_helpers import square_task

import kernelflow
from kernelflow import flow, task
from kernelflow.errors import MissingContextError
from kernelflow.states import Completed, Failed, State, StateType


# --- Task failure and the flow's final state -------------------------------------------
class TestFlowFinalState:
    def test_task_exception_message(self):
        @task
        def boom():
            raise ValueError("nope-123")

        @flow
        def f():
            return boom(return_state=True)

        state = f(return_state=True)
        task_state = state.data
        assert task_state.name == "Failed" and task_state.type is StateType.FAILED
        assert task_state.message == "Task run encountered an exception ValueError: nope-123"
        assert state.is_failed()
        assert state.message == "1/1 states failed."

    def test_failed_state_dropped_flow_completes(self):
        @task
        def boom():
            raise ValueError("nope")

        @flow
        def f():
            s = boom(return_state=True)
            assert s.is_failed()
            return 1

        state = f(return_state=True)
        assert state.is_completed() and state.result() == 1

    def test_failed_future_not_returned_flow_completes_after_waiting(self):
        finished = threading.Event()

        @task
        def boom():
            time.sleep(0.1)
            finished.set()
            raise ValueError("nope")

        @flow
        def f():
            boom.submit()
            return 1

        state = f(return_state=True)
        assert finished.is_set(), "the flow ended before its submitted task"
        assert state.is_completed() and state.result() == 1

    def test_unresolved_future_is_waited_for(self):
        done = []

        @task
        def slow():
            time.sleep(0.1)
            done.append(True)
            return 5

        @flow
        def f():
            slow.submit()

        assert f() is None
        assert done == [True]

    def test_returned_futures_become_states(self):
        @task
        def sq(x):
            return x * x

        @flow
        def submitted():
            return [sq.submit(i) for i in range(3)]

        @flow
        def mapped():
            return sq.map(range(3))

        for f in (submitted, mapped):
            result = f()
            assert isinstance(result, list) and len(result) == 3
            assert all(isinstance(s, State) and s.is_completed() for s in result)
            assert [s.result() for s in result] == [0, 1, 4]

    def test_returned_futures_one_failed_fails_the_flow(self):
        @task
        def maybe(x):
            if x == 1:
                raise KeyError("one")
            return x

        @flow
        def f():
            return [maybe.submit(i) for i in range(3)]

        state = f(return_state=True)
        assert state.is_failed() and state.message == "1/3 states failed."
        with pytest.raises(KeyError, match="one"):
            f()

    def test_returned_not_ready_state_fails_the_flow(self):
        @task
        def bad():
            raise ValueError("up")

        @task
        def down(x):
            return x

        @flow
        def f():
            return down(bad.submit(), return_state=True)

        state = f(return_state=True)
        assert state.is_final() and state.is_failed()
        assert state.message == "1/1 states are not final."
        assert kernelflow.sql("SELECT state_name FROM flow_runs")["state_name"].tolist() == [
            "Failed"
        ]

    def test_returned_dict_of_futures_becomes_states(self):
        @flow
        def f():
            return {"a": square_task.submit(2), "b": 1}

        result = f()
        assert isinstance(result["a"], State) and result["a"].result() == 4
        assert result["b"] == 1

    def test_failed_flow_raises_original_exception(self):
        class Custom(Exception):
            pass

        @flow
        def f():
            raise Custom("inner")

        with pytest.raises(Custom, match="inner"):
            f()
        state = f(return_state=True)
        assert state.is_failed()
        assert state.message == "Flow run encountered an exception: Custom: inner"
        assert isinstance(state.result(raise_on_failure=False), Custom)

    def test_uncaught_task_failure_fails_the_flow_with_the_task_exception(self):
        @task
        def boom():
            raise ZeroDivisionError("zero")

        @flow
        def f():
            boom()
            return "never"

        with pytest.raises(ZeroDivisionError, match="zero"):
            f()

    def test_flow_returning_a_user_state(self):
        @flow
        def f():
            return Failed(message="I decided")

        state = f(return_state=True)
        assert state.is_failed() and state.message == "I decided"

    def test_task_outside_flow_runs_and_returns(self):
        @task
        def double(x):
            return 2 * x

        assert double(21) == 42
        assert double(1, return_state=True).result() == 2

    def test_submit_outside_flow_is_a_runtime_error(self):
        @task
        def double(x):
            return 2 * x

        with pytest.raises(RuntimeError, match=r"double\.submit\(\) needs a flow run"):
            double.submit(1)
        with pytest.raises(MissingContextError):
            double.map([1, 2])


class TestReturnState:
    def test_task_returning_a_state_is_its_state(self):
        @task
        def t():
            return Completed(message="hi", data=3)

        @flow
        def f():
            s = t(return_state=True)
            # As in Prefect, calling the task returns the State its function returned.
            plain = t()
            return s.name, s.message, s.result(), plain.name, plain.result()

        assert f() == ("Completed", "hi", 3, "Completed", 3)

    def test_task_returning_failed_raises_on_result(self):
        @task
        def t():
            return Failed(message="negative")

        @flow
        def f():
            s = t(return_state=True)
            assert s.is_failed() and s.message == "negative"
            with pytest.raises(Exception, match="negative"):
                s.result()
            return s.result(raise_on_failure=False)

        assert "negative" in str(f())

    def test_flow_return_state_true(self):
        @flow
        def f(x):
            return x + 1

        state = f(1, return_state=True)
        assert isinstance(state, State)
        assert state.is_completed() and state.name == "Completed" and state.result() == 2

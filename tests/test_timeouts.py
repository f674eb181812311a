"""Task and flow timeouts that really happen (issue 2, "Retries and timeouts").

A task over ``timeout_seconds`` ends ``TimedOut`` (a ``FAILED`` state) and its
flow goes on; pure-Python code in the timed-out thread is interrupted; a flow
over its timeout ends ``TimedOut``. No test here asserts how fast anything is:
"the flow goes on" is shown by the flow returning while the task's thread is
still blocked.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta

import pytest

import kernelflow
from kernelflow import flow, task
from kernelflow.errors import FlowRunTimeout, TaskRunTimeout
from kernelflow.runners import ThreadPoolTaskRunner
from kernelflow.states import StateType


def wait_until(predicate, seconds: float = 5.0) -> bool:
    """Poll ``predicate`` until true or ``seconds`` pass; its last value."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class TestTaskTimeouts:
    def test_timed_out_state_and_the_flow_goes_on(self):
        release = threading.Event()

        @task(timeout_seconds=0.3)
        def blocked():
            release.wait(30)  # blocked in C: cannot be interrupted, only abandoned

        @flow
        def f():
            state = blocked(return_state=True)
            return state, release.is_set()

        state, released_before_flow_went_on = f()
        release.set()
        assert released_before_flow_went_on is False
        assert state.name == "TimedOut"
        assert state.type is StateType.FAILED and state.is_failed()
        assert state.message == "Task run exceeded timeout of 0.3 second(s)"
        assert isinstance(state.data, TaskRunTimeout)
        with pytest.raises(TimeoutError, match=r"exceeded timeout of 0\.3 second"):
            state.result()

    def test_uncaught_timeout_fails_the_flow(self):
        @task(timeout_seconds=0.2)
        def slow():
            time.sleep(2)

        @flow
        def f():
            slow()

        with pytest.raises(TaskRunTimeout):
            f()

    def test_pure_python_busy_loop_really_stops(self):
        counter = [0]

        @task(timeout_seconds=0.2)
        def busy():
            while True:
                counter[0] += 1

        assert busy(return_state=True).name == "TimedOut"
        # The interrupt lands within a few bytecodes; give it a moment, then watch.
        assert wait_until(lambda: _stopped(counter))
        settled = counter[0]
        time.sleep(0.1)
        assert counter[0] == settled > 0

    def test_finally_blocks_of_an_interrupted_task_run(self):
        cleaned = threading.Event()

        @task(timeout_seconds=0.2)
        def busy():
            try:
                while True:
                    pass
            finally:
                cleaned.set()

        assert busy(return_state=True).name == "TimedOut"
        assert cleaned.wait(5)

    def test_finishing_in_time_and_own_errors_are_untouched(self):
        @task(timeout_seconds=5)
        def fine(x):
            return x + 1

        @task(timeout_seconds=5)
        def broken():
            raise KeyError("own")

        assert fine(1) == 2
        state = broken(return_state=True)
        assert state.name == "Failed"
        assert state.message == "Task run encountered an exception KeyError: 'own'"

    def test_timed_out_try_is_retried(self):
        tries = []

        @task(timeout_seconds=0.2, retries=1)
        def slow_then_fast():
            tries.append(1)
            if len(tries) == 1:
                while True:
                    pass
            return "second try"

        @flow
        def f():
            return slow_then_fast()

        assert f() == "second try"
        assert len(tries) == 2

    def test_timedelta_timeout(self):
        @task(timeout_seconds=timedelta(milliseconds=200))
        def slow():
            time.sleep(2)

        assert slow(return_state=True).message == "Task run exceeded timeout of 0.2 second(s)"

    def test_submitted_task_timeout(self):
        @task(timeout_seconds=0.2)
        def slow(i):
            time.sleep(2)

        @task
        def fast(i):
            return i

        @flow
        def f():
            futures = [slow.submit(0), fast.submit(1)]
            for fut in futures:
                fut.wait()
            return [(fut.state.name, fut.state.message) for fut in futures]

        assert f() == [
            ("TimedOut", "Task run exceeded timeout of 0.2 second(s)"),
            ("Completed", None),
        ]

    def test_async_task_timeout(self):
        @task(timeout_seconds=0.2)
        async def slow():
            await asyncio.sleep(5)

        @flow
        async def f():
            state = await slow(return_state=True)
            return state.name, state.type, state.message

        assert asyncio.run(f()) == (
            "TimedOut",
            StateType.FAILED,
            "Task run exceeded timeout of 0.2 second(s)",
        )

    def test_timed_out_state_is_recorded(self):
        @task(timeout_seconds=0.2)
        def slow():
            time.sleep(2)

        @flow
        def f():
            slow(return_state=True)
            return "went on"

        assert f() == "went on"
        rows = kernelflow.sql(
            "SELECT state_type, state_name, state_message FROM task_runs"
        ).to_dict("records")
        assert rows == [
            {
                "state_type": "FAILED",
                "state_name": "TimedOut",
                "state_message": "Task run exceeded timeout of 0.2 second(s)",
            }
        ]
        flows = kernelflow.sql("SELECT state_name FROM flow_runs")["state_name"].tolist()
        assert flows == ["Completed"]


def _stopped(counter: list[int]) -> bool:
    before = counter[0]
    time.sleep(0.02)
    return counter[0] == before


class TestFlowTimeouts:
    def test_flow_timeout(self):
        @flow(timeout_seconds=0.3)
        def f():
            time.sleep(3)

        state = f(return_state=True)
        assert state.name == "TimedOut" and state.type is StateType.FAILED
        assert state.message == "Flow run exceeded timeout of 0.3 second(s)"
        with pytest.raises(FlowRunTimeout) as info:
            f()
        assert isinstance(info.value, TimeoutError)

    def test_flow_busy_loop_really_stops(self):
        counter = [0]

        @flow(timeout_seconds=0.2)
        def f():
            while True:
                counter[0] += 1

        assert f(return_state=True).name == "TimedOut"
        assert wait_until(lambda: _stopped(counter))

    def test_flow_timeout_with_a_slow_task(self):
        @task
        def slow():
            time.sleep(2)

        @flow(timeout_seconds=0.3)
        def f():
            slow()
            return "not reached"

        assert f(return_state=True).name == "TimedOut"

    def test_unstarted_submitted_tasks_are_cancelled(self):
        release = threading.Event()

        @task
        def first():
            release.wait(30)

        @task
        def later(i):
            return i

        @flow(timeout_seconds=0.3, task_runner=ThreadPoolTaskRunner(max_workers=1))
        def f():
            first.submit()
            for i in range(3):
                later.submit(i)
            release.wait(30)

        try:
            assert f(return_state=True).name == "TimedOut"
        finally:
            release.set()
        rows = kernelflow.sql(
            "SELECT task_name, state_name FROM task_runs WHERE task_name = 'later'"
        )
        assert rows["state_name"].tolist() == ["Cancelled"] * 3

    def test_async_flow_timeout(self):
        @flow(timeout_seconds=0.2)
        async def f():
            await asyncio.sleep(5)

        state = asyncio.run(f(return_state=True))
        assert state.name == "TimedOut"
        assert state.message == "Flow run exceeded timeout of 0.2 second(s)"

    def test_timed_out_flow_calls_on_failure(self):
        seen = []

        @flow(timeout_seconds=0.2, on_failure=[lambda fl, fr, s: seen.append(s.name)])
        def f():
            time.sleep(2)

        f(return_state=True)
        assert seen == ["TimedOut"]

    def test_flow_finishing_in_time(self):
        @flow(timeout_seconds=5)
        def f(x):
            return x * 2

        assert f(21) == 42

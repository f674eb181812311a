"""``.submit()``, ``.map()``, futures, ``wait``, ``as_completed`` and ``wait_for``."""

from __future__ import annotations

import threading

import pytest

from kernelflow import allow_failure, flow, task, unmapped
from kernelflow.errors import ConfigurationError, UpstreamTaskError
from kernelflow.futures import (
    DoneAndNotDoneFutures,
    PrefectFuture,
    PrefectFutureList,
    TaskRunFuture,
    as_completed,
    wait,
)
from kernelflow.states import StateType


@task
def square(x):
    return x * x


@task
def fail(message="nope"):
    raise ValueError(message)


class TestFutures:
    def test_submit_returns_a_future_at_once(self):
        release = threading.Event()

        @task
        def blocked():
            release.wait(10)
            return "done"

        @flow
        def f():
            fut = blocked.submit()
            assert isinstance(fut, TaskRunFuture) and isinstance(fut, PrefectFuture)
            early = (fut.done(), fut.state.type)
            release.set()
            return early, fut.result(), fut.done(), fut.state.name

        early, value, done, final = f()
        assert early[0] is False
        assert early[1] in (StateType.PENDING, StateType.RUNNING)
        assert (value, done, final) == ("done", True, "Completed")

    def test_state_is_running_while_the_task_runs(self):
        started, release = threading.Event(), threading.Event()

        @task
        def blocked():
            started.set()
            release.wait(10)

        @flow
        def f():
            fut = blocked.submit()
            assert started.wait(10)
            running = fut.state.name
            release.set()
            fut.wait()
            return running, fut.state.name

        assert f() == ("Running", "Completed")

    def test_failed_future(self):
        @flow
        def f():
            fut = fail.submit("broken")
            fut.wait()  # never raises
            with pytest.raises(ValueError, match="broken"):
                fut.result()
            exc = fut.result(raise_on_failure=False)
            return fut.state.name, type(exc).__name__, str(exc)

        assert f() == ("Failed", "ValueError", "broken")

    def test_wait_with_timeout_returns_the_not_done(self):
        release = threading.Event()

        @task
        def blocked():
            release.wait(10)

        @flow
        def f():
            slow, quick = blocked.submit(), square.submit(3)
            quick.wait()
            result = wait([slow, quick], timeout=0.05)
            release.set()
            return (
                isinstance(result, DoneAndNotDoneFutures),
                result.done == {quick},
                result.not_done == {slow},
            )

        assert f() == (True, True, True)

    def test_wait_all(self):
        @flow
        def f():
            futures = [square.submit(i) for i in range(5)]
            done, not_done = wait(futures)
            return len(done), len(not_done), sorted(fut.result() for fut in done)

        assert f() == (5, 0, [0, 1, 4, 9, 16])

    def test_future_wait_with_timeout_does_not_raise(self):
        release = threading.Event()

        @task
        def blocked():
            release.wait(10)

        @flow
        def f():
            fut = blocked.submit()
            fut.wait(timeout=0.05)
            was_done = fut.done()
            release.set()
            return was_done

        assert f() is False

    def test_as_completed_yields_in_completion_order(self):
        release_first = threading.Event()

        @task
        def waits(i):
            release_first.wait(10)
            return i

        @flow
        def f():
            late = waits.submit("late")
            early = square.submit(2)
            order = []
            for fut in as_completed([late, early]):
                order.append(fut.result())
                release_first.set()
            return order

        assert f() == [4, "late"]

    def test_default_runner_runs_submissions_concurrently(self):
        meet = threading.Barrier(3, timeout=10)

        @task
        def together(i):
            meet.wait()
            return i

        @flow
        def f():
            return [fut.result() for fut in [together.submit(i) for i in range(3)]]

        assert f() == [0, 1, 2]

    def test_futures_as_arguments(self):
        @task
        def add(a, b):
            return a + b

        @flow
        def f():
            a = square.submit(3)
            b = square.submit(4)
            return add.submit(a, b).result(), add(a, 1)

        assert f() == (25, 10)

    def test_wait_for_orders_independent_tasks(self):
        order = []
        lock = threading.Lock()

        @task
        def step(name):
            with lock:
                order.append(name)

        @flow
        def f():
            first = step.submit("first")
            second = step.submit("second", wait_for=[first])
            step("third", wait_for=[second])

        for _ in range(5):
            order.clear()
            f()
            assert order == ["first", "second", "third"]

    def test_wait_for_a_failed_upstream(self):
        ran = []

        @task
        def after():
            ran.append(1)

        @flow
        def f():
            bad = fail.submit()
            blocked = after.submit(wait_for=[bad])
            allowed = after.submit(wait_for=[allow_failure(bad)])
            blocked.wait()
            allowed.wait()
            return blocked.state, allowed.state.name

        blocked, allowed = f()
        assert blocked.name == "NotReady" and blocked.type is StateType.PENDING
        assert isinstance(blocked.data, UpstreamTaskError)
        assert "did not reach a 'COMPLETED' state" in blocked.message
        assert allowed == "Completed"
        assert ran == [1]

    def test_done_callback(self):
        seen = []

        @flow
        def f():
            fut = square.submit(5)
            fut.add_done_callback(lambda done: seen.append(done.result()))
            fut.wait()

        f()
        assert seen == [25]

    def test_submitting_an_async_task(self):
        @task
        async def adouble(x):
            return 2 * x

        @flow
        def f():
            return [fut.result() for fut in [adouble.submit(i) for i in range(3)]]

        assert f() == [0, 2, 4]

    def test_future_names_the_task_run(self):
        @flow
        def f():
            futures = [square.submit(i) for i in range(2)]
            return [fut.task_run.name for fut in futures], futures[0].task_run_id

        names, run_id = f()
        assert names == ["square-0", "square-1"]
        assert isinstance(run_id, str) and len(run_id) == 36


class TestMap:
    def test_map_returns_a_future_list(self):
        @flow
        def f():
            futures = square.map([1, 2, 3])
            assert isinstance(futures, PrefectFutureList)
            assert all(isinstance(fut, TaskRunFuture) for fut in futures)
            futures.wait()
            return futures.result()

        assert f() == [1, 4, 9]

    def test_map_over_several_iterables_with_unmapped(self):
        @task
        def combine(a, b, c, sep):
            return f"{a}{sep}{b}{sep}{c}"

        @flow
        def f():
            return combine.map([1, 2], ("x", "y"), unmapped([0]), sep="-").result()

        assert f() == ["1-x-[0]", "2-y-[0]"]

    def test_strings_and_dicts_are_not_iterated(self):
        @task
        def label(i, prefix, meta):
            return f"{prefix}{i}{meta['k']}"

        @flow
        def f():
            return label.map(range(2), "item", {"k": "!"}).result()

        assert f() == ["item0!", "item1!"]

    def test_map_over_futures(self):
        @flow
        def f():
            squares = square.map(range(4))
            return square.map(squares).result()

        assert f() == [0, 1, 16, 81]

    def test_map_runs_are_named_in_order(self):
        names = []

        @task
        def record(i):
            from kernelflow.context import get_run_context

            return get_run_context().task_run.name

        @flow
        def f():
            return record.map(range(3)).result()

        names = f()
        assert names == ["record-0", "record-1", "record-2"]

    def test_map_with_a_failure(self):
        @task
        def maybe(i):
            if i == 1:
                raise ValueError("one")
            return i

        @flow
        def f():
            futures = maybe.map(range(3))
            futures.wait()
            return [fut.state.name for fut in futures]

        assert f() == ["Completed", "Failed", "Completed"]

    def test_unequal_lengths_are_refused(self):
        @task
        def pair(a, b):
            return a, b

        @flow
        def f():
            pair.map([1, 2], [1, 2, 3])

        with pytest.raises(ConfigurationError, match=r"different lengths .*unmapped"):
            f()

    def test_nothing_to_map_is_refused(self):
        @flow
        def f():
            square.map(unmapped([1, 2]))

        with pytest.raises(ConfigurationError, match="needs at least one iterable"):
            f()

    def test_map_with_wait_for(self):
        order = []

        @task
        def first():
            order.append("first")

        @task
        def each(i):
            order.append(i)

        @flow
        def f():
            gate = first.submit()
            each.map(range(3), wait_for=[gate]).wait()

        f()
        assert order[0] == "first" and sorted(order[1:]) == [0, 1, 2]

"""Async flows and tasks.

Part of the engine against Prefect 3.9's observed semantics
(shared/notes/prefect-semantics.md), one class per feature. Timings are only ever
lower bounds (a delay really happened); speed is measured in ``bench/``, never
asserted here.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from engine_helpers import Flaky, logged

from kernelflow import flow, task
from kernelflow.context import get_run_context


# --- async -------------------------------------------------------------------------
class TestAsync:
    def test_not_ready_is_logged_as_a_sync_task_logs_it(self, capsys):
        # One driver body for both: an async task blocked by a failed upstream ends
        # NotReady and prints its final line, as a sync task does.
        @task
        def bad():
            raise ValueError("up")

        @task
        async def adown(x):
            return x

        @task
        def sdown(x):
            return x

        @flow
        async def f():
            future = bad.submit()
            future.wait()
            return [await adown(future, return_state=True), sdown(future, return_state=True)]

        capsys.readouterr()
        states = asyncio.run(f(return_state=True)).data
        assert [s.name for s in states] == ["NotReady", "NotReady"]
        err = capsys.readouterr().err
        for name in ("adown-0", "sdown-0"):
            (line,) = logged(err, f"Task run '{name}'")
            assert line.startswith("Finished in state NotReady(")

    def test_async_flow_with_async_and_sync_tasks(self):
        @task
        async def aadd(x):
            await asyncio.sleep(0.01)
            return x + 1

        @task
        def sadd(x):
            return x + 1

        @flow
        async def f(n):
            a = await aadd(n)
            b = sadd(a)
            return sadd.submit(b).result()

        assert asyncio.run(f(1)) == 4

    def test_async_tasks_run_concurrently_with_gather(self):
        both_started = threading.Barrier(2, timeout=5)

        @task
        async def meet():
            await asyncio.get_running_loop().run_in_executor(None, both_started.wait)
            return 1

        @flow
        async def f():
            return sum(await asyncio.gather(meet(), meet()))

        assert asyncio.run(f()) == 2

    def test_async_task_from_a_sync_flow(self):
        @task
        async def aadd(x):
            await asyncio.sleep(0)
            return x + 1

        @flow
        def f():
            return aadd(1), aadd.submit(2).result()

        assert f() == (2, 3)

    def test_sync_task_in_an_async_flow_calls_an_async_task(self):
        @task
        async def aadd(x):
            await asyncio.sleep(0)
            return x + 1

        @task
        def sync_middle(x):
            return aadd(x) * 10  # a sync task gets the value, not an awaitable

        @flow
        async def f():
            return sync_middle(1)

        assert asyncio.run(f()) == 20

    def test_async_task_outside_a_flow(self):
        @task
        async def aadd(x):
            return x + 1

        async def main():
            return await aadd(1)

        assert aadd(1) == 2  # no loop running: run to completion
        assert asyncio.run(main()) == 2  # under a loop: awaitable, as in a notebook

    def test_async_flow_return_state_and_failure(self):
        @flow
        async def bad():
            raise ValueError("async boom")

        state = asyncio.run(bad(return_state=True))
        assert state.is_failed() and "async boom" in state.message
        with pytest.raises(ValueError, match="async boom"):
            asyncio.run(bad())

    def test_async_task_retries(self):
        flaky = Flaky(OSError(), value=9)

        @task(retries=1, retry_delay_seconds=0.01)
        async def call():
            return flaky()

        @flow
        async def f():
            return await call()

        assert asyncio.run(f()) == 9
        assert len(flaky.calls) == 2

    def test_sync_flow_inside_a_running_loop(self):
        # As in a notebook cell: a sync flow called while an event loop runs.
        @task
        async def aadd(x):
            return x + 1

        @flow
        def f():
            return aadd(1)

        async def main():
            return f()

        assert asyncio.run(main()) == 2

    def test_async_hooks_context(self):
        seen = []

        @task(on_completion=[lambda t, tr, s: seen.append(tr.name)])
        async def t():
            return get_run_context().task_run.name

        @flow
        async def f():
            return await t()

        assert asyncio.run(f()) == "t-0"
        assert seen == ["t-0"]

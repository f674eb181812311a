"""Inputs: upstream failures and allow_failure; .fn and with_options.

Part of the engine against Prefect 3.9's observed semantics
(shared/notes/prefect-semantics.md), one class per feature. Timings are only ever
lower bounds (a delay really happened); speed is measured in ``bench/``, never
asserted here.
"""

from __future__ import annotations

import pytest
from engine_helpers import Flaky

from kernelflow import allow_failure, flow, task
from kernelflow.context import get_run_context
from kernelflow.errors import MissingContextError, UpstreamTaskError
from kernelflow.states import StateType


# --- allow_failure and upstream failures ---------------------------------------------
class TestUpstream:
    def test_failed_upstream_blocks_downstream(self):
        calls = []

        @task
        def bad():
            raise ValueError("up")

        @task
        def down(x):
            calls.append(x)

        @flow
        def f():
            return down(bad.submit(), return_state=True)

        state = f(return_state=True).data
        assert calls == []
        assert state.name == "NotReady" and state.type is StateType.PENDING
        assert isinstance(state.data, UpstreamTaskError)

    def test_allow_failure_passes_none(self):
        got = []

        @task
        def bad():
            raise ValueError("up")

        @task
        def down(x, y):
            got.append((x, y))
            return "ran"

        @flow
        def f():
            return down(allow_failure(bad.submit()), [allow_failure(bad.submit()), 2])

        assert f() == "ran"
        assert got == [(None, [None, 2])]

    def test_allow_failure_on_success_passes_the_value(self):
        @task
        def good():
            return 3

        @task
        def down(x):
            return x + 1

        @flow
        def f():
            return down(allow_failure(good.submit()))

        assert f() == 4

    def test_futures_inside_containers_are_resolved(self):
        @task
        def one(i):
            return i

        @task
        def total(values, mapping):
            return sum(values) + sum(mapping.values())

        @flow
        def f():
            futures = [one.submit(i) for i in range(4)]
            return total(futures, {"a": one.submit(10)})

        assert f() == 16


# --- .fn and with_options --------------------------------------------------------------
class TestFnAndOptions:
    def test_fn_bypasses_orchestration(self):
        @task(retries=3)
        def t(x):
            with pytest.raises(MissingContextError):
                get_run_context()
            return x * 2

        @flow
        def f(x):
            return x + 1

        assert t.fn(2) == 4
        assert f.fn(1) == 2

    def test_with_options_copies(self):
        flaky = Flaky(OSError())

        @task(name="base")
        def call():
            return flaky()

        retried = call.with_options(retries=1, name="retried")
        assert call.retries == 0 and call.name == "base"
        assert retried.retries == 1 and retried.name == "retried"
        assert retried.fn is call.fn
        assert retried() == "ok"

    def test_flow_with_options(self):
        @flow(name="a")
        def f():
            return get_run_context().flow.name

        g = f.with_options(name="b", retries=2)
        assert (f(), g()) == ("a", "b")
        assert g.retries == 2 and f.retries == 0

    def test_wrapped_metadata(self):
        @task
        def documented(x: int) -> int:
            """Doubles."""
            return 2 * x

        assert documented.__name__ == "documented"
        assert documented.__doc__ == "Doubles."
        assert documented.__wrapped__.__name__ == "documented"

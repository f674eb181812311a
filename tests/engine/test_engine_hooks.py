"""State hooks of flows and tasks.

Part of the engine against Prefect 3.9's observed semantics
(shared/notes/prefect-semantics.md), one class per feature. Timings are only ever
lower bounds (a delay really happened); speed is measured in ``bench/``, never
asserted here.
"""

from __future__ import annotations

import time

import pytest
from engine_helpers import Flaky

from kernelflow import flow, task


# --- Hooks ---------------------------------------------------------------------------
class TestHooks:
    def test_task_hook_signatures(self):
        calls = []

        def record(name):
            return lambda task, task_run, state: calls.append(
                (name, task.name, task_run.name, state.name)
            )

        @task(
            on_running=[record("running")],
            on_completion=[record("completion")],
            on_failure=[record("failure")],
        )
        def ok():
            return 1

        @task(
            on_running=[record("running")],
            on_completion=[record("completion")],
            on_failure=[record("failure")],
        )
        def bad():
            raise ValueError("x")

        @flow
        def f():
            ok()
            bad(return_state=True)

        f()
        assert calls == [
            ("running", "ok", "ok-0", "Running"),
            ("completion", "ok", "ok-0", "Completed"),
            ("running", "bad", "bad-0", "Running"),
            ("failure", "bad", "bad-0", "Failed"),
        ]

    def test_flow_hook_signatures(self):
        calls = []

        def record(name):
            return lambda flow, flow_run, state: calls.append(
                (name, flow.name, flow_run.flow_name, state.name)
            )

        hooks = dict(
            on_running=[record("running")],
            on_completion=[record("completion")],
            on_failure=[record("failure")],
        )

        @flow(name="good", **hooks)
        def good():
            return 1

        @flow(name="bad", **hooks)
        def bad():
            raise ValueError("x")

        good()
        bad(return_state=True)
        assert calls == [
            ("running", "good", "good", "Running"),
            ("completion", "good", "good", "Completed"),
            ("running", "bad", "bad", "Running"),
            ("failure", "bad", "bad", "Failed"),
        ]

    def test_failure_hook_runs_once_after_the_last_retry(self):
        failures = []
        flaky = Flaky(OSError(), OSError(), OSError())

        @task(retries=2, on_failure=[lambda t, tr, s: failures.append(tr.run_count)])
        def call():
            return flaky()

        call(return_state=True)
        assert failures == [3]

    def test_timed_out_task_calls_on_failure(self):
        failures = []

        @task(timeout_seconds=0.2, on_failure=[lambda t, tr, s: failures.append(s.name)])
        def slow():
            time.sleep(1)

        slow(return_state=True)
        assert failures == ["TimedOut"]

    def test_on_crashed_hook_on_system_exit(self):
        crashed = []

        @flow(on_crashed=[lambda fl, fr, s: crashed.append(s.name)])
        def f():
            raise SystemExit(3)

        with pytest.raises(SystemExit):
            f()
        assert crashed == ["Crashed"]

    def test_keyboard_interrupt_cancels_the_flow_and_its_task(self):
        seen = []

        @task
        def t():
            raise KeyboardInterrupt

        @flow(
            on_cancellation=[lambda fl, fr, s: seen.append(("flow", s.name))],
            on_crashed=[lambda fl, fr, s: seen.append(("crashed", s.name))],
        )
        def f():
            t()

        with pytest.raises(KeyboardInterrupt):
            f()
        assert seen == [("flow", "Cancelled")]

    def test_a_failing_hook_does_not_change_the_state(self, capsys):
        def broken(task, task_run, state):
            raise RuntimeError("hook bug")

        @task(on_completion=[broken])
        def t():
            return 5

        assert t() == 5
        err = capsys.readouterr().err
        # Prefect's lines, the hook's traceback under the error.
        assert "Running hook 'broken' in response to entering state 'Completed'" in err
        assert "An error was encountered while running hook 'broken'" in err and "hook bug" in err

    def test_single_hook_not_in_a_list(self):
        calls = []

        @task(on_completion=lambda t, tr, s: calls.append(s.name))
        def t():
            return 1

        t()
        assert calls == ["Completed"]

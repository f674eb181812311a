"""State hooks in Prefect's decorator form (prefect/tasks.py and flows.py: ``Task.on_failure``...).

``@my_task.on_failure`` registers a hook and returns the function unchanged;
the options (``on_failure=[...]``) and ``.with_options(...)`` keep working.
"""

from __future__ import annotations

import pytest

from kernelflow import flow, task
from kernelflow.errors import ConfigurationError


class TestTaskHooks:
    def test_decorated_hooks_run_on_their_states(self):
        seen = []

        @task
        def maybe(fail: bool) -> int:
            if fail:
                raise ValueError("no")
            return 1

        @maybe.on_running
        def running(tsk, run, state):
            seen.append(("running", run.name, state.name))

        @maybe.on_completion
        def completed(tsk, run, state):
            seen.append(("completed", run.name, state.name))

        @maybe.on_failure
        def failed(tsk, run, state):
            seen.append(("failed", run.name, state.message))

        @flow
        def pipeline() -> None:
            maybe(False)
            maybe(True, return_state=True)

        pipeline()
        assert seen == [
            ("running", "maybe-0", "Running"),
            ("completed", "maybe-0", "Completed"),
            ("running", "maybe-1", "Running"),
            ("failed", "maybe-1", "Task run encountered an exception ValueError: no"),
        ]
        # The decorator returns the function itself, as Prefect's does.
        assert callable(failed) and failed.__name__ == "failed"
        assert maybe.on_failure_hooks == [failed]
        assert maybe.on_completion_hooks == [completed]
        assert maybe.on_running_hooks == [running]

    def test_options_and_decorators_add_up_and_with_options_keeps_them(self):
        seen = []

        @task(on_completion=[lambda t, r, s: seen.append("option")])
        def t() -> int:
            return 1

        @t.on_completion
        def decorated(tsk, run, state):
            seen.append("decorated")

        t()
        assert seen == ["option", "decorated"]
        seen.clear()
        t.with_options(name="copy")()
        assert seen == ["option", "decorated"]
        seen.clear()
        t.with_options(on_completion=[lambda tk, r, s: seen.append("replaced")])()
        assert seen == ["replaced"]

    def test_commit_and_rollback_hooks_register(self):
        @task
        def t() -> int:
            return 1

        @t.on_commit
        def commit(txn):
            pass

        @t.on_rollback
        def rollback(txn):
            pass

        assert t.on_commit_hooks == [commit] and t.on_rollback_hooks == [rollback]
        assert t() == 1

    def test_a_hook_that_is_not_callable_is_refused(self):
        @task
        def t() -> int:
            return 1

        with pytest.raises(ConfigurationError, match="on_failure on task 't' must be callables"):
            t.on_failure(42)


class TestFlowHooks:
    def test_decorated_hooks_run_on_their_states(self):
        seen = []

        @flow
        def pipeline(fail: bool) -> int:
            if fail:
                raise RuntimeError("down")
            return 1

        @pipeline.on_running
        def running(fl, run, state):
            seen.append(("running", state.name))

        @pipeline.on_completion
        def completed(fl, run, state):
            seen.append(("completed", state.name))

        @pipeline.on_failure
        def failed(fl, run, state):
            seen.append(("failed", state.message))

        assert pipeline(False) == 1
        pipeline(True, return_state=True)
        assert seen == [
            ("running", "Running"),
            ("completed", "Completed"),
            ("running", "Running"),
            ("failed", "Flow run encountered an exception: RuntimeError: down"),
        ]
        assert pipeline.on_failure_hooks == [failed]

    def test_crashed_and_cancellation_register_and_crashed_runs(self):
        seen = []

        @flow
        def interrupted() -> None:
            raise KeyboardInterrupt

        @interrupted.on_crashed
        def crashed(fl, run, state):
            seen.append(state.name)

        @interrupted.on_cancellation
        def cancelled(fl, run, state):
            seen.append("cancelled")

        with pytest.raises(KeyboardInterrupt):
            interrupted()
        # The stop button cancels, as in Prefect's UI: the cancellation hooks run.
        assert seen == ["cancelled"]
        assert interrupted.on_crashed_hooks == [crashed]

    def test_with_options_keeps_decorated_hooks(self):
        seen = []

        @flow
        def pipeline() -> int:
            return 1

        @pipeline.on_completion
        def done(fl, run, state):
            seen.append(fl.name)

        pipeline.with_options(name="renamed")()
        assert seen == ["renamed"]

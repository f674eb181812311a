"""Task retries: delays, backoff, jitter, conditions, the lines Prefect prints.

Part of the engine against Prefect 3.9's observed semantics
(shared/notes/prefect-semantics.md), one class per feature. Timings are only ever
lower bounds (a delay really happened); speed is measured in ``bench/``, never
asserted here.
"""

from __future__ import annotations

from engine_helpers import Flaky, logged, retry_delays

from kernelflow import flow, task
from kernelflow.states import Failed
from kernelflow.tasks import exponential_backoff


# --- Retries -------------------------------------------------------------------
class TestTaskRetries:
    def test_retries_then_success(self):
        flaky = Flaky(ConnectionError("a"), ConnectionError("b"), value=7)
        runs = []

        @task(retries=2, on_completion=[lambda t, tr, s: runs.append(tr)])
        def call():
            return flaky()

        @flow
        def f():
            return call()

        assert f() == 7
        assert len(flaky.calls) == 3
        assert runs[0].run_count == 3

    def test_retries_exhausted_fails_with_last_exception(self):
        flaky = Flaky(ValueError("1"), ValueError("2"), ValueError("3"))

        @task(retries=2)
        def call():
            return flaky()

        @flow
        def f():
            return call(return_state=True)

        state = f(return_state=True).data
        assert state.is_failed()
        assert state.message == "Task run encountered an exception ValueError: 3"
        assert len(flaky.calls) == 3

    def test_no_retries_by_default(self):
        flaky = Flaky(ValueError("x"))

        @task
        def call():
            return flaky()

        assert call(return_state=True).is_failed()
        assert len(flaky.calls) == 1

    def test_delay_as_a_number(self, capsys):
        flaky = Flaky(OSError(), OSError())

        @task(retries=2, retry_delay_seconds=0.05)
        def call():
            return flaky()

        assert call() == "ok"
        assert all(gap >= 0.05 for gap in flaky.gaps()), flaky.gaps()
        assert logged(capsys.readouterr().err)[:2] == [
            f"Task run failed with exception: OSError() - Retry {n}/2 will start 0.05 second(s) "
            "from now"
            for n in (1, 2)
        ]

    def test_delay_as_a_list_last_repeats(self, capsys):
        flaky = Flaky(OSError(), OSError(), OSError())

        @task(retries=3, retry_delay_seconds=[0.01, 0.06])
        def call():
            return flaky()

        assert call() == "ok"
        gaps = flaky.gaps()
        assert gaps[0] >= 0.01 and gaps[1] >= 0.06 and gaps[2] >= 0.06, gaps
        assert retry_delays(capsys.readouterr().err) == ["0.01", "0.06", "0.06"]

    def test_exponential_backoff(self, capsys):
        flaky = Flaky(OSError(), OSError(), OSError())

        @task(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=0.01))
        def call():
            return flaky()

        assert call() == "ok"
        assert retry_delays(capsys.readouterr().err) == ["0.01", "0.02", "0.04"]
        gaps = flaky.gaps()
        assert gaps[0] >= 0.01 and gaps[1] >= 0.02 and gaps[2] >= 0.04, gaps

    def test_jitter_varies_the_delay_within_its_factor(self, capsys):
        flaky = Flaky(*[OSError()] * 6)

        @task(retries=6, retry_delay_seconds=0.02, retry_jitter_factor=0.5)
        def call():
            return flaky()

        assert call() == "ok"
        delays = [float(d) for d in retry_delays(capsys.readouterr().err)]
        assert len(delays) == 6
        assert all(0.01 <= d <= 0.03 for d in delays), delays
        assert len(set(delays)) > 1, f"jitter left every delay equal: {delays}"

    def test_retry_condition_fn_vetoes(self):
        seen = []

        def only_connection_errors(task, task_run, state):
            seen.append((task.name, task_run.name, state.name))
            return isinstance(state.data, ConnectionError)

        flaky_retried = Flaky(ConnectionError("net"))
        flaky_vetoed = Flaky(ValueError("bad input"))

        @task(retries=3, retry_condition_fn=only_connection_errors)
        def retried():
            return flaky_retried()

        @task(retries=3, retry_condition_fn=only_connection_errors)
        def vetoed():
            return flaky_vetoed()

        assert retried() == "ok"
        state = vetoed(return_state=True)
        assert state.is_failed() and "bad input" in state.message
        assert len(flaky_retried.calls) == 2
        assert len(flaky_vetoed.calls) == 1
        assert seen == [("retried", "retried-0", "Failed"), ("vetoed", "vetoed-0", "Failed")]

    def test_retry_condition_fn_that_raises_means_no_retry(self, capsys):
        flaky = Flaky(OSError())

        def broken(task, task_run, state):
            raise RuntimeError("bug in condition")

        @task(retries=3, retry_condition_fn=broken)
        def call():
            return flaky()

        assert call(return_state=True).is_failed()
        assert len(flaky.calls) == 1
        assert "retry_condition_fn failed; not retrying" in capsys.readouterr().err

    def test_returned_failed_state_is_retried_as_in_prefect(self):
        calls = []

        @task(retries=2)
        def t():
            calls.append(1)
            return Failed(message="by choice")

        assert t(return_state=True).message == "by choice"
        assert calls == [1, 1, 1]

    def test_flow_retries_rerun_the_body(self):
        flaky = Flaky(RuntimeError("first"))
        runs = []

        @flow(
            retries=1, retry_delay_seconds=0.01, on_completion=[lambda fl, fr, s: runs.append(fr)]
        )
        def f():
            return flaky()

        assert f() == "ok"
        assert len(flaky.calls) == 2
        assert runs[0].run_count == 2

    def test_flow_retry_reruns_its_tasks(self):
        task_calls = []
        flaky = Flaky(RuntimeError("flow body"))

        @task
        def t():
            task_calls.append(1)
            return 1

        @flow(retries=2)
        def f():
            t()
            return flaky()

        assert f() == "ok"
        assert len(task_calls) == 2

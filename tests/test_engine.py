"""The engine against Prefect 3.9's observed semantics (shared/notes/prefect-semantics.md).

One class per feature. Timings are only ever lower bounds (a delay really
happened); speed is measured in ``bench/``, never asserted here.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path

import pytest

import kernelflow
from kernelflow import allow_failure, flow, get_run_logger, task
from kernelflow.context import get_run_context
from kernelflow.errors import MissingContextError, UpstreamTaskError
from kernelflow.states import Completed, Failed, State, StateType
from kernelflow.tasks import exponential_backoff


def logged(err: str, who: str | None = None) -> list[str]:
    """Messages of console log lines in ``err`` (optionally of one run label)."""
    out = []
    for line in err.splitlines():
        m = re.match(r"^\d\d:\d\d:\d\d\.\d{3} \| [A-Z]+ +\| (.+?) - (.*)$", line)
        if m and (who is None or m[1] == who):
            out.append(m[2])
    return out


def retry_delays(err: str) -> list[str]:
    """The delays of Prefect's "Retry n/m will start <delay> second(s) from now" lines."""
    return re.findall(r" - Retry \d+/\d+ will start (\S+) second\(s\) from now", err)


class Flaky:
    """A callable that raises the given exceptions in turn, then returns ``value``."""

    def __init__(self, *errors: BaseException, value: object = "ok") -> None:
        self.errors = list(errors)
        self.value = value
        self.calls: list[float] = []

    def __call__(self) -> object:
        self.calls.append(time.monotonic())
        if self.errors:
            raise self.errors.pop(0)
        return self.value

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.calls, self.calls[1:], strict=False)]


@task
def square_task(x):
    return x * x


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


# --- Subflows ------------------------------------------------------------------------
class TestSubflows:
    def test_subflow_links_to_parent(self):
        seen = {}

        @flow
        def child():
            seen["child"] = get_run_context().flow_run
            return "c"

        @flow
        def parent():
            seen["parent"] = get_run_context().flow_run
            return child() + "p"

        assert parent() == "cp"
        assert seen["child"].parent_flow_run_id == seen["parent"].id
        assert seen["parent"].parent_flow_run_id is None

    def test_failing_subflow_raises_in_parent(self):
        @flow
        def child():
            raise ValueError("child broke")

        @flow
        def parent():
            try:
                child()
            except ValueError as exc:
                return f"caught {exc}"

        assert parent() == "caught child broke"

    def test_subflow_return_state(self):
        @flow
        def child():
            raise ValueError("child broke")

        @flow
        def parent():
            return child(return_state=True)

        state = parent(return_state=True)
        assert state.is_failed() and state.message == "1/1 states failed."

    def test_subflow_called_from_a_task_links_to_the_task(self):
        seen = {}

        @flow
        def child():
            seen["child"] = get_run_context().flow_run
            return 1

        @task
        def spawner():
            seen["task"] = get_run_context().task_run
            return child()

        @flow
        def parent():
            return spawner()

        assert parent() == 1
        assert seen["child"].parent_task_run_id == seen["task"].id

    def test_subflow_called_from_a_task_logs_as_the_subflow(self, capsys):
        @flow(flow_run_name="inner-run", log_prints=True)
        def child():
            print("printed in child")
            get_run_logger().info("logged in child")

        @task(log_prints=True)
        def spawner():
            child()
            print("printed in task")

        spawner()
        err = capsys.readouterr().err
        assert logged(err, "Flow run 'inner-run'") == [
            "Beginning flow run 'inner-run' for flow 'child'",
            "printed in child",
            "logged in child",
            "Finished in state Completed()",
        ]
        assert "printed in task" in logged(err)

    def test_subflow_task_names_count_per_flow_run(self):
        names = []

        @task
        def t():
            names.append(get_run_context().task_run.name)

        @flow
        def child():
            t()

        @flow
        def parent():
            t()
            child()
            t()

        parent()
        assert names == ["t-0", "t-0", "t-1"]


# --- Run names, context, loggers -------------------------------------------------------
class TestRunContext:
    def test_flow_run_name_random_and_templated(self):
        names = []

        @flow
        def plain():
            names.append(get_run_context().flow_run.name)

        @flow(flow_run_name="report-{day}")
        def templated(day: str):
            names.append(get_run_context().flow_run.name)

        plain()
        templated("monday")
        assert re.fullmatch(r"[a-z]+-[a-z]+", names[0])
        assert names[1] == "report-monday"

    def test_task_run_name_template_and_callable(self):
        names = []

        @task(task_run_name="load-{table}")
        def load(table):
            names.append(get_run_context().task_run.name)

        @task(task_run_name=lambda: "fixed")
        def other():
            names.append(get_run_context().task_run.name)

        @flow
        def f():
            load("users")
            other()

        f()
        assert names == ["load-users", "fixed"]

    def test_get_run_logger_outside_a_run(self):
        with pytest.raises(MissingContextError, match="inside a @flow or @task"):
            get_run_logger()

    def test_get_run_logger_in_flow_and_task(self, capsys):
        @task
        def t():
            get_run_logger().warning("from task %d", 1)

        @flow(flow_run_name="logging-run")
        def f():
            get_run_logger().info("from flow")
            t()

        f()
        err = capsys.readouterr().err
        assert re.search(r"\| WARNING \| Task run 't-0' - from task 1$", err, re.M)
        assert re.search(r"\| INFO    \| Flow run 'logging-run' - from flow$", err, re.M)

    def test_flow_name_defaults_to_function_name_with_dashes(self):
        @flow
        def my_nice_flow():
            return get_run_context().flow.name

        assert my_nice_flow() == "my-nice-flow"

    def test_tasks_of_a_thread_pool_see_their_flow(self):
        seen = set()

        @task
        def t(i):
            seen.add(get_run_context().task_run.flow_run_id)

        @flow
        def f():
            futures = t.map(range(8))
            futures.wait()
            return get_run_context().flow_run.id

        run_id = f()
        assert seen == {run_id}


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


# --- log_prints ----------------------------------------------------------------------
class TestLogPrints:
    def test_task_prints_go_to_its_logger(self, capsys):
        @task(log_prints=True)
        def t():
            print("hello", "world", sep="-")

        @flow
        def f():
            t()
            print("plain flow print")

        f()
        out, err = capsys.readouterr()
        assert out == "plain flow print\n"
        assert "hello-world" in logged(err, "Task run 't-0'")

    def test_flow_log_prints_is_inherited_by_tasks(self, capsys):
        @task
        def t():
            print("from task")

        @task(log_prints=False)
        def quiet():
            print("to stdout")

        @flow(log_prints=True)
        def f():
            t()
            quiet()

        f()
        out, err = capsys.readouterr()
        assert out == "to stdout\n"
        assert "from task" in logged(err, "Task run 't-0'")

    def test_print_to_a_file_is_left_alone(self, capsys):
        import sys

        @task(log_prints=True)
        def t():
            print("to stderr", file=sys.stderr)

        t()
        err = capsys.readouterr().err
        assert "to stderr\n" in err
        assert "to stderr" not in logged(err)

    def test_print_outside_runs_is_untouched(self, capsys):
        @task(log_prints=True)
        def t():
            print("inside")

        t()
        print("outside")
        out, _err = capsys.readouterr()
        assert out == "outside\n"


# --- async -------------------------------------------------------------------------
class TestAsync:
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


# --- What the store records ------------------------------------------------------------
class TestStoreRecords:
    def test_state_history_of_a_retried_task(self):
        flaky = Flaky(OSError("first"))

        @task(retries=1)
        def call():
            return flaky()

        @flow
        def f():
            return call()

        f()
        history = kernelflow.sql(
            "SELECT s.state_name FROM states s JOIN task_runs t ON s.run_id = t.id "
            "WHERE t.task_name = 'call' ORDER BY s.timestamp, s.seq"
        )["state_name"].tolist()
        assert history == ["Pending", "Running", "AwaitingRetry", "Retrying", "Completed"]
        row = kernelflow.sql("SELECT state_name, run_count FROM task_runs").to_dict("records")
        assert row == [{"state_name": "Completed", "run_count": 2}]

    def test_flow_run_row(self):
        @flow(flow_run_name="row-check", tags=["nightly"], version="7")
        def f(x: int, y: str = "b"):
            return x

        f(1)
        row = kernelflow.sql(
            "SELECT name, flow_name, flow_version, tags, state_type, state_name, run_count, "
            "parameters->>'x' AS x, parameters->>'y' AS y, pid FROM flow_runs"
        ).to_dict("records")[0]
        import os

        assert row["name"] == "row-check" and row["flow_name"] == "f"
        assert row["flow_version"] == "7" and list(row["tags"]) == ["nightly"]
        assert (row["state_type"], row["state_name"], row["run_count"]) == (
            "COMPLETED",
            "Completed",
            1,
        )
        assert (row["x"], row["y"]) == ("1", "'b'")
        assert row["pid"] == os.getpid()

    def test_logs_of_log_prints_and_get_run_logger(self):
        @task(log_prints=True)
        def t():
            print("printed in task")
            get_run_logger().warning("warned in task")

        @flow
        def f():
            get_run_logger().info("info in flow")
            t()

        f()
        logs = kernelflow.sql(
            "SELECT l.run_kind, l.level, l.level_name, l.message FROM logs l "
            "ORDER BY l.timestamp, l.seq"
        ).to_dict("records")
        assert {
            "run_kind": "flow",
            "level": 20,
            "level_name": "INFO",
            "message": "info in flow",
        } in logs
        assert {
            "run_kind": "task",
            "level": 20,
            "level_name": "INFO",
            "message": "printed in task",
        } in logs
        assert {
            "run_kind": "task",
            "level": 30,
            "level_name": "WARNING",
            "message": "warned in task",
        } in logs
        task_logs = kernelflow.sql(
            "SELECT l.message FROM logs l JOIN task_runs t ON l.run_id = t.id "
            "WHERE t.name = 't-0' ORDER BY l.timestamp, l.seq"
        )["message"].tolist()
        assert task_logs == ["printed in task", "warned in task"]

    def test_persisted_result_is_recorded_and_readable(self, store):
        from kernelflow.results import read_result

        @task(persist_result=True)
        def make():
            return {"rows": [1, 2, 3]}

        @task
        def transient():
            return "not kept"

        @flow
        def f():
            return make(), transient()

        f()
        rows = kernelflow.sql(
            "SELECT task_name, coalesce(result, '-') AS result FROM task_runs ORDER BY task_name"
        ).to_dict("records")
        assert rows[1] == {"task_name": "transient", "result": "-"}
        path = rows[0]["result"]
        assert rows[0]["task_name"] == "make" and (store.home / path).is_file()
        checksum = Path(path).stem
        assert read_result(path, checksum) == {"rows": [1, 2, 3]}

    def test_task_run_upstream_inputs_recorded(self):
        @task
        def up():
            return 1

        @task
        def down(x, y):
            return x + y

        @flow
        def f():
            u = up.submit()
            return down(u, 2)

        f()
        rows = kernelflow.sql(
            "SELECT t.name, t.inputs->>'$.x.upstream' AS x_up, u.name AS upstream_name "
            "FROM task_runs t LEFT JOIN task_runs u ON u.id = t.inputs->>'$.x.upstream' "
            "WHERE t.task_name = 'down'"
        ).to_dict("records")
        assert rows[0]["upstream_name"] == "up-0"


# --- Caching -------------------------------------------------------------------------
def _versioned(body: str, policy):
    """A task ``compute`` whose source is ``body``, always with the same identity."""
    namespace: dict = {}
    exec(f"def compute(x):\n    CALLS.append(x)\n    {body}\n", namespace)
    fn = namespace["compute"]
    fn.__module__, fn.__qualname__ = __name__, "compute"
    namespace["CALLS"] = CALLS
    return task(cache_policy=policy)(fn)


CALLS: list = []


class TestCaching:
    @pytest.fixture(autouse=True)
    def _clear_calls(self):
        CALLS.clear()

    def test_off_by_default(self):
        @task
        def t(x):
            CALLS.append(x)
            return x

        @flow
        def f():
            return t(1), t(1)

        assert f() == (1, 1)
        assert CALLS == [1, 1]

    def test_inputs_within_and_across_flow_runs(self):
        from kernelflow.cache_policies import INPUTS

        @task(cache_policy=INPUTS)
        def t(x, y=0):
            CALLS.append(x)
            return x * 10 + y

        @flow
        def f():
            return [t(1, return_state=True), t(1, return_state=True), t(2, return_state=True)]

        first = f()
        assert [s.name for s in first] == ["Completed", "Cached", "Completed"]
        assert [s.result() for s in first] == [10, 10, 20]
        second = f()
        assert [s.name for s in second] == ["Cached", "Cached", "Cached"]
        assert all(s.type is StateType.COMPLETED for s in second)
        assert CALLS == [1, 2]
        assert t(1, y=1) == 11  # another value of another argument: a miss
        assert CALLS == [1, 2, 1]

    def test_task_source_is_part_of_the_key(self):
        from kernelflow.cache_policies import INPUTS, TASK_SOURCE

        assert _versioned("return x + 1", INPUTS)(1) == 2
        # Same identity and inputs, new source: INPUTS alone reuses the stale result ...
        assert _versioned("return x + 2", INPUTS)(1) == 2
        # ... INPUTS + TASK_SOURCE recomputes when the code changes.
        assert _versioned("return x + 1", INPUTS + TASK_SOURCE)(1) == 2
        assert _versioned("return x + 2", INPUTS + TASK_SOURCE)(1) == 3
        assert _versioned("return x + 2", INPUTS + TASK_SOURCE)(1) == 3
        assert CALLS == [1, 1, 1]

    def test_excluding_an_argument(self):
        import threading as th

        from kernelflow.cache_policies import INPUTS

        @task(cache_policy=INPUTS - "conn")
        def query(sql, conn):
            CALLS.append(sql)
            return sql.upper()

        # A lock cannot be hashed; excluded from the key, it does not need to be.
        assert query("a", th.Lock()) == "A"
        assert query("a", th.Lock()) == "A"
        assert query("b", th.Lock()) == "B"
        assert CALLS == ["a", "b"]

    def test_task_input_hash(self):
        from kernelflow.tasks import task_input_hash

        @task(cache_key_fn=task_input_hash)
        def t(x):
            CALLS.append(x)
            return {"x": x}

        @flow
        def f(x):
            return t(x)

        assert f(1) == {"x": 1} and f(1) == {"x": 1} and f(2) == {"x": 2}
        assert CALLS == [1, 2]

    def test_cache_key_fn_none_means_no_caching(self):
        @task(cache_key_fn=lambda ctx, args: None if args["x"] < 0 else f"k{args['x']}")
        def t(x):
            CALLS.append(x)
            return x

        for x in (1, 1, -1, -1):
            t(x)
        assert CALLS == [1, -1, -1]

    def test_cache_key_fn_gets_context_and_arguments(self):
        seen = []

        def key_fn(ctx, arguments):
            seen.append((ctx.task.name, dict(arguments)))
            return "fixed"

        @task(cache_key_fn=key_fn)
        def t(a, b=2):
            return a + b

        assert t(1) == 3
        assert t(5) == 3  # the key ignores the inputs: the first result is reused
        assert seen == [("t", {"a": 1, "b": 2}), ("t", {"a": 5, "b": 2})]

    def test_two_tasks_with_equal_inputs_do_not_share(self):
        from kernelflow.cache_policies import INPUTS

        @task(cache_policy=INPUTS)
        def one(x):
            return "one"

        @task(cache_policy=INPUTS)
        def two(x):
            return "two"

        assert (one(1), two(1)) == ("one", "two")

    def test_cache_expiration(self):
        from datetime import timedelta

        from kernelflow.cache_policies import INPUTS

        @task(cache_policy=INPUTS, cache_expiration=timedelta(seconds=0.3))
        def t(x):
            CALLS.append(x)
            return len(CALLS)

        assert t(1) == 1
        assert t(1) == 1
        time.sleep(0.35)
        assert t(1) == 2  # expired: recomputed
        assert t(1) == 2

    def test_refresh_cache(self):
        from kernelflow.cache_policies import INPUTS

        @task(cache_policy=INPUTS)
        def t(x):
            CALLS.append(x)
            return len(CALLS)

        refreshing = t.with_options(refresh_cache=True)
        assert t(1) == 1
        assert refreshing(1) == 2  # runs although cached, and replaces the entry
        assert t(1) == 2
        assert CALLS == [1, 1]

    def test_run_id_policy_reuses_only_within_a_flow_run(self):
        from kernelflow.cache_policies import DEFAULT

        @task(cache_policy=DEFAULT)
        def t(x):
            CALLS.append(x)
            return x

        @flow
        def f():
            return t(1), t(1)

        f()
        f()
        assert CALLS == [1, 1]

    def test_no_cache_policy(self):
        from kernelflow.cache_policies import NO_CACHE

        @task(cache_policy=NO_CACHE)
        def t(x):
            CALLS.append(x)

        t(1)
        t(1)
        assert CALLS == [1, 1]

    def test_cached_state_recorded(self):
        from kernelflow.cache_policies import INPUTS

        @task(cache_policy=INPUTS)
        def t(x):
            return x

        @flow
        def f():
            t(1)
            t(1)

        f()
        rows = kernelflow.sql(
            "SELECT name, state_type, state_name, cache_key IS NOT NULL AS keyed "
            "FROM task_runs ORDER BY name"
        ).to_dict("records")
        assert rows == [
            {"name": "t-0", "state_type": "COMPLETED", "state_name": "Completed", "keyed": True},
            {"name": "t-1", "state_type": "COMPLETED", "state_name": "Cached", "keyed": True},
        ]
        entries = kernelflow.sql("SELECT task_name FROM cache_entries")
        assert entries["task_name"].tolist() == ["t"]

    def test_large_numpy_and_pandas_inputs(self):
        np = pytest.importorskip("numpy")
        pd = pytest.importorskip("pandas")
        from kernelflow.cache_policies import INPUTS

        @task(cache_policy=INPUTS)
        def total(arr, frame):
            CALLS.append(1)
            return float(arr.sum()) + float(frame["a"].sum())

        arr = np.arange(2_000_000, dtype="float64")
        frame = pd.DataFrame({"a": np.arange(100_000)})
        first = total(arr, frame)
        assert total(arr.copy(), frame.copy()) == first
        changed = arr.copy()
        changed[-1] = 0
        assert total(changed, frame) != first
        assert len(CALLS) == 2

    def test_dataframe_result_round_trip(self):
        pd = pytest.importorskip("pandas")
        from kernelflow.cache_policies import INPUTS

        @task(cache_policy=INPUTS)
        def make(n):
            CALLS.append(n)
            return pd.DataFrame({"i": range(n), "s": [str(i) for i in range(n)]})

        first = make(50)
        second = make(50)
        pd.testing.assert_frame_equal(first, second)
        assert CALLS == [50]

    def test_corrupt_result_file_is_recomputed_with_one_warning(self, store, capsys):
        from kernelflow import cache_index
        from kernelflow.cache_policies import INPUTS

        @task(cache_policy=INPUTS)
        def t(x):
            CALLS.append(x)
            return {"value": x}

        assert t(1) == {"value": 1}
        (entry,) = cache_index.entries()
        result_file = store.home / entry.result
        result_file.write_bytes(b"garbage" + result_file.read_bytes()[7:])
        capsys.readouterr()

        assert t(1) == {"value": 1}
        assert CALLS == [1, 1]
        err = capsys.readouterr().err
        warnings = [line for line in err.splitlines() if "WARNING" in line]
        assert len(warnings) == 1, err
        assert "is corrupt" in warnings[0] and "recomputing" in warnings[0]
        assert "'t'" in warnings[0]
        # The recomputed result is stored again: the next call is a clean hit.
        assert t(1) == {"value": 1}
        assert CALLS == [1, 1]
        assert "WARNING" not in capsys.readouterr().err

    def test_missing_result_file_is_recomputed(self, store):
        from kernelflow import cache_index
        from kernelflow.cache_policies import INPUTS

        @task(cache_policy=INPUTS)
        def t(x):
            CALLS.append(x)
            return x

        t(1)
        (entry,) = cache_index.entries()
        (store.home / entry.result).unlink()
        assert t(1) == 1
        assert CALLS == [1, 1]

    def test_reuse_across_processes(self, run_python):
        script = """
            from kernelflow import flow, task
            from kernelflow.cache_policies import INPUTS

            @task(cache_policy=INPUTS, log_prints=True)
            def slow_square(x):
                print(f"computing {x}")
                return x * x

            @flow
            def f(x):
                state = slow_square(x, return_state=True)
                print(state.name, state.result())

            f(12)
        """
        first = run_python(script)
        assert first.stdout == "Completed 144\n"
        assert "computing 12" in first.stderr
        second = run_python(script)
        assert second.stdout == "Cached 144\n"
        assert "computing 12" not in second.stderr


class TestQuietness:
    def test_a_script_prints_only_its_run_lines(self, run_python):
        # Prefect offline prints telemetry errors; kernelflow prints its log lines only.
        proc = run_python("""
            from kernelflow import flow, task

            @task
            def double(x):
                return 2 * x

            @flow(name="quiet")
            def quiet():
                return double.submit(2).result() + double(1)

            print(quiet())
        """)
        assert proc.stdout == "6\n"
        lines = proc.stderr.splitlines()
        assert len(lines) == 4, proc.stderr
        assert all(re.match(r"^\d\d:\d\d:\d\d\.\d{3} \| INFO    \| ", line) for line in lines)

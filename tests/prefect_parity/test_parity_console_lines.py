"""Prefect 3.9's console lines, word for word, and the behaviours they report.

The docs examples (tests/prefect_docs) compare whole programs with Prefect's
recorded output; these tests pin each kind of line on its own, with the
cases the examples do not reach (a hook that fails, a task timeout, a retry
condition that says no, a returned ``Failed`` state with retries left), and
the three behaviours that came with them: ``cache_result_in_memory=False``,
futures handed to a subflow (also inside a dataclass), and a flow that returns
a generator.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import time

import pytest

from kernelflow import flow, task
from kernelflow.errors import ConfigurationError
from kernelflow.states import Completed, Failed, StoredResult

LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \| (?P<level>[A-Z]+) +\| (?P<who>.+?) - (?P<msg>.*)$")


def console(err: str) -> list[tuple[str, str, str]]:
    """``(level, who, message)`` of each console log line, run names kept."""
    return [(m["level"], m["who"], m["msg"]) for m in map(LINE.match, err.splitlines()) if m]


def messages(err: str) -> list[str]:
    return [msg for _, _, msg in console(err)]


class TestFlowLines:
    def test_each_try_begins_with_prefects_line_and_a_retry_says_why(self, capsys):
        tries = []

        @flow(name="shaky", retries=1, flow_run_name="shaky-run")
        def shaky() -> str:
            tries.append(1)
            if len(tries) == 1:
                raise ValueError("first try")
            return "ok"

        assert shaky() == "ok"
        lines = console(capsys.readouterr().err)
        who = "Flow run 'shaky-run'"
        assert [(lvl, w, msg.splitlines()[0]) for lvl, w, msg in lines] == [
            ("INFO", who, "Beginning flow run 'shaky-run' for flow 'shaky'"),
            ("ERROR", who, "Encountered exception during execution: ValueError('first try')"),
            (
                "INFO",
                who,
                "Received non-final state 'AwaitingRetry' when proposing final state 'Failed' "
                "and will attempt to run again...",
            ),
            ("INFO", who, "Beginning flow run 'shaky-run' for flow 'shaky'"),
            ("INFO", who, "Finished in state Completed()"),
        ]

    def test_the_exception_line_carries_the_users_traceback(self, capsys):
        @flow
        def broken() -> None:
            raise KeyError("missing")

        broken(return_state=True)
        err = capsys.readouterr().err
        assert "Encountered exception during execution: KeyError('missing')" in err
        assert "Traceback (most recent call last):" in err and 'raise KeyError("missing")' in err

    def test_a_failed_flow_finishes_at_info_a_failed_task_at_error(self, capsys):
        @task
        def bad() -> None:
            raise RuntimeError("task broke")

        @flow(flow_run_name="failing")
        def failing() -> None:
            bad()

        failing(return_state=True)
        finished = [
            (lvl, msg) for lvl, _, msg in console(capsys.readouterr().err) if "Finished" in msg
        ]
        assert finished == [
            (
                "ERROR",
                "Finished in state Failed('Task run encountered an exception RuntimeError: "
                "task broke')",
            ),
            (
                "INFO",
                "Finished in state Failed('Flow run encountered an exception: RuntimeError: "
                "task broke')",
            ),
        ]

    def test_a_subflow_begins_on_its_parents_logger(self, capsys):
        @flow(flow_run_name="child-run")
        def child() -> int:
            return 1

        @flow(flow_run_name="parent-run")
        def parent() -> int:
            return child()

        parent()
        lines = console(capsys.readouterr().err)
        assert (
            "INFO",
            "Flow run 'parent-run'",
            "Beginning subflow run 'child-run' for flow 'child'",
        ) in lines

    def test_a_timeout_is_logged_before_the_timed_out_state(self, capsys):
        @flow(timeout_seconds=0.2)
        def slow() -> None:
            time.sleep(5)

        slow(return_state=True)
        tail = messages(capsys.readouterr().err)[-2:]
        assert tail == [
            "Flow run exceeded timeout of 0.2 second(s)",
            "Finished in state TimedOut('Flow run exceeded timeout of 0.2 second(s)', type=FAILED)",
        ]


class TestTaskLines:
    def test_retries_name_the_exception_the_try_and_the_delay(self, capsys):
        calls = []

        @task(retries=3, retry_delay_seconds=[0, 0.01, 1])
        def flaky() -> str:
            calls.append(1)
            if len(calls) < 3:
                raise ConnectionError(f"try {len(calls)}")
            return "ok"

        assert flaky() == "ok"
        assert messages(capsys.readouterr().err) == [
            "Task run failed with exception: ConnectionError('try 1') - Retry 1/3 will start "
            "immediately",
            "Task run failed with exception: ConnectionError('try 2') - Retry 2/3 will start "
            "0.01 second(s) from now",
            "Finished in state Completed()",
        ]

    def test_exhausted_retries_and_no_retries(self, capsys):
        @task(retries=1)
        def always() -> None:
            raise ValueError("no")

        @task
        def once() -> None:
            raise ValueError("no")

        always(return_state=True)
        once(return_state=True)
        lines = [(lvl, msg.splitlines()[0]) for lvl, _, msg in console(capsys.readouterr().err)]
        assert lines == [
            (
                "INFO",
                "Task run failed with exception: ValueError('no') - Retry 1/1 will start "
                "immediately",
            ),
            ("ERROR", "Task run failed with exception: ValueError('no') - Retries are exhausted"),
            (
                "ERROR",
                "Finished in state Failed('Task run encountered an exception ValueError: no')",
            ),
            ("ERROR", "Task run failed with exception: ValueError('no')"),
            (
                "ERROR",
                "Finished in state Failed('Task run encountered an exception ValueError: no')",
            ),
        ]

    def test_a_retry_condition_that_says_no_logs_no_failure_line(self, capsys):
        @task(retries=2, retry_condition_fn=lambda task, run, state: False)
        def unlucky() -> None:
            raise ValueError("not retried")

        unlucky(return_state=True)
        assert messages(capsys.readouterr().err) == [
            "Finished in state Failed('Task run encountered an exception ValueError: not retried')"
        ]

    def test_a_returned_failed_state_is_logged_with_prefects_repr(self, capsys):
        @task(retries=1)
        def refuses():
            return Failed(message="nope")

        refuses(return_state=True)
        assert messages(capsys.readouterr().err) == [
            "Task run failed with state: Failed(message='nope', type=FAILED, result=None) - "
            "Retry 1/1 will start immediately",
            "Task run failed with state: Failed(message='nope', type=FAILED, result=None) - "
            "Retries are exhausted",
            "Finished in state Failed('nope')",
        ]

    def test_a_task_timeout_is_said_twice_as_prefect_does(self, capsys):
        @task(timeout_seconds=0.2)
        def slow() -> None:
            time.sleep(5)

        slow(return_state=True)
        lines = [m.splitlines()[0] for m in messages(capsys.readouterr().err)]
        assert lines == [
            "Task run failed with exception: TaskRunTimeoutError('Task run exceeded timeout of "
            "0.2 second(s)')",
            "Task run exceeded timeout of 0.2 second(s)",
            "Finished in state TimedOut('Task run exceeded timeout of 0.2 second(s)', type=FAILED)",
        ]

    def test_a_cache_hit_finishes_cached_with_no_message(self, capsys):
        @task(cache_key_fn=lambda *_: "same")
        def cached() -> int:
            return 1

        cached()
        cached()
        assert messages(capsys.readouterr().err) == [
            "Finished in state Completed()",
            "Finished in state Cached(type=COMPLETED)",
        ]


class TestHookLines:
    def test_hooks_run_before_the_final_line_and_say_so(self, capsys):
        def notify(task, run, state):
            pass

        def explode(task, run, state):
            raise RuntimeError("hook bug")

        @task(on_completion=[notify, functools.partial(explode)])
        def work() -> int:
            return 1

        assert work() == 1
        lines = [m.splitlines()[0] for m in messages(capsys.readouterr().err)]
        assert lines == [
            "Running hook 'notify' in response to entering state 'Completed'",
            "Hook 'notify' finished running successfully",
            "Running hook 'explode' in response to entering state 'Completed'",
            "An error was encountered while running hook 'explode'",
            "Finished in state Completed()",
        ]

    def test_an_immediate_retry_enters_retrying_a_delayed_one_running(self, capsys):
        seen = []
        calls = []

        @task(
            retries=2,
            retry_delay_seconds=[0, 0.01],
            on_running=[lambda t, r, s: seen.append(s.name)],
        )
        def flaky() -> str:
            calls.append(1)
            if len(calls) < 3:
                raise OSError("again")
            return "ok"

        assert flaky() == "ok"
        assert seen == ["Running", "Retrying", "Running"]


class TestCacheResultInMemory:
    def test_a_task_keeps_its_value_in_the_store_only(self, store):
        @task(cache_result_in_memory=False)
        def big() -> list[int]:
            return list(range(1000))

        state = big(return_state=True)
        assert isinstance(state.data, StoredResult)
        assert state.result() == list(range(1000))
        assert (store.paths.home / state.data.path).is_file()

    def test_the_call_and_a_future_return_the_value(self):
        @task(cache_result_in_memory=False)
        def value(x: int) -> int:
            return x * 2

        @flow
        def pipeline() -> tuple[int, int, int]:
            future = value.submit(2)
            # The future's value reaches a downstream task as the value, not a reference.
            return value(3), future.result(), value(future)

        assert pipeline() == (6, 4, 8)

    def test_a_flow_returns_its_value_read_back_from_the_store(self):
        @flow(cache_result_in_memory=False)
        def produce() -> dict:
            return {"rows": 3}

        state = produce(return_state=True)
        assert isinstance(state.data, StoredResult)
        assert state.result() == {"rows": 3}
        assert produce() == {"rows": 3}

    def test_with_options_and_a_bad_value(self):
        @task
        def t() -> int:
            return 1

        assert t.with_options(cache_result_in_memory=False).cache_result_in_memory is False
        with pytest.raises(ConfigurationError, match="cache_result_in_memory on task 't' must be"):
            task(cache_result_in_memory="no", name="t")(lambda: 1)

    def test_an_unpicklable_flow_value_fails_the_run_in_one_line(self):
        @flow(cache_result_in_memory=False)
        def locked():
            import threading

            return threading.Lock()

        state = locked(return_state=True)
        assert state.is_failed() and "\n" not in state.message


class TestResolvedArguments:
    def test_a_subflow_gets_a_futures_value(self):
        @task
        def fetch() -> list[int]:
            return [3, 1, 2]

        @flow
        def child(values: list[int]) -> str:
            return type(values).__name__

        @flow
        def parent() -> str:
            return child(fetch.submit())

        assert parent() == "list"

    def test_a_dataclass_holding_a_future_is_rebuilt_with_the_value(self):
        inits = []

        @dataclasses.dataclass
        class Settings:
            rate: float

            def __post_init__(self) -> None:
                inits.append(self.rate)

        @task
        def rate() -> float:
            return 1.5

        @task
        def use(settings: Settings) -> float:
            return settings.rate * 2

        @flow
        def pipeline() -> float:
            return use(Settings(rate=rate.submit()))

        assert pipeline() == 3.0
        assert inits[-1] == 1.5  # __post_init__ ran again with the value, as in Prefect

    def test_a_returned_generator_is_run_inside_the_flow_and_listed(self):
        @task
        def square(x: int) -> int:
            return x * x

        @flow
        def squares():
            return (square(x) for x in range(3))

        state = squares(return_state=True)
        assert state.result() == [0, 1, 4]
        assert state.is_completed()


def test_state_forms_are_prefects():
    assert str(Completed()) == "Completed()"
    assert repr(Completed(data=[1])) == "Completed(message=None, type=COMPLETED, result=[1])"

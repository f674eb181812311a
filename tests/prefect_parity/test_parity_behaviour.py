"""Behaviour that follows Prefect 3: what the same code does on both.

Each class names the Prefect source it was checked against (PrefectHQ/prefect,
``src/prefect/...``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from kernelflow import flow, task
from kernelflow.cache_policies import DEFAULT, INPUTS, TASK_SOURCE, CacheKeyFnPolicy
from kernelflow.concurrency import asyncio as kf_asyncio
from kernelflow.concurrency import create_limit, limit_status
from kernelflow.concurrency.sync import concurrency, rate_limit
from kernelflow.errors import (
    ConcurrencySlotAcquisitionError,
    ConfigurationError,
    FailedRun,
    FlowRunTimeout,
    FlowRunTimeoutError,
    LimitNotFoundError,
    TaskRunTimeout,
    TaskRunTimeoutError,
)
from kernelflow.runners import ThreadPoolTaskRunner
from kernelflow.states import Completed, Failed

MISSING = "Concurrency limits ['database'] do not exist - skipping acquisition."


@pytest.fixture
def caplog(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """pytest's caplog, also fed by the ``kernelflow`` logger (which does not propagate)."""
    from kernelflow.logs import configure

    logger = configure()
    logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)


def messages(caplog: pytest.LogCaptureFixture, logger: str | None = None) -> list[str]:
    return [r.getMessage() for r in caplog.records if logger is None or r.name.startswith(logger)]


class TestMissingConcurrencyLimits:
    """prefect/concurrency/_asyncio.py: a missing limit warns and is skipped unless strict."""

    def test_a_task_using_a_missing_limit_runs_and_warns_on_its_run_logger(self, caplog):
        @task
        def query() -> str:
            with concurrency("database", occupy=1):
                return "rows"

        @flow
        def pipeline() -> list[str]:
            return [f.result() for f in [query.submit() for _ in range(4)]]

        with caplog.at_level(logging.WARNING):
            state = pipeline(return_state=True)
        assert state.is_completed() and state.result() == ["rows"] * 4
        warned = [r for r in caplog.records if r.getMessage() == MISSING]
        assert len(warned) == 4
        assert {r.levelno for r in warned} == {logging.WARNING}
        assert all(r.name == "kernelflow.runs.task" for r in warned)

    def test_outside_a_run_the_warning_goes_to_the_concurrency_logger(self, caplog):
        with caplog.at_level(logging.WARNING):
            with concurrency("database"):
                ran = True
            rate_limit("database")
        assert ran
        assert messages(caplog, "kernelflow.concurrency") == [MISSING, MISSING]

    def test_the_warning_lists_the_names_as_given(self, caplog):
        with caplog.at_level(logging.WARNING):
            with concurrency(["zeta", "alpha"]):
                pass
        assert messages(caplog) == [
            "Concurrency limits ['zeta', 'alpha'] do not exist - skipping acquisition."
        ]

    def test_strict_raises_prefects_error_in_its_words(self):
        with pytest.raises(
            ConcurrencySlotAcquisitionError,
            match=r"^Concurrency limits \['database'\] must be created before acquiring slots$",
        ):
            with concurrency("database", strict=True):
                pass
        with pytest.raises(LimitNotFoundError):
            rate_limit("database", strict=True)

    def test_existing_names_are_acquired_and_missing_ones_skipped(self, caplog):
        create_limit("api", 2)
        with caplog.at_level(logging.WARNING):
            with concurrency(["api", "database"]):
                assert limit_status("api").occupied == 1
        assert limit_status("api").occupied == 0
        assert messages(caplog) == []  # as in Prefect: warned only when none exists

    def test_no_names_is_a_no_op(self):
        with concurrency([]):
            pass
        rate_limit([])

    def test_async_concurrency_and_rate_limit(self, caplog):
        async def main() -> int:
            async with kf_asyncio.concurrency("database"):
                await kf_asyncio.rate_limit("database")
                return 1

        with caplog.at_level(logging.WARNING):
            assert asyncio.run(main()) == 1
        assert messages(caplog) == [MISSING, MISSING]
        with pytest.raises(LimitNotFoundError):
            asyncio.run(kf_asyncio.rate_limit("database", strict=True))


class TestTaskReturningAState:
    """prefect/task_engine.py: a returned State is the run's final state and the call's value."""

    def test_returned_failed_state_does_not_raise_and_the_flow_goes_on(self):
        seen = {}

        @task
        def bad():
            return Failed(message="negative")

        @task
        def good() -> int:
            return 1

        @flow
        def pipeline():
            a = bad()
            seen["a"] = a
            b = good(return_state=True)
            return [a, b]

        state = pipeline(return_state=True)
        assert state.is_failed() and state.message == "1/2 states failed."
        returned = seen["a"]
        assert returned.is_failed() and returned.name == "Failed"
        assert returned.message == "negative"
        with pytest.raises(FailedRun, match="negative"):
            returned.result()
        with pytest.raises(FailedRun, match="negative"):
            pipeline()

    def test_the_task_run_is_recorded_failed(self, store):
        import kernelflow

        @task
        def bad():
            return Failed(message="negative")

        @flow
        def pipeline() -> str:
            bad()
            return "went on"

        assert pipeline() == "went on"
        rows = kernelflow.sql("SELECT name, state_name FROM task_runs").values.tolist()
        assert rows == [["bad-0", "Failed"]]

    def test_a_submitted_task_s_future_raises_on_result(self):
        @task
        def bad():
            return Failed(message="negative")

        @flow
        def pipeline() -> str:
            future = bad.submit()
            with pytest.raises(FailedRun, match="negative"):
                future.result()
            return future.state.name

        assert pipeline() == "Failed"

    def test_returned_completed_state_is_the_call_value(self):
        @task
        def t():
            return Completed(message="hi", data=3)

        returned = t()
        assert (returned.name, returned.message, returned.result()) == ("Completed", "hi", 3)

    def test_a_returned_failed_state_is_retried(self):
        calls = []

        @task(retries=2)
        def flaky():
            calls.append(1)
            if len(calls) < 3:
                return Failed(message="not yet")
            return "ok"

        assert flaky() == "ok" and len(calls) == 3


class TestPersistResultTurnsCachingOn:
    """prefect/tasks.py (Task.__init__): persisted results use the DEFAULT policy."""

    def test_persist_result_true_caches_within_one_flow_run(self):
        calls = []

        @task(persist_result=True)
        def load(x: int) -> int:
            calls.append(x)
            return x * 10

        assert load.cache_policy is DEFAULT

        @flow
        def pipeline() -> list:
            return [load(1, return_state=True).name, load(1, return_state=True).name, load(2)]

        assert pipeline() == ["Completed", "Cached", 20]
        assert pipeline() == ["Completed", "Cached", 20]  # RUN_ID: a new run computes again
        assert calls == [1, 2, 1, 2]

    def test_a_flow_that_persists_results_caches_its_tasks(self):
        calls = []

        @task
        def load(x: int) -> int:
            calls.append(x)
            return x

        @flow(persist_result=True)
        def persisting() -> list:
            return [load(1, return_state=True).name, load(1, return_state=True).name]

        @flow
        def plain() -> list:
            return [load(1, return_state=True).name, load(1, return_state=True).name]

        assert persisting() == ["Completed", "Cached"]
        assert plain() == ["Completed", "Completed"]
        assert load.cache_policy is None and load.persist_result is None
        assert len(calls) == 3

    def test_an_input_that_cannot_be_hashed_only_turns_default_caching_off(self, caplog):
        @task(persist_result=True)
        def use(lock) -> int:
            return 1

        @flow
        def pipeline() -> list:
            lock = threading.Lock()
            return [use(lock, return_state=True).name, use(lock, return_state=True).name]

        with caplog.at_level(logging.WARNING):
            assert pipeline() == ["Completed", "Completed"]
        assert any("the task runs without caching" in m for m in messages(caplog))

    def test_asking_for_caching_turns_persist_result_on(self):
        @task(cache_policy=INPUTS)
        def a(x):
            return x

        @task(cache_key_fn=lambda ctx, args: "k")
        def b(x):
            return x

        @task(result_storage_key="r-{parameters[x]}")
        def c(x):
            return x

        @task
        def d(x):
            return x

        assert [t.persist_result for t in (a, b, c, d)] == [True, True, True, None]

    def test_cache_key_fn_wins_over_cache_policy_with_a_warning(self, caplog):
        with caplog.at_level(logging.WARNING):

            @task(cache_policy=INPUTS, cache_key_fn=lambda ctx, args: "same")
            def t(x):
                return x

        assert isinstance(t.cache_policy, CacheKeyFnPolicy)
        assert any("`cache_key_fn` will be used" in m for m in messages(caplog))
        assert t(1) == 1 and t(2) == 1  # one key for every input


class TestDefaultTaskRunner:
    """prefect/task_runners.py: max_workers=None is the setting, else sys.maxsize."""

    def test_no_bound_by_default(self):
        runner = ThreadPoolTaskRunner()
        runner.start()
        try:
            assert runner._pool._max_workers == sys.maxsize
        finally:
            runner.shutdown()

    def test_forty_submitted_tasks_all_run_at_once(self):
        barrier = threading.Barrier(40, timeout=20)

        @task
        def meet(i: int) -> int:
            barrier.wait()  # breaks (and fails the task) unless all 40 run at the same time
            return i

        @flow
        def fanout() -> list[int]:
            return [f.result() for f in meet.map(range(40))]

        assert fanout() == list(range(40))

    def test_the_environment_bounds_it(self, monkeypatch):
        monkeypatch.setenv("KERNELFLOW_TASKS_RUNNER_THREAD_POOL_MAX_WORKERS", "3")
        runner = ThreadPoolTaskRunner()
        runner.start()
        try:
            assert runner._pool._max_workers == 3
        finally:
            runner.shutdown()
        monkeypatch.setenv("KERNELFLOW_TASKS_RUNNER_THREAD_POOL_MAX_WORKERS", "many")
        with pytest.raises(ConfigurationError, match="THREAD_POOL_MAX_WORKERS='many'"):
            ThreadPoolTaskRunner().start()

    def test_an_explicit_max_workers_wins(self, monkeypatch):
        monkeypatch.setenv("KERNELFLOW_TASKS_RUNNER_THREAD_POOL_MAX_WORKERS", "3")
        runner = ThreadPoolTaskRunner(max_workers=5)
        runner.start()
        try:
            assert runner._pool._max_workers == 5
        finally:
            runner.shutdown()


class TestFailureMessages:
    """prefect/flow_engine.py and task_engine.py: the failed states' messages."""

    def test_flow_and_task_messages(self):
        @task
        def nope():
            raise ValueError("nope-123")

        @flow
        def boom():
            raise ValueError("boom")

        @flow
        def pipeline():
            return nope(return_state=True).message

        assert boom(return_state=True).message == (
            "Flow run encountered an exception: ValueError: boom"
        )
        assert pipeline() == "Task run encountered an exception ValueError: nope-123"


class TestTimeoutErrors:
    """prefect/flow_engine.py (FlowRunTimeoutError) and task_engine.py (TaskRunTimeoutError)."""

    def test_a_flow_over_its_timeout_raises_flow_run_timeout_error(self):
        @flow(timeout_seconds=1)
        def slow():
            time.sleep(3)

        state = slow(return_state=True)
        assert (state.name, state.type.value) == ("TimedOut", "FAILED")
        assert state.message == "Flow run exceeded timeout of 1.0 second(s)"
        assert type(state.data) is FlowRunTimeoutError
        with pytest.raises(FlowRunTimeoutError):
            state.result()

    def test_the_former_names_are_aliases(self):
        assert FlowRunTimeout is FlowRunTimeoutError
        assert TaskRunTimeout is TaskRunTimeoutError
        assert issubclass(FlowRunTimeoutError, TimeoutError)

    def test_a_task_over_its_timeout(self):
        @task(timeout_seconds=0.2)
        def slow():
            time.sleep(1)

        state = slow(return_state=True)
        assert state.message == "Task run exceeded timeout of 0.2 second(s)"
        assert isinstance(state.data, TaskRunTimeoutError)


class TestGeneratorFlows:
    """prefect/flow_engine.py (run_generator_flow_sync / _async): flows that yield."""

    def test_values_are_yielded_and_the_run_completes(self):
        finished = []

        @flow(on_completion=[lambda f, run, state: finished.append((run.name, state.name))])
        def numbers(n: int):
            for i in range(n):
                yield i * i
            return "done"

        gen = numbers(4)
        assert finished == []  # nothing runs before the first next()
        assert list(gen) == [0, 1, 4, 9]
        assert [name for _, name in finished] == ["Completed"]

    def test_the_return_value_is_the_generator_s(self):
        @flow
        def numbers():
            yield 1
            return "done"

        gen = numbers()
        assert next(gen) == 1
        with pytest.raises(StopIteration) as info:
            next(gen)
        assert info.value.value == "done"

    def test_tasks_called_inside_belong_to_the_run(self):
        @task
        def double(x: int) -> int:
            return 2 * x

        @flow
        def doubled(items: list[int]):
            for item in items:
                yield double(item)

        assert list(doubled([1, 2, 3])) == [2, 4, 6]

    def test_a_failure_is_raised_to_the_caller_and_recorded(self):
        states = []

        @flow(on_failure=[lambda f, run, state: states.append(state.message)])
        def broken():
            yield 1
            raise ValueError("half way")

        gen = broken()
        assert next(gen) == 1
        with pytest.raises(ValueError, match="half way"):
            next(gen)
        assert states == ["Flow run encountered an exception: ValueError: half way"]

    def test_stopping_early_completes_the_run(self):
        states = []

        @flow(on_completion=[lambda f, run, state: states.append(state.name)])
        def endless():
            i = 0
            while True:
                yield i
                i += 1

        gen = endless()
        assert [next(gen) for _ in range(3)] == [0, 1, 2]
        gen.close()
        assert states == ["Completed"]

    def test_async_generator_flow(self):
        @flow
        async def ticks(n: int):
            for i in range(n):
                await asyncio.sleep(0)
                yield i

        async def collect() -> list[int]:
            return [i async for i in ticks(3)]

        assert asyncio.run(collect()) == [0, 1, 2]

    def test_return_state_and_timeouts_are_refused(self):
        @flow
        def numbers():
            yield 1

        with pytest.raises(ConfigurationError, match="return_state=True"):
            numbers(return_state=True)
        with pytest.raises(ConfigurationError, match="generator flow"):

            @flow(timeout_seconds=5)
            def timed():
                yield 1


class TestMethods:
    """prefect/flows.py and tasks.py: ``__get__`` binds flows and tasks defined on classes."""

    def test_instance_class_and_static_methods(self):
        class Pipeline:
            factor = 10

            def __init__(self, offset: int) -> None:
                self.offset = offset

            @flow
            def run(self, x: int) -> int:
                return self.scale(x) + self.offset

            @task
            def scale(self, x: int) -> int:
                return self.factor * x

            @flow
            @classmethod
            def build(cls, offset: int) -> int:
                return cls(offset).run(1)

            @flow
            @staticmethod
            def add(a: int, b: int) -> int:
                return a + b

            @task
            @classmethod
            def name(cls) -> str:
                return cls.__name__

            @task
            @staticmethod
            def twice(x: int) -> int:
                return 2 * x

        p = Pipeline(5)
        assert p.run(2) == 25
        assert Pipeline.build(1) == 11 and p.build(2) == 12
        assert Pipeline.add(1, 2) == 3 and p.add(3, 4) == 7
        assert Pipeline.name() == "Pipeline" and p.twice(4) == 8
        assert Pipeline.run(p, 1) == 15  # looked up on the class: the plain flow
        assert Pipeline.run.name == "run" and p.run.name == "run"

    def test_map_over_a_bound_task_maps_the_arguments_only(self):
        class Scaler(list):  # iterable itself: must not be mapped over
            @task
            def scale(self, x: int) -> int:
                return len(self) * x

            @flow
            def run(self, items: list[int]) -> list[int]:
                return [f.result() for f in self.scale.map(items)]

        assert Scaler([0, 0]).run([1, 2, 3]) == [2, 4, 6]

    def test_with_options_keeps_the_binding(self):
        class A:
            @task
            def t(self) -> str:
                return "bound"

        assert A().t.with_options(name="renamed")() == "bound"


class TestResultStorageKey:
    """prefect/tasks.py and task_engine.py: result_storage_key names the result and keys it."""

    def test_the_result_is_written_under_the_key_and_reused(self, store):
        calls = []

        @task(result_storage_key="my-result-{parameters[x]}")
        def compute(x: int) -> int:
            calls.append(x)
            return x * 10

        @flow
        def pipeline(x: int) -> tuple:
            state = compute(x, return_state=True)
            return state.name, state.result()

        assert pipeline(1) == ("Completed", 10)
        assert pipeline(1) == ("Cached", 10)  # another flow run: the key is the cache key
        assert pipeline(2) == ("Completed", 20)
        assert calls == [1, 2]
        results = store.home / "results"
        assert (results / "my-result-1").is_file() and (results / "my-result-2").is_file()

    def test_runtime_fields_and_folders(self, store):
        @task(result_storage_key="{flow_run.name}/{task_run.task_name}-{parameters[day]}")
        def sales(day: str) -> str:
            return day

        @flow(flow_run_name="daily")
        def pipeline() -> str:
            return sales("2024-01-01")

        assert pipeline() == "2024-01-01"
        assert (store.home / "results" / "daily" / "sales-2024-01-01").is_file()

    def test_refresh_cache_and_no_cache_write_but_do_not_reuse(self, store):
        from kernelflow.cache_policies import NO_CACHE

        calls = []

        @task(result_storage_key="fixed", refresh_cache=True)
        def fresh() -> int:
            calls.append(1)
            return len(calls)

        @task(result_storage_key="fixed-too", cache_policy=NO_CACHE)
        def uncached() -> int:
            calls.append(2)
            return len(calls)

        assert [fresh(), fresh(), uncached(), uncached()] == [1, 2, 3, 4]
        assert (store.home / "results" / "fixed").is_file()
        assert (store.home / "results" / "fixed-too").is_file()

    @pytest.mark.parametrize(
        "key", ["../outside", "/etc/passwd", "a/../../b", ".hidden", "a//b", "a\\b", "x/"]
    )
    def test_a_key_that_leaves_results_is_refused_when_decorating(self, key):
        with pytest.raises(ConfigurationError, match="results/ folder") as info:

            @task(result_storage_key=key)
            def t() -> int:
                return 1

        assert "\n" not in str(info.value)

    def test_a_parameter_that_leaves_results_fails_the_run(self, store):
        @task(result_storage_key="r-{parameters[name]}")
        def t(name: str) -> int:
            return 1

        state = t("x/../../../escape", return_state=True)
        assert state.is_failed() and isinstance(state.data, ConfigurationError)
        assert "results/ folder" in state.message
        with pytest.raises(ConfigurationError):
            t("/../up")
        assert not (store.home.parent / "escape").exists()
        assert t("fine") == 1

    def test_a_field_that_is_not_there_fails_the_run(self):
        @task(result_storage_key="r-{parameters[missing]}")
        def t(x: int) -> int:
            return x

        with pytest.raises(ConfigurationError, match=r"parameters\[name\] \(one of \['x'\]\)"):
            t(1)

    def test_cache_key_fn_policy_by_keyword(self):
        calls = []
        policy = CacheKeyFnPolicy(cache_key_fn=lambda ctx, args: f"day-{args['day']}")
        assert policy.cache_key_fn is policy.fn

        @task(cache_policy=policy + TASK_SOURCE)
        def load(day: str, noise: int) -> str:
            calls.append(day)
            return day

        assert [load("mon", 1), load("mon", 2), load("tue", 3)] == ["mon", "mon", "tue"]
        assert calls == ["mon", "tue"]
        with pytest.raises(ConfigurationError, match="callable"):
            CacheKeyFnPolicy(cache_key_fn="not a function")

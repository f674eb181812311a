"""``kernelflow.utilities.annotations``: Prefect's ``quote`` and ``opaque``."""

from __future__ import annotations

from typing import Any

from kernelflow import flow, task
from kernelflow.futures import PrefectFuture
from kernelflow.utilities.annotations import allow_failure, opaque, quote, unmapped


@task
def one() -> int:
    return 1


@task
def kind(value: Any) -> Any:
    """What a task receives: futures named, everything else as is."""
    if isinstance(value, PrefectFuture):
        return "future"
    if isinstance(value, list):
        return ["future" if isinstance(v, PrefectFuture) else v for v in value]
    return value


class TestQuote:
    def test_futures_inside_are_passed_untouched(self):
        @flow
        def pipeline() -> tuple:
            future = one.submit()
            return kind(quote([future, 2])), kind([future, 2])

        assert pipeline() == (["future", 2], [1, 2])

    def test_the_task_gets_the_value_not_the_wrapper(self):
        big = {i: str(i) for i in range(1000)}

        @task
        def size(data: dict) -> int:
            return len(data)

        @flow
        def pipeline() -> int:
            return size(quote(big))

        assert pipeline() == 1000
        assert quote(big).unquote() is big

    def test_a_flow_argument_is_unwrapped(self):
        @flow
        def receives(value: Any) -> str:
            return type(value).__name__

        assert receives(quote([1])) == "list"


class TestOpaque:
    def test_a_future_is_resolved_but_its_result_is_not_walked(self):
        @task
        def holder() -> list:
            return [one.submit(), 5]  # a result that holds a future

        @flow
        def pipeline() -> tuple:
            held = holder.submit()
            return kind(opaque(held)), kind(held)

        assert pipeline() == (["future", 5], ["future", 5])

    def test_a_plain_value_passes_unchanged_without_walking(self):
        @flow
        def pipeline() -> list:
            future = one.submit()
            return kind(opaque([future]))

        assert pipeline() == ["future"]

    def test_the_upstream_run_is_recorded_for_lineage(self, store):
        @task
        def add(x: int) -> int:
            return x + 1

        @flow
        def pipeline() -> str:
            future = one.submit()
            return add(opaque(future), return_state=True).run_id, future.task_run_id

        downstream, upstream = pipeline()
        frame = store.sql("SELECT inputs FROM task_runs WHERE id = ?", [downstream])
        assert upstream in str(frame["inputs"].iloc[0])


class TestTheOtherAnnotationsLiveHereToo:
    def test_same_objects_as_the_top_level(self):
        import kernelflow

        assert allow_failure is kernelflow.allow_failure
        assert unmapped is kernelflow.unmapped
        assert repr(quote([1])) == "quote([1])" and opaque(1) == opaque(1) != quote(1)

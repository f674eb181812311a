"""``from kernelflow import tags``: Prefect's ``with tags(...)`` on flow and task runs."""

from __future__ import annotations

import pytest

from kernelflow import flow, runtime, tags, task
from kernelflow.concurrency import create_limit, limit_status
from kernelflow.errors import ConfigurationError


def recorded_tags(store, table: str) -> dict[str, list[str]]:
    frame = store.sql(f"SELECT name, tags FROM {table}")
    return {name: sorted(value) for name, value in zip(frame["name"], frame["tags"], strict=True)}


class TestTagsOnRuns:
    def test_task_runs_inside_get_the_tags_nested_blocks_add_up(self, store):
        @task
        def probe() -> list[str]:
            return sorted(runtime.task_run.tags)

        @flow
        def pipeline() -> tuple:
            with tags("a", "b"):
                with tags("c"):
                    inner = probe.with_options(task_run_name="inner")()
                outer = probe.with_options(task_run_name="outer")()
            after = probe.with_options(task_run_name="after")()
            return inner, outer, after

        assert pipeline() == (["a", "b", "c"], ["a", "b"], [])
        recorded = recorded_tags(store, "task_runs")
        assert recorded == {"inner": ["a", "b", "c"], "outer": ["a", "b"], "after": []}

    def test_flow_runs_called_inside_are_tagged_and_merge_with_their_own(self, store):
        @task(tags=["own-task"])
        def probe() -> list[str]:
            return sorted(runtime.task_run.tags)

        @flow(flow_run_name="tagged", tags=["own-flow"])
        def pipeline() -> tuple:
            return sorted(runtime.flow_run.tags), probe()

        with tags("ctx") as current:
            assert current == {"ctx"}
            flow_tags, task_tags = pipeline()
        assert flow_tags == ["ctx", "own-flow"]
        # Context tags reach tasks; a flow run's own tags do not (nor do Prefect's).
        assert task_tags == ["ctx", "own-task"]
        assert recorded_tags(store, "flow_runs") == {"tagged": ["ctx", "own-flow"]}

    def test_submitted_and_mapped_task_runs_get_the_tags(self):
        @task
        def probe(i: int) -> list[str]:
            return sorted(runtime.task_run.tags)

        @flow
        def pipeline() -> list:
            with tags("batch"):
                one = probe.submit(0)
                many = probe.map([1, 2])
            return [one.result(), *many.result()]

        assert pipeline() == [["batch"]] * 3

    def test_the_yielded_set_holds_every_tag_in_force(self):
        with tags("a"), tags("b", "a") as current:
            assert current == {"a", "b"}

    def test_tags_end_with_the_block_even_on_error(self):
        @task
        def probe() -> list[str]:
            return list(runtime.task_run.tags)

        with pytest.raises(KeyError), tags("gone"):
            raise KeyError("x")
        assert probe() == []

    def test_a_list_instead_of_strings_is_one_clear_error(self):
        with pytest.raises(ConfigurationError, match=r"tags\(\) takes strings"), tags(["a"]):  # type: ignore[arg-type]
            pass


class TestTagsSelectConcurrencyLimits:
    def test_a_context_tag_takes_a_slot_of_its_limit(self):
        create_limit("warehouse", 1)

        @task
        def occupied() -> float:
            return limit_status("warehouse").occupied

        @flow
        def pipeline() -> tuple:
            with tags("warehouse"):
                inside = occupied()
            return inside, occupied()

        assert pipeline() == (1.0, 0.0)
